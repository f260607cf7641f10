"""The India pages in front of fake services: operators' e-invoice registrations (IRN, Ack No and date, the IRP's
error codes, a failed one retried with the operate permission, audited) and an organisation's page with its
invoices' IRNs and its mandates' debits; a customer's invoice with its IRN (or its registration pending), and the
auto-debit page: a mandate set up by an owner (its authorisation on the hosted checkout, back to the page; or,
without a hosted page, Razorpay's Checkout.js opened on the page with recurring "1", and exactly Razorpay's
origins allowed on that page only), paused and cancelled with the API's own use cases, another organisation's
mandate 404."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.payments.v1 import payments_pb2 as pb
from billing_runtime.errors import NotFound
from services.gateway.entrypoints.http.mandates import AutoDebit
from services.gateway.entrypoints.web.auto_debit import next_debit, shown_mandate
from services.gateway.entrypoints.web.operator_einvoices import irp_codes
from services.gateway.entrypoints.web.rendering import CONTENT_SECURITY_POLICY
from tests.unit.services.gateway.entrypoints.http.fake_services import Gateway
from tests.unit.services.gateway.entrypoints.web.test_account_pages import _invoice, _organisation, _signed_in
from tests.unit.services.gateway.entrypoints.web.test_pages import _csrf, _sign_in

IRN = "3f1c" + "0" * 56 + "9a2b"
ACKED = Timestamp(seconds=1_796_464_800)  # 5 Dec 2026, 10:00 UTC (15:30 IST)
CHECKOUT = "http://127.0.0.1:9/checkout/order_auth1?recurring=1&customer_id=cust_1"


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def test_the_irp_codes_are_read_out_of_the_last_error():
    assert irp_codes("the IRP refused it: 2176: Invalid HSN code(s); 2150: Duplicate IRN; 2176: again") == [
        "2176", "2150"]
    assert irp_codes("duplicate IRN (2150) whose details the IRP would not give: 2283: IRN details cannot") == [
        "2150", "2283"]
    # A block before sending, an outage, amounts and dates name no code.
    assert irp_codes("blocked before sending: dated 2026-10-01, more than 30 days before 2026-11-05") == []
    assert irp_codes("the IRP answered 503: Service Unavailable") == []
    assert irp_codes("with buyer 29AAACR5055K1Z3 and total 9999.00 (status ACT)") == []


def _debit(invoice_id: str, state: str, debit_at: datetime | None, due_at: datetime | None = None) -> AutoDebit:
    return AutoDebit(invoice_id=invoice_id, mandate_id="mdt_1", method="upi", state=state, currency="INR",
                     amount_minor=11_800, amount="118.00", due_at=due_at, debit_at=debit_at, notified_at=None,
                     provider_order_id="", provider_payment_id="", payment_link_url="", reason="", attempts=0)


def test_the_next_debit_is_the_first_to_start_of_those_under_way():
    december, january = datetime(2026, 12, 19, tzinfo=UTC), datetime(2027, 1, 19, tzinfo=UTC)
    debits = [_debit("inv_3", "scheduled", january), _debit("inv_2", "requested", december),
              _debit("inv_1", "captured", datetime(2026, 11, 19, tzinfo=UTC)), _debit("inv_4", "scheduled", None)]
    assert next_debit(debits).invoice_id == "inv_2"
    assert next_debit([d for d in debits if d.state != "requested"]).invoice_id == "inv_3"
    assert next_debit([_debit("inv_1", "captured", december), _debit("inv_5", "linked", None)]) is None
    assert next_debit([]) is None


def _mandate(state: int = pb.MANDATE_STATE_CONFIRMED, mandate_id: str = "mdt_1") -> pb.Mandate:
    made = Timestamp(seconds=1_796_000_000)
    return pb.Mandate(id=mandate_id, organisation_id="org_a", method=pb.MANDATE_METHOD_UPI, state=state,
                      max_amount_minor=1_500_000, expire_time=Timestamp(seconds=1_953_000_000), create_time=made,
                      customer_id="cust_1", authorisation_order_id="order_auth1", checkout_url=CHECKOUT,
                      token_id="token_1" if state != pb.MANDATE_STATE_CREATED else "", reason="")


def test_the_page_is_about_the_live_mandate_else_the_latest_that_ended():
    from services.gateway.entrypoints.http.mandates import Mandate

    ended = Mandate.from_pb(_mandate(pb.MANDATE_STATE_CANCELLED, "mdt_2"))
    live = Mandate.from_pb(_mandate(pb.MANDATE_STATE_PAUSED, "mdt_1"))
    assert shown_mandate([ended, live]).id == "mdt_1"
    assert shown_mandate([ended]).id == "mdt_2"
    assert shown_mandate([]) is None


# --- operators ------------------------------------------------------------------------------------------------


def _registration(status: int, document_id: str = "inv_1", **fields) -> ipb.EinvoiceRegistration:
    return ipb.EinvoiceRegistration(document_id=document_id, invoice_id=document_id, organisation_id="org_a",
                                    document_type="INV", document_number=f"INV/2627/{document_id[-5:]}", irn=IRN,
                                    status=status, **fields)


def test_operators_read_registrations_and_retry_a_failed_one(gateway):
    registered = _registration(ipb.EINVOICE_REGISTRATION_STATUS_REGISTERED, "inv_00001", attempts=1,
                               ack_no="112610000012345", ack_time=ACKED)
    failed = _registration(ipb.EINVOICE_REGISTRATION_STATUS_FAILED, "inv_00002", attempts=2,
                           last_error="the IRP refused it: 2176: Invalid HSN code(s)")
    gateway.invoicing.answer("ListEinvoiceRegistrations",
                             ipb.ListEinvoiceRegistrationsResponse(registrations=[registered, failed]))
    gateway.invoicing.answer("GetOrganisation", ipb.GetOrganisationResponse(organisation=ipb.Organisation(
        id="org_a", name="Rangoli Textiles", create_time=ACKED)))
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    page = gateway.http.get("/app/operator/einvoices", params={"status": "all"})
    assert page.status_code == 200, page.text
    sent = gateway.invoicing.requests["ListEinvoiceRegistrations"][0]
    assert (sent.status, sent.organisation_id) == (ipb.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED, "")
    assert IRN in page.text and "112610000012345" in page.text and "5 Dec 2026, 10:00:00 UTC" in page.text
    assert "Rangoli Textiles" in page.text and 'href="/app/operator/organisations/org_a"' in page.text
    assert '<strong class="status status-irp-code" data-testid="irp-code">2176</strong>' in page.text
    assert "/retry" not in page.text  # a viewer is offered no retry (and the API refuses one)
    assert gateway.http.post("/app/operator/einvoices/inv_00002/retry", data={"status": "all"},
                             headers=_csrf(gateway)).status_code == 403
    bad = gateway.http.get("/app/operator/einvoices", params={"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.text

    gateway.http.cookies.clear()
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    assert 'hx-post="/app/operator/einvoices/inv_00002/retry"' in gateway.http.get("/app/operator/einvoices").text
    assert 'hx-post="/app/operator/einvoices/inv_00001/retry"' not in gateway.http.get(
        "/app/operator/einvoices", params={"status": "all"}).text  # only a failed one
    assert gateway.http.post("/app/operator/einvoices/inv_00002/retry", data={"status": "all"}).status_code == 403
    gateway.invoicing.answer("RetryEinvoiceRegistration", ipb.RetryEinvoiceRegistrationResponse(
        registration=_registration(ipb.EINVOICE_REGISTRATION_STATUS_PENDING, "inv_00002")))
    retried = gateway.http.post("/app/operator/einvoices/inv_00002/retry", data={"status": "all"},
                                headers={**_csrf(gateway), "HX-Request": "true"})
    assert retried.status_code == 204, retried.text
    back = urlsplit(retried.headers["HX-Redirect"])
    assert back.path == "/app/operator/einvoices"
    assert parse_qs(back.query) == {"status": ["all"], "retried": ["INV/2627/00002"]}
    assert gateway.invoicing.requests["RetryEinvoiceRegistration"][0].document_id == "inv_00002"
    assert ("einvoice.retry", "inv_00002") in gateway.audited()
    notice = gateway.http.get(retried.headers["HX-Redirect"])
    assert "INV/2627/00002 is pending again" in notice.text


def test_an_organisations_page_shows_its_invoices_irns_and_its_mandates_debits(gateway):
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    _organisation(gateway)
    gateway.invoicing.answer("ListSubscriptions", ipb.ListSubscriptionsResponse())
    gateway.invoicing.answer("GetCreditBalance", ipb.GetCreditBalanceResponse())
    second = ipb.Invoice(id="inv_00002", organisation_id="org_a", number="INV/2627/00002",
                         status=ipb.INVOICE_STATUS_ISSUED, currency="INR", total_minor=11_800, amount_due_minor=11_800)
    first = ipb.Invoice(id="inv_00001", organisation_id="org_a", number="INV/2627/00001",
                        status=ipb.INVOICE_STATUS_PAID, currency="INR", total_minor=11_800)
    gateway.invoicing.answer("ListInvoices", ipb.ListInvoicesResponse(invoices=[second, first]))
    gateway.invoicing.answer("GetProjectedInvoice", NotFound("no active subscription"))
    gateway.payments.answer("GetDunning", NotFound("no dunning"))
    gateway.invoicing.answer("ListEinvoiceRegistrations", ipb.ListEinvoiceRegistrationsResponse(registrations=[
        _registration(ipb.EINVOICE_REGISTRATION_STATUS_REGISTERED, "inv_00001", ack_no="112610000012345",
                      ack_time=ACKED),
        _registration(ipb.EINVOICE_REGISTRATION_STATUS_PENDING, "inv_00002")]))
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse(mandates=[_mandate()]))
    debit = pb.AutoDebit(invoice_id="inv_00002", mandate_id="mdt_1", method=pb.MANDATE_METHOD_UPI,
                         state=pb.DEBIT_STATE_SCHEDULED, currency="INR", amount_minor=11_800)
    gateway.payments.answer("ListAutoDebits", pb.ListAutoDebitsResponse(debits=[debit]))
    page = gateway.http.get("/app/operator/organisations/org_a")
    assert page.status_code == 200, page.text
    sent = gateway.invoicing.requests["ListEinvoiceRegistrations"][0]
    assert (sent.organisation_id, sent.status) == ("org_a", ipb.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED)
    assert f'<code class="irn">{IRN}</code><br>Ack No 112610000012345' in page.text
    assert "registration pending" in page.text
    assert gateway.payments.requests["ListMandates"][0].include_finished is True
    assert 'data-testid="organisation-mandate" data-state="confirmed"' in page.text and "₹15,000.00" in page.text
    assert 'data-testid="mandate-debit" data-state="scheduled"' in page.text and "INV/2627/00002</a>" in page.text
    assert gateway.payments.requests["ListAutoDebits"][0].mandate_id == "mdt_1"

    # Payments down: the mandates say so, the rest of the page shows.
    gateway.payments.replies["ListMandates"].clear()
    from billing_runtime.errors import Unavailable

    gateway.payments.answer("ListMandates", Unavailable("payments is not answering"))
    page = gateway.http.get("/app/operator/organisations/org_a")
    assert page.status_code == 200 and "Mandates cannot be shown just now" in page.text


# --- customers ------------------------------------------------------------------------------------------------


def test_a_customers_invoice_shows_its_irn_or_that_its_registration_is_pending(gateway):
    _signed_in(gateway, "member")
    _organisation(gateway)
    gateway.invoicing.answer("GetInvoice", ipb.GetInvoiceResponse(invoice=_invoice()))
    gateway.invoicing.answer("ListCreditNotes", ipb.ListCreditNotesResponse())
    gateway.payments.answer("GetInvoicePayments", NotFound("no order yet"))
    gateway.invoicing.answer(
        "ListEinvoiceRegistrations",
        ipb.ListEinvoiceRegistrationsResponse(registrations=[_registration(
            ipb.EINVOICE_REGISTRATION_STATUS_REGISTERED, ack_no="112610000012345", ack_time=ACKED)]),
        ipb.ListEinvoiceRegistrationsResponse(registrations=[_registration(
            ipb.EINVOICE_REGISTRATION_STATUS_FAILED, last_error="the IRP refused it: 2176: Invalid HSN code(s)")]),
        ipb.ListEinvoiceRegistrationsResponse())
    page = gateway.http.get("/app/invoices/inv_1")
    assert page.status_code == 200, page.text
    assert f'data-testid="invoice-irn"><code class="irn">{IRN}</code>' in page.text
    assert "112610000012345" in page.text and "5 Dec 2026, 15:30:00 IST" in page.text  # the organisation's zone
    failed = gateway.http.get("/app/invoices/inv_1").text
    assert "registration with the IRP pending" in failed and IRN not in failed and "2176" not in failed
    plain = gateway.http.get("/app/invoices/inv_1").text  # not e-invoiced: nothing said
    assert "IRP" not in plain and "IRN" not in plain


def test_an_owner_sets_up_auto_debit_through_the_hosted_checkout_and_comes_back(gateway):
    csrf = _signed_in(gateway, "owner")
    _organisation(gateway)
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse())
    page = gateway.http.get("/app/auto-debit")
    assert page.status_code == 200, page.text
    assert 'data-state="none"' in page.text and 'hx-post="/app/auto-debit"' in page.text
    key = page.text.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    assert key.startswith("ad-")

    bad = gateway.http.post("/app/auto-debit", data={"method": "upi", "max_amount": "lots", "idempotency_key": key},
                            headers={**csrf, "HX-Request": "true"})
    assert bad.status_code == 400 and "must be a decimal amount" in bad.text, bad.text
    assert "CreateMandate" not in gateway.payments.requests
    gateway.payments.answer("CreateMandate", pb.CreateMandateResponse(
        mandate=_mandate(pb.MANDATE_STATE_CREATED), created=True))
    made = gateway.http.post("/app/auto-debit", data={"method": "upi", "max_amount": "15,000.00",
                                                      "idempotency_key": key},
                             headers={**csrf, "HX-Request": "true"})
    assert made.status_code == 204 and made.headers["HX-Redirect"] == "/app/auto-debit/mdt_1/authorise", made.text
    [sent] = gateway.payments.requests["CreateMandate"]
    assert (sent.organisation_id, sent.method, sent.max_amount_minor, sent.idempotency_key, sent.customer_name) == (
        "org_a", pb.MANDATE_METHOD_UPI, 1_500_000, key, "Acme")
    assert ("mandate.create", "mdt_1") in gateway.audited()

    # The authorisation on the provider's hosted checkout, told to come back here.
    gateway.payments.replies["ListMandates"].clear()
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse(mandates=[_mandate(pb.MANDATE_STATE_CREATED)]))
    away = gateway.http.get("/app/auto-debit/mdt_1/authorise", follow_redirects=False)
    assert away.status_code == 303
    target = urlsplit(away.headers["location"])
    assert away.headers["location"].startswith(CHECKOUT + "&")
    [callback] = parse_qs(target.query)["callback_url"]
    assert callback.endswith("://testserver/app/auto-debit/authorised")
    assert parse_qs(target.query)["callback_method"] == ["get"]
    assert gateway.http.get("/app/auto-debit/mdt_other/authorise", follow_redirects=False).status_code == 404

    # Back: the page watches the mandate until the bank's answer has moved it.
    gateway.payments.answer("ListAutoDebits", pb.ListAutoDebitsResponse())
    back = gateway.http.get("/app/auto-debit/authorised", params={"razorpay_payment_id": "pay_1"})
    assert back.status_code == 200 and 'hx-get="/app/auto-debit/state" hx-trigger="every 2s"' in back.text
    failed = gateway.http.get("/app/auto-debit/authorised", params={"error[description]": "Your bank declined"})
    assert "The authorisation did not go through: Your bank declined" in failed.text
    gateway.payments.replies["ListMandates"].clear()
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse(mandates=[_mandate()]))
    state = gateway.http.get("/app/auto-debit/state", headers={"HX-Request": "true"})
    assert 'data-state="confirmed"' in state.text and "hx-trigger" not in state.text


def test_a_member_reads_auto_debit_and_an_owner_pauses_and_cancels_only_their_own(gateway):
    _signed_in(gateway, "member")
    _organisation(gateway)
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse(mandates=[_mandate()]))
    december = Timestamp(seconds=1_797_700_000)
    debit = pb.AutoDebit(invoice_id="inv_1", mandate_id="mdt_1", method=pb.MANDATE_METHOD_UPI,
                         state=pb.DEBIT_STATE_SCHEDULED, currency="INR", amount_minor=1_23_456_78,
                         debit_time=december, due_time=december)
    gateway.payments.answer("ListAutoDebits", pb.ListAutoDebitsResponse(debits=[debit]))
    gateway.invoicing.answer("ListInvoices", ipb.ListInvoicesResponse(invoices=[_invoice()]))
    page = gateway.http.get("/app/auto-debit")
    assert page.status_code == 200, page.text
    assert "₹15,000.00" in page.text and "UPI AutoPay" in page.text
    assert "₹1,23,456.78 for invoice" in page.text and "INV/2627/00001</a>" in page.text
    assert "/pause" not in page.text and "/cancel" not in page.text  # a member changes nothing
    assert gateway.payments.requests["ListAutoDebits"][0].organisation_id == "org_a"

    gateway.http.cookies.clear()
    csrf = _signed_in(gateway, "owner")
    page = gateway.http.get("/app/auto-debit").text
    assert 'hx-post="/app/auto-debit/mdt_1/pause" hx-confirm=' in page
    assert 'hx-post="/app/auto-debit/mdt_1/cancel" hx-confirm=' in page
    gateway.payments.answer("PauseMandate", pb.PauseMandateResponse(mandate=_mandate(pb.MANDATE_STATE_PAUSED)))
    paused = gateway.http.post("/app/auto-debit/mdt_1/pause", headers={**csrf, "HX-Request": "true"})
    assert paused.status_code == 204 and paused.headers["HX-Redirect"] == "/app/auto-debit?done=paused"
    assert gateway.payments.requests["PauseMandate"][0].organisation_id == "org_a"
    # Another organisation's mandate: not found, and payments is never asked to move it.
    other = gateway.http.post("/app/auto-debit/mdt_other/cancel", headers={**csrf, "HX-Request": "true"})
    assert other.status_code == 404 and "CancelMandate" not in gateway.payments.requests
    gateway.payments.answer("CancelMandate", pb.CancelMandateResponse(mandate=_mandate(pb.MANDATE_STATE_CANCELLED)))
    cancelled = gateway.http.post("/app/auto-debit/mdt_1/cancel", headers={**csrf, "HX-Request": "true"})
    assert cancelled.status_code == 204 and cancelled.headers["HX-Redirect"] == "/app/auto-debit?done=cancelled"
    assert gateway.audited()[-2:] == [("mandate.pause", "mdt_1"), ("mandate.cancel", "mdt_1")]


def _checkout_js_mandate(**fields) -> pb.Mandate:
    """A mandate made where payments has no hosted page (real Razorpay): what Checkout.js authorises it with."""
    made = _mandate(pb.MANDATE_STATE_CREATED)
    made.checkout_url = ""
    made.key_id, made.authorisation_amount_minor, made.authorisation_currency = "rzp_live_1", 100, "INR"
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def _authorising(gateway: Gateway, mandate: pb.Mandate) -> None:
    gateway.invoicing.answer("GetOrganisation", ipb.GetOrganisationResponse(organisation=ipb.Organisation(
        id="org_a", name="Acme", billing_email="ap@acme.example", billing_currency="INR", country="IN",
        timezone="Asia/Kolkata", create_time=Timestamp(seconds=1_790_000_000))))
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse(mandates=[mandate]))
    gateway.payments.answer("ListAutoDebits", pb.ListAutoDebitsResponse())


def _options(page) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="checkout-options">(.*?)</script>',
                                page.text, re.S).group(1))


def _policy(page) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in page.headers["content-security-policy"].split(";")]
    return {name: sources for name, *sources in directives}


def test_without_a_hosted_page_the_authorisation_opens_razorpays_checkout_js_with_recurring_1(gateway):
    _signed_in(gateway, "owner")
    _authorising(gateway, _checkout_js_mandate())
    assert gateway.http.get("/app/auto-debit").headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page = gateway.http.get("/app/auto-debit/mdt_1/authorise", follow_redirects=False)
    assert page.status_code == 200, page.text
    assert '<script src="https://checkout.razorpay.com/v1/checkout.js" defer></script>' in page.text
    assert '<script src="/app/static/paying.js" defer></script>' in page.text
    assert 'data-provider="razorpay" data-purpose="mandate"' in page.text and 'id="pay-now"' in page.text
    assert "a payment of ₹1.00 authorises it" in page.text
    assert 'href="/app/auto-debit/mdt_1/authorise"' not in page.text  # no second way in while it is open
    # As Razorpay documents Standard Checkout for recurring payments: the authorisation order, its customer,
    # recurring "1"; the handler comes back to the page that watches for the bank's token.confirmed.
    assert _options(page) == {
        "key": "rzp_live_1", "order_id": "order_auth1", "customer_id": "cust_1", "recurring": "1",
        "amount": 100, "currency": "INR", "description": "Auto-debit: up to ₹15,000.00 a debit",
        "prefill": {"name": "Acme", "email": "ap@acme.example"}, "notes": {"mandate_id": "mdt_1"},
        "return_url": "https://testserver/app/auto-debit/authorised"}
    # Exactly Razorpay's script and frame origins, on this page only; the rest of the policy stays strict.
    policy = _policy(page)
    assert policy["script-src"] == ["'self'", "https://checkout.razorpay.com"]
    assert policy["frame-src"] == ["https://api.razorpay.com"]
    assert policy["connect-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and "stripe" not in page.headers["content-security-policy"]
    back = gateway.http.get("/app/auto-debit/authorised", params={"razorpay_payment_id": "pay_1",
                                                                  "razorpay_order_id": "order_auth1",
                                                                  "razorpay_signature": "f" * 64})
    assert back.status_code == 200 and 'hx-get="/app/auto-debit/state" hx-trigger="every 2s"' in back.text
    assert back.headers["content-security-policy"] == CONTENT_SECURITY_POLICY and "checkout.js" not in back.text
    # Nothing but the watching decides: no verify call, no change asked of payments.
    assert set(gateway.payments.requests) == {"ListMandates", "ListAutoDebits"}


def test_an_emandates_authorisation_for_nothing_and_the_sandboxs_checkout_js_origin_alone():
    gateway = Gateway(razorpay_checkout_js_url="http://127.0.0.1:8090/v1/checkout.js")
    _signed_in(gateway, "owner")
    _authorising(gateway, _checkout_js_mandate(method=pb.MANDATE_METHOD_EMANDATE, authorisation_amount_minor=0))
    page = gateway.http.get("/app/auto-debit/mdt_1/authorise", follow_redirects=False)
    assert page.status_code == 200, page.text
    assert '<script src="http://127.0.0.1:8090/v1/checkout.js" defer></script>' in page.text
    assert (_options(page)["amount"], _options(page)["recurring"]) == (0, "1")
    assert "authorising it takes no payment" in page.text
    policy = _policy(page)
    assert policy["script-src"] == ["'self'", "http://127.0.0.1:8090"]
    assert policy["frame-src"] == ["http://127.0.0.1:8090"] and policy["connect-src"] == ["'self'"]


@pytest.mark.parametrize(("settings", "mandate"), [
    ({"razorpay_checkout_js_url": ""}, _checkout_js_mandate()),  # Checkout.js turned off
    ({}, _checkout_js_mandate(key_id="")),  # payments has no Razorpay key
])
def test_without_a_hosted_page_or_checkout_js_the_authorisation_is_refused_said(settings, mandate):
    gateway = Gateway(**settings)
    _signed_in(gateway, "owner")
    _authorising(gateway, mandate)
    page = gateway.http.get("/app/auto-debit/mdt_1/authorise", follow_redirects=False)
    assert page.status_code == 422 and "ask for the authorisation link" in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
