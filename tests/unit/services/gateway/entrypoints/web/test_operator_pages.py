"""The operators' pages in front of fake services: organisations with plan, credit and what is due (exact, per
currency); a refund that needs the operate permission, the CSRF token, a confirmation and a reason, and is the
API's (idempotency key, audit entry); a dead letter's replay; users and roles for admins only; and none of them
for a customer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.invoicing.v1 import invoicing_pb2
from billing.metering.v1 import metering_pb2
from billing.payments.v1 import payments_pb2
from billing_runtime.errors import NotFound
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.web.operator_accounts import due_by_currency
from services.gateway.entrypoints.web.operator_payments import window_of
from tests.unit.services.gateway.entrypoints.http.fake_services import Gateway
from tests.unit.services.gateway.entrypoints.web.test_pages import _csrf, _sign_in

OPERATOR_PAGES = ("/app/operator/organisations/org_a", "/app/operator/payments",
                  "/app/operator/invoices/inv_1/payments", "/app/operator/reconciliation",
                  "/app/operator/reconciliation/rec_1", "/app/operator/einvoices", "/app/operator/dead-letters",
                  "/app/operator/users")


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _invoice(status: int, due: int, currency: str = "INR") -> invoicing_pb2.Invoice:
    return invoicing_pb2.Invoice(id=f"inv_{status}_{due}", organisation_id="org_a", status=status, currency=currency,
                                 total_minor=due, amount_due_minor=due)


def test_due_sums_open_invoices_per_currency_exactly():
    from services.gateway.entrypoints.http.invoice_schemas import Invoice

    listed = [Invoice.from_pb(i) for i in (
        _invoice(invoicing_pb2.INVOICE_STATUS_ISSUED, 117882), _invoice(invoicing_pb2.INVOICE_STATUS_OVERDUE, 1),
        _invoice(invoicing_pb2.INVOICE_STATUS_PAID, 0), _invoice(invoicing_pb2.INVOICE_STATUS_DRAFT, 5000),
        _invoice(invoicing_pb2.INVOICE_STATUS_ISSUED, 1234, "KWD"),
        _invoice(invoicing_pb2.INVOICE_STATUS_ISSUED, 7, "JPY"),
    )]
    assert due_by_currency(listed) == ([("INR", "1178.83"), ("JPY", "7"), ("KWD", "1.234")], 4)


def test_a_reconciliation_window_is_whole_utc_days_up_to_now():
    now = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    assert window_of("2026-12-01", "2026-12-03", now) == (datetime(2026, 12, 1, tzinfo=UTC),
                                                           datetime(2026, 12, 4, tzinfo=UTC))
    assert window_of("2026-12-04", "2026-12-05", now)[1] == now  # not past now: the API refuses a future end


def test_the_organisations_page_shows_plan_credit_and_due_in_the_organisations_money(gateway):
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    gateway.invoicing.answer("ListOrganisations", invoicing_pb2.ListOrganisationsResponse(organisations=[
        invoicing_pb2.Organisation(id="org_a", name="Acme", billing_currency="INR", country="IN",
                                   timezone="Asia/Kolkata",
                                   create_time=to_timestamp(datetime(2026, 9, 1, tzinfo=UTC)))]))
    gateway.invoicing.answer("ListSubscriptions", invoicing_pb2.ListSubscriptionsResponse(subscriptions=[
        invoicing_pb2.Subscription(id="sub_1", organisation_id="org_a", plan_version_id="plv_1",
                                   state=invoicing_pb2.SUBSCRIPTION_STATE_ACTIVE, billing_anchor_day=1)]))
    gateway.invoicing.answer("GetPlanVersion", invoicing_pb2.GetPlanVersionResponse(
        plan_version=invoicing_pb2.PlanVersion(id="plv_1", plan_code="standard", plan_name="Standard", version=2)))
    gateway.invoicing.answer("GetCreditBalance", invoicing_pb2.GetCreditBalanceResponse(balances=[
        invoicing_pb2.CreditBalance(currency="INR", available_minor=12345678)]))
    gateway.invoicing.answer("ListInvoices", invoicing_pb2.ListInvoicesResponse(invoices=[
        _invoice(invoicing_pb2.INVOICE_STATUS_ISSUED, 117882)]))
    page = gateway.http.get("/app/operator/organisations")
    assert page.status_code == 200, page.text
    assert "standard v2" in page.text
    assert "₹1,23,456.78" in page.text  # Indian grouping for an Indian organisation's credit
    assert "₹1,178.82" in page.text and "1 open invoice" in page.text
    assert 'href="/app/operator/organisations/org_a"' in page.text
    assert 'hx-get="/app/operator/organisations/org_a/period" hx-trigger="load"' in page.text

    # The period, asked by the row once drawn: the projected invoice's, in the organisation's own days.
    acme = invoicing_pb2.Organisation(id="org_a", country="IN", timezone="Asia/Kolkata",
                                      create_time=to_timestamp(datetime(2026, 9, 1, tzinfo=UTC)))
    gateway.invoicing.answer("GetOrganisation", invoicing_pb2.GetOrganisationResponse(organisation=acme))
    december = invoicing_pb2.Invoice(organisation_id="org_a", currency="INR",
                                     period_start=to_timestamp(datetime(2026, 11, 30, 18, 30, tzinfo=UTC)),
                                     period_end=to_timestamp(datetime(2026, 12, 31, 18, 30, tzinfo=UTC)))
    gateway.invoicing.answer("GetProjectedInvoice", invoicing_pb2.GetProjectedInvoiceResponse(invoice=december))
    period = gateway.http.get("/app/operator/organisations/org_a/period", headers={"HX-Request": "true"})
    assert period.status_code == 200 and period.text.strip() == "<span>1 Dec 2026 – 31 Dec 2026</span>", period.text


def _payments(gateway: Gateway) -> None:
    payment = payments_pb2.Payment(id="pay_1", invoice_id="inv_1", organisation_id="org_a", currency="INR",
                                   amount_minor=117882, status=payments_pb2.PAYMENT_STATUS_CAPTURED, method="upi")
    gateway.payments.answer("GetInvoicePayments", payments_pb2.GetInvoicePaymentsResponse(
        payments=[payment], currency="INR", total_minor=117882, amount_captured_minor=117882))
    gateway.invoicing.answer("GetInvoice", invoicing_pb2.GetInvoiceResponse(invoice=invoicing_pb2.Invoice(
        id="inv_1", number="INV/2627/00001", organisation_id="org_a", currency="INR",
        status=invoicing_pb2.INVOICE_STATUS_PAID, total_minor=117882)))
    gateway.payments.answer("GetDunning", NotFound("no dunning"))


def test_a_refund_needs_operate_csrf_a_confirmation_and_a_reason(gateway):
    _payments(gateway)
    form = {"amount": "100.50", "reason": "Duplicate payment", "confirm": "yes", "idempotency_key": "rf-abc123"}
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    shown = gateway.http.get("/app/operator/invoices/inv_1/payments")
    assert shown.status_code == 200, shown.text
    assert "Refund this payment" in shown.text and 'name="idempotency_key" value="rf-' in shown.text
    assert gateway.http.post("/app/operator/payments/pay_1/refunds", data=form,
                             headers=_csrf(gateway)).status_code == 403
    gateway.http.cookies.clear()
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    assert gateway.http.post("/app/operator/payments/pay_1/refunds", data=form).status_code == 403  # no CSRF token
    unconfirmed = gateway.http.post("/app/operator/payments/pay_1/refunds", data={**form, "confirm": ""},
                                    headers={**_csrf(gateway), "HX-Request": "true"})
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.text
    assert "CreateRefund" not in gateway.payments.requests

    gateway.payments.answer("GetPayment", payments_pb2.GetPaymentResponse(payment=payments_pb2.Payment(
        id="pay_1", currency="INR")))
    gateway.payments.answer("CreateRefund", payments_pb2.CreateRefundResponse(created=True, refund=payments_pb2.Refund(
        id="rfd_1", payment_id="pay_1", invoice_id="inv_1", currency="INR", amount_minor=10050,
        reason="Duplicate payment")))
    done = gateway.http.post("/app/operator/payments/pay_1/refunds", data=form,
                             headers={**_csrf(gateway), "HX-Request": "true"}, follow_redirects=False)
    assert done.status_code == 204, done.text
    assert done.headers["HX-Redirect"] == "/app/operator/invoices/inv_1/payments?refunded=rfd_1"
    sent = gateway.payments.requests["CreateRefund"][0]
    assert (sent.amount_minor, sent.reason, sent.idempotency_key) == (10050, "Duplicate payment", "rf-abc123")
    assert ("refund.create", "rfd_1") in gateway.audited()


def test_an_invoices_payments_show_what_credit_notes_took_off_and_what_payments_still_collects(gateway):
    _payments(gateway)  # the first answer: paid, no credit note
    gateway.payments.answer("GetInvoicePayments", payments_pb2.GetInvoicePaymentsResponse(
        currency="INR", total_minor=241417, amount_captured_minor=50000, amount_credited_minor=41417,
        amount_due_minor=150000))
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    shown = gateway.http.get("/app/operator/invoices/inv_1/payments")
    assert shown.status_code == 200, shown.text
    assert 'data-testid="amount-credited"' not in shown.text  # no credit note: no Credited row
    assert 'data-testid="amount-due">₹0.00<' in shown.text
    shown = gateway.http.get("/app/operator/invoices/inv_1/payments")
    assert 'data-testid="amount-credited">₹414.17<' in shown.text
    assert 'data-testid="amount-due">₹1,500.00<' in shown.text  # payments' figure, not worked out from the rest


def test_the_payments_list_shows_a_providers_error_only_on_a_failed_payment(gateway):
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    gateway.invoicing.answer("ListReviewItems", invoicing_pb2.ListReviewItemsResponse())
    declined = payments_pb2.Payment(id="pmt_f", invoice_id="inv_1", currency="INR", amount_minor=100,
                                    status=payments_pb2.PAYMENT_STATUS_FAILED, error_description="Card declined")
    # One recorded before payments cleared an earlier attempt's error on capture: still not shown as declined.
    paid = payments_pb2.Payment(id="pmt_c", invoice_id="inv_1", currency="INR", amount_minor=100,
                                status=payments_pb2.PAYMENT_STATUS_CAPTURED, error_description="Earlier decline")
    gateway.payments.answer("ListPayments", payments_pb2.ListPaymentsResponse(payments=[declined, paid]))
    shown = gateway.http.get("/app/operator/payments")
    assert shown.status_code == 200, shown.text
    assert "Card declined" in shown.text and "Earlier decline" not in shown.text


def test_resolving_a_review_item_is_the_apis_and_needs_operate(gateway):
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    form = {"resolution": "Refunded the excess as rfd_1"}
    assert gateway.http.post("/app/operator/review-items/rvw_1/resolve", data=form,
                             headers=_csrf(gateway)).status_code == 403
    gateway.http.cookies.clear()
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    gateway.invoicing.answer("ResolveReviewItem", invoicing_pb2.ResolveReviewItemResponse(
        review_item=invoicing_pb2.ReviewItem(id="rvw_1", resolution=form["resolution"])))
    done = gateway.http.post("/app/operator/review-items/rvw_1/resolve", data=form,
                             headers={**_csrf(gateway), "HX-Request": "true"})
    assert done.status_code == 204 and done.headers["HX-Redirect"] == "/app/operator/payments?resolved=rvw_1"
    assert gateway.invoicing.requests["ResolveReviewItem"][0].resolution == form["resolution"]
    assert ("review_item.resolve", "rvw_1") in gateway.audited()


def test_replaying_a_dead_letter_answers_its_row_and_is_audited(gateway):
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    letter = metering_pb2.DeadLetter(sequence=7, subject="billing.ingest.v1.event_batch.accepted", reason="boom",
                                     state=metering_pb2.DEAD_LETTER_STATE_PENDING)
    gateway.metering.answer("ListDeadLetters", metering_pb2.ListDeadLettersResponse(dead_letters=[letter]))
    listed = gateway.http.get("/app/operator/dead-letters")
    assert listed.status_code == 200 and 'hx-post="/app/operator/dead-letters/7/replay"' in listed.text
    replayed = metering_pb2.DeadLetter(sequence=7, reason="boom", state=metering_pb2.DEAD_LETTER_STATE_REPLAYED)
    gateway.metering.answer("ReplayDeadLetter", metering_pb2.ReplayDeadLetterResponse(dead_letter=replayed,
                                                                                       replay_sequence=99))
    row = gateway.http.post("/app/operator/dead-letters/7/replay",
                            headers={**_csrf(gateway), "HX-Request": "true", "HX-Target": "letter-7"})
    assert row.status_code == 200 and 'data-state="replayed"' in row.text and "#99" in row.text
    assert ("dead_letter.replay", "7") in gateway.audited()

    # From the letter's own page: its payload; replaying there comes back to it; discarding needs a reason.
    gateway.metering.answer("GetDeadLetter", metering_pb2.GetDeadLetterResponse(
        dead_letter=replayed, payload_json='{"events": [{"event_id": "e1"}]}'))
    shown = gateway.http.get("/app/operator/dead-letters/7")
    assert shown.status_code == 200 and '&#34;event_id&#34;: &#34;e1&#34;' in shown.text, shown.text
    assert '\n      &#34;event_id' in shown.text  # laid out for reading
    again = gateway.http.post("/app/operator/dead-letters/7/replay", headers={**_csrf(gateway), "HX-Request": "true"})
    assert again.status_code == 204 and again.headers["HX-Redirect"] == "/app/operator/dead-letters/7"
    refused = gateway.http.post("/app/operator/dead-letters/7/discard", data={"reason": ""},
                                headers={**_csrf(gateway), "HX-Request": "true"})
    assert refused.status_code == 400 and "DiscardDeadLetter" not in gateway.metering.requests
    gateway.metering.answer("DiscardDeadLetter", metering_pb2.DiscardDeadLetterResponse(dead_letter=replayed))
    discarded = gateway.http.post("/app/operator/dead-letters/7/discard", data={"reason": "a test batch"},
                                  headers={**_csrf(gateway), "HX-Request": "true"})
    assert discarded.status_code == 204 and gateway.metering.requests["DiscardDeadLetter"][0].reason == "a test batch"
    assert ("dead_letter.discard", "7") in gateway.audited()


def test_users_and_roles_are_for_admins_and_go_through_the_access_use_cases(gateway):
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    refused = gateway.http.get("/app/operator/users")
    assert refused.status_code == 403 and "manage_users" in refused.text
    assert 'href="/app/operator/users"' not in refused.text  # not in an operator's nav
    gateway.http.cookies.clear()
    admin = gateway.person("admin")
    _sign_in(gateway, admin.email)
    page = gateway.http.get("/app/operator/users")
    assert page.status_code == 200 and operator.email in page.text and 'href="/app/operator/users"' in page.text
    created = gateway.http.post("/app/operator/users", data={
        "email": "new.viewer@billing.example", "name": "Nia", "role": "viewer", "organisation_id": "org_ignored",
        "password": ""}, headers={**_csrf(gateway), "HX-Request": "true"})
    assert created.status_code == 204 and "created" in created.headers["HX-Redirect"], created.text
    assert any(action.startswith("user.create") for action, _ in gateway.audited()), gateway.audited()
    changed = gateway.http.post(f"/app/operator/users/{operator.id}", data={"role": "viewer"},
                                headers={**_csrf(gateway), "HX-Request": "true"})
    assert changed.status_code == 204, changed.text
    disabled = gateway.http.post(f"/app/operator/users/{operator.id}", data={"disabled": "true"},
                                 headers={**_csrf(gateway), "HX-Request": "true"})
    assert disabled.status_code == 204 and "disabled" in disabled.headers["HX-Redirect"], disabled.text


def test_a_customer_opens_none_of_the_operators_pages(gateway):
    member = gateway.person("member", organisation_id="org_a")
    _sign_in(gateway, member.email)
    for path in OPERATOR_PAGES:
        refused = gateway.http.get(path)
        assert refused.status_code == 403, path
    refused = gateway.http.post("/app/operator/payments/pay_1/refunds", headers=_csrf(gateway),
                                data={"reason": "x", "confirm": "yes", "idempotency_key": "rf-1"})
    assert refused.status_code == 403
    assert gateway.http.post("/app/operator/einvoices/inv_1/retry", headers=_csrf(gateway)).status_code == 403
    assert gateway.payments.requests == {} and gateway.metering.requests == {}
    assert "RetryEinvoiceRegistration" not in gateway.invoicing.requests


# The other admin routes a page calls besides its twin: each must ask exactly what the twin asks, so calling it
# from the page grants nothing the page's own entry did not (the app-wide check runs once, for the page).
ALSO_CALLS = {
    ("GET", "/app/operator/organisations"): (
        ("GET", "/api/v1/admin/subscriptions"), ("GET", "/api/v1/admin/organisations/{organisation_id}/credits"),
        ("GET", "/api/v1/admin/invoices"), ("GET", "/api/v1/admin/plan-versions/{plan_version_id}")),
    ("GET", "/app/operator/organisations/{organisation_id}"): (
        ("GET", "/api/v1/admin/subscriptions"), ("GET", "/api/v1/admin/organisations/{organisation_id}/credits"),
        ("GET", "/api/v1/admin/invoices"), ("GET", "/api/v1/admin/plan-versions/{plan_version_id}"),
        ("GET", "/api/v1/admin/organisations/{organisation_id}/projected-invoice"),
        ("GET", "/api/v1/admin/invoices/{invoice_id}/dunning"), ("GET", "/api/v1/admin/einvoices"),
        ("GET", "/api/v1/admin/organisations/{organisation_id}/mandates"),
        ("GET", "/api/v1/admin/mandates/{mandate_id}/debits")),
    ("GET", "/app/operator/organisations/{organisation_id}/period"): (
        ("GET", "/api/v1/admin/organisations/{organisation_id}"),),
    ("GET", "/app/operator/payments"): (("GET", "/api/v1/admin/review-items"),),
    ("GET", "/app/operator/invoices/{invoice_id}/payments"): (
        ("GET", "/api/v1/admin/invoices/{invoice_id}"), ("GET", "/api/v1/admin/invoices/{invoice_id}/dunning")),
    ("GET", "/app/operator/einvoices"): (("GET", "/api/v1/admin/organisations/{organisation_id}"),),
    # A customer's pages: the invoice's payments, credit notes and e-invoice; the mandate's debits and invoices.
    ("GET", "/app/invoices/{invoice_id}"): (
        ("GET", "/api/v1/invoices/{invoice_id}/payments"), ("GET", "/api/v1/invoices/{invoice_id}/credit-notes"),
        ("GET", "/api/v1/invoices/{invoice_id}/einvoice")),
    ("GET", "/app/auto-debit"): (("GET", "/api/v1/mandates/{mandate_id}/debits"), ("GET", "/api/v1/invoices")),
    ("GET", "/app/auto-debit/authorised"): (
        ("GET", "/api/v1/mandates/{mandate_id}/debits"), ("GET", "/api/v1/invoices")),
    # Without a hosted page the authorisation opens Checkout.js on the auto-debit page itself.
    ("GET", "/app/auto-debit/{mandate_id}/authorise"): (
        ("GET", "/api/v1/mandates/{mandate_id}/debits"), ("GET", "/api/v1/invoices")),
}


def test_what_a_page_calls_besides_its_twin_asks_the_same_permission():
    from services.gateway.entrypoints.http.permissions import PAGES, ROUTES

    for page, routes in ALSO_CALLS.items():
        for route in routes:
            assert ROUTES[route] is PAGES[page], (page, route)
