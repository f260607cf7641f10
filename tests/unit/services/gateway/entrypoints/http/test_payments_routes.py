"""The payments routes in front of fake stubs: what each sends to payments (amounts exactly in minor units), what
it answers, what it audits, and who may call it."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.payments.v1 import events_pb2
from billing.payments.v1 import payments_pb2 as pb
from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

JSON = {**ADMIN, "content-type": "application/json"}
KEY = {"Authorization": "Bearer bk_mine"}
OFFLINE = "/api/v1/admin/invoices/inv_1/offline-payments"


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway()
    gateway.add_key("bk_mine", "org_1")
    return gateway


def _payment(payment_id: str = "pmt_1", currency: str = "INR", amount_minor: int = 100000) -> pb.Payment:
    return pb.Payment(id=payment_id, invoice_id="inv_1", organisation_id="org_1", provider=events_pb2.PROVIDER_OFFLINE,
                      status=pb.PAYMENT_STATUS_CAPTURED, currency=currency, amount_minor=amount_minor,
                      method="bank_transfer", reference="UTR123")


def _refund(refund_id: str = "rfd_1", amount_minor: int = 50000) -> pb.Refund:
    return pb.Refund(id=refund_id, payment_id="pmt_1", invoice_id="inv_1", status=pb.REFUND_STATUS_PENDING,
                     currency="INR", amount_minor=amount_minor, reason="Duplicate", idempotency_key="k1")


def _recorded(created: bool = True, **payment) -> pb.RecordOfflinePaymentResponse:
    return pb.RecordOfflinePaymentResponse(payment=_payment(**payment), created=created)


def _offline(gateway: Gateway, body: str):
    return gateway.http.post(OFFLINE, content=body, headers=JSON)


# --- offline payments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "amount", "minor"), [
    ("INR", "1000.00", 100000), ("INR", "1000.5", 100050), ("INR", "1000", 100000), ("INR", "0.01", 1),
    ("JPY", "1500", 1500), ("KWD", "12.345", 12345), ("KWD", "0.5", 500),
    ("INR", "92233720368547758.07", 2**63 - 1),
])
def test_offline_amount_text_becomes_exact_minor_units(gateway, currency, amount, minor):
    gateway.payments.answer("RecordOfflinePayment", _recorded(currency=currency, amount_minor=minor))
    response = _offline(gateway, f'{{"amount": "{amount}", "currency": "{currency}", "method": "bank_transfer", '
                                 f'"reference": "UTR123"}}')
    assert response.status_code == 201, response.text
    assert gateway.payments.requests["RecordOfflinePayment"][0].amount_minor == minor


@pytest.mark.parametrize(("body", "field", "says"), [
    ('"amount": "10.005", "currency": "INR"', "amount", "3 decimals but INR has 2"),
    ('"amount": "1500.5", "currency": "JPY"', "amount", "JPY has no minor units"),
    ('"amount": "1.2345", "currency": "KWD"', "amount", "4 decimals but KWD has 3"),
    ('"amount": 1000.50, "currency": "INR"', "amount", "decimal text"),  # a JSON number: maybe a float upstream
    ('"amount": 1000, "currency": "INR"', "amount", "decimal text"),
    ('"amount": "1e3", "currency": "INR"', "amount", "decimal amount such as '1000.00'"),
    ('"amount": "-5", "currency": "INR"', "amount", "decimal amount"),
    ('"amount": "0.00", "currency": "INR"', "amount", "more than zero"),
    ('"amount": "100", "currency": "XYZ"', "amount", "send amount_minor instead"),
    ('"amount_minor": 1000.0, "currency": "INR"', "amount_minor", "integer"),
    ('"amount_minor": 1000.5, "currency": "INR"', "amount_minor", "integer"),
    ('"amount_minor": "1000", "currency": "INR"', "amount_minor", "integer"),
    ('"amount_minor": 0, "currency": "INR"', "amount_minor", "greater than 0"),
    ('"amount_minor": 9223372036854775808, "currency": "INR"', "amount_minor", "out of range"),
    ('"amount_minor": 100, "amount": "1.00", "currency": "INR"', "amount", "not both"),
    ('"currency": "INR"', "amount_minor", "is required"),
])
def test_offline_amounts_that_are_not_exact_are_refused_naming_the_field(gateway, body, field, says):
    response = _offline(gateway, f'{{{body}, "method": "cash", "reference": "R1"}}')
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field and says in response.json()["detail"], response.json()
    assert "RecordOfflinePayment" not in gateway.payments.requests


def test_offline_payment_is_201_then_a_replay_by_reference_and_audited_once(gateway):
    gateway.payments.answer("RecordOfflinePayment", _recorded(), _recorded(created=False))
    body = ('{"amount_minor": 100000, "currency": "INR", "method": "cheque", "reference": "CHQ 004512", '
            '"note": "Paid at the branch", "received_at": "2026-11-05T10:30:00+05:30"}')
    first, again = _offline(gateway, body), _offline(gateway, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    sent = gateway.payments.requests["RecordOfflinePayment"][0]
    assert (sent.invoice_id, sent.amount_minor, sent.currency, sent.method, sent.reference, sent.note) == (
        "inv_1", 100000, "INR", "cheque", "CHQ 004512", "Paid at the branch")
    assert sent.receive_time.ToJsonString() == "2026-11-05T05:00:00Z"
    assert first.json()["amount"] == "1000.00" and first.json()["status"] == "captured"
    assert first.json()["provider"] == "offline"
    assert gateway.audited() == [("payment.record_offline", "pmt_1")]


def test_offline_payment_without_received_at_leaves_it_to_payments(gateway):
    gateway.payments.answer("RecordOfflinePayment", _recorded())
    _offline(gateway, '{"amount_minor": 5, "currency": "INR", "method": "cash", "reference": "R"}')
    assert not gateway.payments.requests["RecordOfflinePayment"][0].HasField("receive_time")


@pytest.mark.parametrize(("body", "field"), [
    ('{"amount_minor": 5, "currency": "INR", "method": "upi", "reference": "R"}', "method"),
    ('{"amount_minor": 5, "currency": "INR", "method": "cash", "reference": "R", '
     '"received_at": "2026-11-05T10:30:00"}', "received_at"),  # no zone: which 10:30?
    ('{"amount_minor": 5, "currency": "INR", "method": "cash"}', "reference"),
    ('{"amount_minor": 5, "currency": "INR", "method": "cash", "reference": "R", "colour": "red"}', "colour"),
])
def test_offline_payment_other_fields_are_checked_before_payments_is_asked(gateway, body, field):
    response = _offline(gateway, body)
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert "RecordOfflinePayment" not in gateway.payments.requests


def test_payments_field_names_come_back_as_the_body_names_them(gateway):
    gateway.payments.answer("RecordOfflinePayment", InvalidArgument("must not be in the future", field="receive_time"),
                            InvalidArgument("must be at most 1000000000000000 minor units", field="amount_minor"))
    late = _offline(gateway, '{"amount_minor": 5, "currency": "INR", "method": "cash", "reference": "R", '
                             '"received_at": "2999-01-01T00:00:00Z"}')
    assert late.status_code == 400 and late.json()["field"] == "received_at"
    huge = _offline(gateway, '{"amount": "99999999999999.99", "currency": "INR", "method": "cash", "reference": "R"}')
    assert huge.json()["field"] == "amount"  # the client sent amount, not amount_minor
    assert gateway.audited() == []


def test_offline_payment_for_an_unknown_invoice_is_404(gateway):
    gateway.payments.answer("RecordOfflinePayment", NotFound("no issued invoice with id 'inv_1'"))
    response = _offline(gateway, '{"amount_minor": 5, "currency": "INR", "method": "cash", "reference": "R"}')
    assert response.status_code == 404 and response.json()["error"] == "not_found"


# --- refunds -------------------------------------------------------------------------------------------------


def test_refund_is_201_then_a_replay_with_the_idempotency_key_and_audited_once(gateway):
    gateway.payments.answer("CreateRefund", pb.CreateRefundResponse(refund=_refund(), created=True),
                            pb.CreateRefundResponse(refund=_refund(), created=False))
    headers = {**JSON, "Idempotency-Key": "k1"}
    body = '{"amount_minor": 50000, "reason": "Duplicate"}'
    first = gateway.http.post("/api/v1/admin/payments/pmt_1/refunds", content=body, headers=headers)
    again = gateway.http.post("/api/v1/admin/payments/pmt_1/refunds", content=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200) and again.headers["idempotent-replayed"] == "true"
    sent = gateway.payments.requests["CreateRefund"][0]
    assert (sent.payment_id, sent.amount_minor, sent.reason, sent.idempotency_key) == ("pmt_1", 50000, "Duplicate",
                                                                                      "k1")
    assert first.json()["amount"] == "500.00" and first.json()["status"] == "pending"
    assert gateway.audited() == [("refund.create", "rfd_1")]
    assert "GetPayment" not in gateway.payments.requests  # minor units need no currency


def test_refund_without_an_amount_refunds_everything_left(gateway):
    gateway.payments.answer("CreateRefund", pb.CreateRefundResponse(refund=_refund(), created=True))
    response = gateway.http.post("/api/v1/admin/payments/pmt_1/refunds", json={"reason": "Cancelled"}, headers=ADMIN)
    assert response.status_code == 201
    assert gateway.payments.requests["CreateRefund"][0].amount_minor == 0


@pytest.mark.parametrize(("currency", "amount", "minor"), [("INR", "250.50", 25050), ("JPY", "300", 300),
                                                           ("KWD", "1.005", 1005)])
def test_refund_amount_text_is_converted_with_the_payments_currency(gateway, currency, amount, minor):
    gateway.payments.answer("GetPayment", pb.GetPaymentResponse(payment=_payment(currency=currency)))
    gateway.payments.answer("CreateRefund", pb.CreateRefundResponse(refund=_refund(), created=True))
    response = gateway.http.post("/api/v1/admin/payments/pmt_1/refunds", headers=JSON,
                                 content=f'{{"amount": "{amount}", "reason": "Partial"}}')
    assert response.status_code == 201, response.text
    assert gateway.payments.requests["GetPayment"][0].payment_id == "pmt_1"
    assert gateway.payments.requests["CreateRefund"][0].amount_minor == minor


@pytest.mark.parametrize(("body", "field"), [
    ('{"amount": "250.505", "reason": "x"}', "amount"),
    ('{"amount": 250.5, "reason": "x"}', "amount"),
    ('{"amount": "0", "reason": "x"}', "amount"),  # 0 in minor units means everything: not by accident
    ('{"amount_minor": 2.5, "reason": "x"}', "amount_minor"),
    ('{"amount_minor": -1, "reason": "x"}', "amount_minor"),
    ('{"amount_minor": 100}', "reason"),
])
def test_refund_amounts_that_are_not_exact_are_refused(gateway, body, field):
    gateway.payments.answer("GetPayment", pb.GetPaymentResponse(payment=_payment()))
    response = gateway.http.post("/api/v1/admin/payments/pmt_1/refunds", content=body, headers=JSON)
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert "CreateRefund" not in gateway.payments.requests


def test_refund_over_what_is_left_is_422_and_a_reused_key_409(gateway):
    gateway.payments.answer("CreateRefund", FailedPrecondition("only 500.00 INR of this payment is left to refund"),
                            Conflict("was already used for a different refund", field="idempotency_key"))
    over = gateway.http.post("/api/v1/admin/payments/pmt_1/refunds", json={"amount_minor": 10**6, "reason": "x"},
                             headers=ADMIN)
    reused = gateway.http.post("/api/v1/admin/payments/pmt_1/refunds", json={"amount_minor": 1, "reason": "y"},
                               headers={**ADMIN, "Idempotency-Key": "k1"})
    assert over.status_code == 422 and "left to refund" in over.json()["detail"]
    assert reused.status_code == 409 and reused.json()["field"] == "idempotency_key"
    assert gateway.audited() == []


# --- reading -------------------------------------------------------------------------------------------------


def _collection() -> pb.GetInvoicePaymentsResponse:
    return pb.GetInvoicePaymentsResponse(
        order=pb.Order(invoice_id="inv_1", status=pb.ORDER_STATUS_FAILED, currency="INR", amount_minor=118000,
                       status_reason="the provider refused the order",
                       error=pb.ProviderError(http_status=400, code="BAD_REQUEST_ERROR", field="amount")),
        payments=[_payment()], refunds=[_refund()], currency="INR", total_minor=118000,
        amount_captured_minor=100000, amount_refunded_minor=50000, due_date="2026-11-15",
        amount_credited_minor=8000, amount_due_minor=10000)


def test_invoice_payments_shows_the_order_its_error_and_totals(gateway):
    gateway.payments.answer("GetInvoicePayments", _collection())
    body = gateway.http.get("/api/v1/admin/invoices/inv_1/payments", headers=ADMIN).json()
    assert body["invoice_id"] == "inv_1" and body["order"]["status"] == "failed"
    assert body["order"]["status_reason"] == "the provider refused the order"
    assert (body["order"]["error"]["code"], body["order"]["error"]["field"]) == ("BAD_REQUEST_ERROR", "amount")
    assert (body["total"], body["amount_captured"], body["amount_refunded"]) == ("1180.00", "1000.00", "500.00")
    assert [p["reference"] for p in body["payments"]] == ["UTR123"] and body["refunds"][0]["amount_minor"] == 50000
    assert body["due_date"] == "2026-11-15"
    # What credit notes took off and what payments is collecting, as payments says (not worked out here).
    assert (body["amount_credited_minor"], body["amount_credited"]) == (8000, "80.00")
    assert (body["amount_due_minor"], body["amount_due"]) == (10000, "100.00")
    assert gateway.payments.requests["GetInvoicePayments"][0].invoice_id == "inv_1"


def test_an_invoice_without_an_order_yet_has_order_null(gateway):
    gateway.payments.answer("GetInvoicePayments", pb.GetInvoicePaymentsResponse(currency="INR", total_minor=5))
    body = gateway.http.get("/api/v1/admin/invoices/inv_1/payments", headers=ADMIN).json()
    assert body["order"] is None and body["payments"] == []
    assert (body["amount_credited_minor"], body["amount_due_minor"], body["amount_due"]) == (0, 0, "0.00")


def test_lists_map_their_filters_and_paging(gateway):
    gateway.payments.answer("ListPayments", pb.ListPaymentsResponse(payments=[_payment()], next_page_token="t2"))
    gateway.payments.answer("ListRefunds", pb.ListRefundsResponse(refunds=[_refund()]))
    gateway.payments.answer("ListWebhookEvents", pb.ListWebhookEventsResponse(events=[pb.WebhookEvent(
        event_id="evt_1", provider=events_pb2.PROVIDER_RAZORPAY, event_type="payment.captured", outcome="applied")]))
    payments = gateway.http.get("/api/v1/admin/payments", headers=ADMIN, params={
        "organisation_id": "org_1", "invoice_id": "inv_1", "page_size": 10, "page_token": "t1"}).json()
    assert payments["next_page_token"] == "t2" and payments["data"][0]["id"] == "pmt_1"
    sent = gateway.payments.requests["ListPayments"][0]
    assert (sent.organisation_id, sent.invoice_id, sent.page_size, sent.page_token) == ("org_1", "inv_1", 10, "t1")
    refunds = gateway.http.get("/api/v1/admin/refunds", headers=ADMIN, params={"payment_id": "pmt_1"}).json()
    assert refunds["data"][0]["id"] == "rfd_1" and gateway.payments.requests["ListRefunds"][0].payment_id == "pmt_1"
    events = gateway.http.get("/api/v1/admin/webhook-events", headers=ADMIN,
                              params={"event_type": "payment.captured"}).json()
    assert events["data"][0] | {"received_at": None} == {
        "event_id": "evt_1", "provider": "razorpay", "event_type": "payment.captured", "received_at": None,
        "processed_at": None, "outcome": "applied"}
    assert gateway.payments.requests["ListWebhookEvents"][0].event_type == "payment.captured"
    assert gateway.http.get("/api/v1/admin/payments", headers=ADMIN,
                            params={"page_size": 501}).json()["field"] == "page_size"


def test_a_payment_with_its_refunds(gateway):
    gateway.payments.answer("GetPayment", pb.GetPaymentResponse(payment=_payment(), refunds=[_refund()]))
    body = gateway.http.get("/api/v1/admin/payments/pmt_1", headers=ADMIN).json()
    assert body["id"] == "pmt_1" and body["method"] == "bank_transfer" and body["refunds"][0]["id"] == "rfd_1"


def test_admin_routes_need_the_admin_token(gateway):
    for method, path in (("GET", "/api/v1/admin/payments"), ("GET", "/api/v1/admin/payments/pmt_1"),
                         ("POST", OFFLINE), ("POST", "/api/v1/admin/payments/pmt_1/refunds"),
                         ("GET", "/api/v1/admin/refunds"), ("GET", "/api/v1/admin/webhook-events"),
                         ("GET", "/api/v1/admin/invoices/inv_1/payments"),
                         ("GET", "/api/v1/admin/invoices/inv_1/checkout")):
        for headers in ({}, KEY):
            assert gateway.http.request(method, path, headers=headers).status_code == 401, (method, path)
    assert gateway.payments.requests == {}


# --- the key holder's own invoices ---------------------------------------------------------------------------


def _invoice(organisation_id: str, status: int = ipb.INVOICE_STATUS_ISSUED) -> ipb.GetInvoiceResponse:
    return ipb.GetInvoiceResponse(invoice=ipb.Invoice(id="inv_1", organisation_id=organisation_id, status=status,
                                                      currency="INR"))


CHECKOUT = pb.Checkout(key_id="rzp_test_abc", order_id="order_1", amount_minor=118000, currency="INR",
                       name="Billing Platform", description="Invoice INV/2627/00001", prefill_name="Acme",
                       prefill_email="billing@acme.example", prefill_contact="+919900000000", invoice_id="inv_1",
                       invoice_number="INV/2627/00001", checkout_url="http://127.0.0.1:9/checkout/order_1",
                       provider=events_pb2.PROVIDER_RAZORPAY)
VERIFY = {"razorpay_order_id": "order_1", "razorpay_payment_id": "pay_1", "razorpay_signature": "ab" * 32}


def test_checkout_body_is_what_razorpay_checkout_needs(gateway):
    gateway.invoicing.answer("GetInvoice", _invoice("org_1"))
    gateway.payments.answer("GetCheckout", pb.GetCheckoutResponse(checkout=CHECKOUT))
    response = gateway.http.get("/api/v1/invoices/inv_1/checkout", headers=KEY)
    assert response.status_code == 200
    assert response.json() == {
        "provider": "razorpay", "client_secret": "",
        "key_id": "rzp_test_abc", "order_id": "order_1", "amount_minor": 118000, "amount": "1180.00",
        "currency": "INR", "name": "Billing Platform", "description": "Invoice INV/2627/00001",
        "prefill": {"name": "Acme", "email": "billing@acme.example", "contact": "+919900000000"},
        "invoice_id": "inv_1", "invoice_number": "INV/2627/00001",
        "checkout_url": "http://127.0.0.1:9/checkout/order_1"}
    assert gateway.payments.requests["GetCheckout"][0].invoice_id == "inv_1"
    assert gateway.invoicing.requests["GetInvoice"][0].invoice_id == "inv_1"


def test_verify_passes_checkouts_fields_on_and_returns_the_payment(gateway):
    gateway.invoicing.answer("GetInvoice", _invoice("org_1"))
    gateway.payments.answer("VerifyCheckout", pb.VerifyCheckoutResponse(payment=pb.Payment(
        id="pmt_9", provider=events_pb2.PROVIDER_RAZORPAY, provider_payment_id="pay_1",
        status=pb.PAYMENT_STATUS_CREATED, currency="INR", amount_minor=118000)),
        InvalidArgument("does not match the order and payment", field="razorpay_signature"))
    response = gateway.http.post("/api/v1/invoices/inv_1/checkout/verify", json=VERIFY, headers=KEY)
    assert response.status_code == 200 and response.json()["status"] == "created", response.text
    sent = gateway.payments.requests["VerifyCheckout"][0]
    assert (sent.invoice_id, sent.razorpay_order_id, sent.razorpay_payment_id, sent.razorpay_signature) == (
        "inv_1", "order_1", "pay_1", "ab" * 32)
    forged = gateway.http.post("/api/v1/invoices/inv_1/checkout/verify", json=VERIFY, headers=KEY)
    assert forged.status_code == 400 and forged.json()["field"] == "razorpay_signature"
    missing = gateway.http.post("/api/v1/invoices/inv_1/checkout/verify", headers=KEY,
                                json={k: v for k, v in VERIFY.items() if k != "razorpay_signature"})
    assert missing.status_code == 400 and missing.json()["field"] == "razorpay_signature"


def test_a_key_holders_collection_view_is_the_admins(gateway):
    gateway.invoicing.answer("GetInvoice", _invoice("org_1"))
    gateway.payments.answer("GetInvoicePayments", _collection())
    mine = gateway.http.get("/api/v1/invoices/inv_1/payments", headers=KEY).json()
    admin = gateway.http.get("/api/v1/admin/invoices/inv_1/payments", headers=ADMIN).json()
    assert mine == admin


@pytest.mark.parametrize("answer", [_invoice("org_2"), _invoice("org_1", ipb.INVOICE_STATUS_DRAFT),
                                    NotFound("invoice inv_1 not found", field="invoice_id")])
def test_another_organisations_invoice_is_404_and_payments_is_never_asked(gateway, answer):
    gateway.invoicing.answer("GetInvoice", answer)
    responses = [gateway.http.get("/api/v1/invoices/inv_1/checkout", headers=KEY),
                 gateway.http.post("/api/v1/invoices/inv_1/checkout/verify", json=VERIFY, headers=KEY),
                 gateway.http.get("/api/v1/invoices/inv_1/payments", headers=KEY)]
    assert [r.status_code for r in responses] == [404, 404, 404]
    # The same answer whether the invoice is another organisation's, a draft or missing: nothing to probe.
    assert {r.json()["detail"] for r in responses} == {"invoice_id: invoice inv_1 not found"}
    assert gateway.payments.requests == {}


def test_key_routes_need_a_key(gateway):
    for method, path in (("GET", "/api/v1/invoices/inv_1/checkout"), ("POST", "/api/v1/invoices/inv_1/checkout/verify"),
                         ("GET", "/api/v1/invoices/inv_1/payments")):
        assert gateway.http.request(method, path).status_code == 401
        assert gateway.http.request(method, path, headers={"Authorization": "Bearer bk_unknown"}).status_code == 401
    assert gateway.payments.requests == {} and gateway.invoicing.requests == {}


def test_an_invoice_not_payable_online_is_422(gateway):
    gateway.invoicing.answer("GetInvoice", _invoice("org_1"))
    gateway.payments.answer("GetCheckout", FailedPrecondition("the invoice's order is not created yet: retry shortly"))
    response = gateway.http.get("/api/v1/invoices/inv_1/checkout", headers=KEY)
    assert response.status_code == 422 and "retry shortly" in response.json()["detail"]


def test_openapi_documents_every_payments_route(gateway):
    paths = gateway.http.get("/openapi.json").json()["paths"]
    routes = [("/api/v1/admin/invoices/{invoice_id}/payments", "get"), ("/api/v1/admin/payments", "get"),
              ("/api/v1/admin/payments/{payment_id}", "get"),
              ("/api/v1/admin/invoices/{invoice_id}/offline-payments", "post"),
              ("/api/v1/admin/payments/{payment_id}/refunds", "post"), ("/api/v1/admin/refunds", "get"),
              ("/api/v1/admin/webhook-events", "get"), ("/api/v1/admin/invoices/{invoice_id}/checkout", "get"),
              ("/api/v1/invoices/{invoice_id}/checkout", "get"),
              ("/api/v1/invoices/{invoice_id}/checkout/verify", "post"),
              ("/api/v1/invoices/{invoice_id}/payments", "get")]
    for path, method in routes:
        operation = paths[path][method]
        assert operation["summary"] and operation["description"], (path, method)
        assert {"400", "401", "404", "422"} <= set(operation["responses"]), (path, method)
        assert operation["tags"] == (["payments"] if "/admin/" in path else ["payments (API key)"])
    refund = paths["/api/v1/admin/payments/{payment_id}/refunds"]["post"]
    assert {"201", "200"} <= set(refund["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in refund["parameters"])
    collection = gateway.http.get("/openapi.json").json()["components"]["schemas"]["InvoicePayments"]
    for name in ("amount_credited_minor", "amount_credited", "amount_due_minor", "amount_due"):
        assert name in collection["required"] and name in collection["properties"], name
    assert "settled or void" in collection["properties"]["amount_due_minor"]["description"]


# --- payment links -------------------------------------------------------------------------------------------


def _link(created: bool) -> pb.CreatePaymentLinkResponse:
    link = pb.PaymentLink(id="plk_1", invoice_id="inv_1", provider_link_id="plink_1",
                          short_url="https://rzp.io/i/abc", status="created", amount_minor=117882, currency="INR")
    link.expire_time.FromSeconds(1_794_767_400)
    return pb.CreatePaymentLinkResponse(payment_link=link, created=created)


def test_a_payment_link_is_201_when_made_then_200_while_it_is_open_and_audited_once(gateway):
    gateway.payments.answer("CreatePaymentLink", _link(True), _link(False))
    first = gateway.http.post("/api/v1/admin/invoices/inv_1/payment-link", headers=ADMIN)
    again = gateway.http.post("/api/v1/admin/invoices/inv_1/payment-link", headers=ADMIN)
    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert "idempotent-replayed" not in again.headers  # no request was replayed: the link is still open
    assert first.json() == again.json() == {
        "id": "plk_1", "invoice_id": "inv_1", "provider_link_id": "plink_1", "short_url": "https://rzp.io/i/abc",
        "status": "created", "currency": "INR", "amount_minor": 117882, "amount": "1178.82", "created_at": None,
        "expires_at": "2026-11-15T18:30:00Z"}
    assert gateway.payments.requests["CreatePaymentLink"][0].invoice_id == "inv_1"
    assert gateway.audited() == [("payment_link.create", "plk_1")]


@pytest.mark.parametrize(("error", "code"), [
    (FailedPrecondition("invoice INV/1 has nothing to pay (paid)"), 422),
    (FailedPrecondition("online payments are not configured (no Razorpay keys): pay offline"), 422),
    (NotFound("payments has no invoice with id 'inv_1' (it may not be issued yet)"), 404),
])
def test_an_invoice_a_link_cannot_be_made_for_says_why(gateway, error, code):
    gateway.payments.answer("CreatePaymentLink", error)
    response = gateway.http.post("/api/v1/admin/invoices/inv_1/payment-link", headers=ADMIN)
    assert response.status_code == code and response.json()["detail"] == error.message
    assert gateway.audited() == []


def test_a_key_holder_gets_a_link_for_its_own_invoices_only(gateway):
    gateway.invoicing.answer("GetInvoice", _invoice("org_1"), _invoice("org_2"))
    gateway.payments.answer("CreatePaymentLink", _link(False))
    mine = gateway.http.post("/api/v1/invoices/inv_1/payment-link", headers=KEY)
    assert mine.status_code == 200 and mine.json()["short_url"] == "https://rzp.io/i/abc"
    theirs = gateway.http.post("/api/v1/invoices/inv_1/payment-link", headers=KEY)
    assert theirs.status_code == 404 and theirs.json()["detail"] == "invoice_id: invoice inv_1 not found"
    assert len(gateway.payments.requests["CreatePaymentLink"]) == 1
    assert gateway.http.post("/api/v1/invoices/inv_1/payment-link").status_code == 401
    assert gateway.http.post("/api/v1/admin/invoices/inv_1/payment-link", headers=KEY).status_code == 401


def test_openapi_documents_the_payment_link_routes(gateway):
    paths = gateway.http.get("/openapi.json").json()["paths"]
    for path, tag in (("/api/v1/admin/invoices/{invoice_id}/payment-link", "payments"),
                      ("/api/v1/invoices/{invoice_id}/payment-link", "payments (API key)")):
        operation = paths[path]["post"]
        assert operation["summary"] and operation["description"] and operation["tags"] == [tag]
        assert {"200", "201", "404", "422"} <= set(operation["responses"]), path
