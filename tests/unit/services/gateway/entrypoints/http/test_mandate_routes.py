"""The mandate routes in front of fake stubs: what each asks payments (and invoicing, for the customer's details),
what it answers, and what it audits."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.payments.v1 import payments_pb2 as pb
from billing_runtime.errors import AlreadyExists, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

MANDATES = "/api/v1/admin/organisations/org_1/mandates"
MANDATE = pb.Mandate(id="mdt_1", organisation_id="org_1", method=pb.MANDATE_METHOD_UPI,
                     state=pb.MANDATE_STATE_CREATED, max_amount_minor=1_500_000, customer_id="cust_1",
                     authorisation_order_id="order_1", checkout_url="https://pay.example/checkout/order_1?recurring=1",
                     reason="waiting for the customer's authorisation", key_id="rzp_live_1",
                     authorisation_amount_minor=100, authorisation_currency="INR")


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway()
    gateway.invoicing.answer("GetOrganisation", ipb.GetOrganisationResponse(organisation=ipb.Organisation(
        id="org_1", name="Acme Analytics Pvt Ltd", billing_email="ap@acme.example")))
    return gateway


def test_creating_a_mandate_fills_the_customer_from_the_organisation_and_is_audited(gateway):
    gateway.payments.answer("CreateMandate", pb.CreateMandateResponse(mandate=MANDATE, created=True))
    response = gateway.http.post(MANDATES, headers=ADMIN, json={"method": "upi", "max_amount": "15000.00",
                                                                "idempotency_key": "k1"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["state"], body["method"], body["max_amount"], body["max_amount_minor"]) == (
        "created", "upi", "15000.00", 1_500_000)
    assert body["checkout_url"].endswith("recurring=1")
    # What Checkout.js authorises it with where there is no hosted page.
    assert (body["key_id"], body["customer_id"], body["authorisation_order_id"], body["authorisation_amount_minor"],
            body["authorisation_amount"], body["authorisation_currency"]) == (
        "rzp_live_1", "cust_1", "order_1", 100, "1.00", "INR")
    [sent] = gateway.payments.requests["CreateMandate"]
    assert (sent.method, sent.max_amount_minor, sent.customer_name, sent.customer_email, sent.idempotency_key) == (
        pb.MANDATE_METHOD_UPI, 1_500_000, "Acme Analytics Pvt Ltd", "ap@acme.example", "k1")
    assert gateway.audited() == [("mandate.create", "mdt_1")]


def test_bad_amounts_and_methods_are_refused_before_payments(gateway):
    for body in ({"method": "upi"}, {"method": "netbanking", "max_amount_minor": 100},
                 {"method": "upi", "max_amount": "10.005"},
                 {"method": "upi", "max_amount": "1", "max_amount_minor": 1}):
        assert gateway.http.post(MANDATES, headers=ADMIN, json=body).status_code in (400, 422), body
    assert "CreateMandate" not in gateway.payments.requests


def test_a_second_live_mandate_is_409(gateway):
    gateway.payments.answer("CreateMandate", AlreadyExists("organisation org_1 has a confirmed mandate"))
    response = gateway.http.post(MANDATES, headers=ADMIN, json={"method": "emandate", "max_amount_minor": 10_000_000})
    assert response.status_code == 409
    assert gateway.audited() == []


def test_listing_pausing_and_cancelling(gateway):
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse(mandates=[MANDATE]))
    listed = gateway.http.get(MANDATES, headers=ADMIN, params={"include_finished": "true"}).json()
    assert [m["id"] for m in listed["data"]] == ["mdt_1"]
    assert gateway.payments.requests["ListMandates"][0].include_finished is True
    paused = pb.Mandate(id="mdt_1", state=pb.MANDATE_STATE_PAUSED, method=pb.MANDATE_METHOD_UPI)
    gateway.payments.answer("PauseMandate", pb.PauseMandateResponse(mandate=paused))
    assert gateway.http.post("/api/v1/admin/mandates/mdt_1/pause", headers=ADMIN).json()["state"] == "paused"
    gateway.payments.answer("CancelMandate", NotFound("no mandate 'mdt_2'"))
    assert gateway.http.post("/api/v1/admin/mandates/mdt_2/cancel", headers=ADMIN).status_code == 404
    assert gateway.audited() == [("mandate.pause", "mdt_1")]


def test_an_invoices_auto_debit(gateway):
    debit = pb.AutoDebit(invoice_id="inv_1", mandate_id="mdt_1", method=pb.MANDATE_METHOD_UPI,
                         state=pb.DEBIT_STATE_LINKED, currency="INR", amount_minor=1_770_000,
                         payment_link_url="https://rzp.io/i/x", reason="upi debits above INR 15,000.00 need ...")
    debit.due_time.FromSeconds(1_797_791_400)
    gateway.payments.answer("GetAutoDebit", pb.GetAutoDebitResponse(debit=debit))
    body = gateway.http.get("/api/v1/admin/invoices/inv_1/auto-debit", headers=ADMIN).json()
    assert (body["state"], body["amount"], body["payment_link_url"], body["notified_at"]) == (
        "linked", "17700.00", "https://rzp.io/i/x", None)


def test_a_mandates_debits(gateway):
    debit = pb.AutoDebit(invoice_id="inv_2", mandate_id="mdt_1", method=pb.MANDATE_METHOD_UPI,
                         state=pb.DEBIT_STATE_SCHEDULED, currency="INR", amount_minor=117_882)
    gateway.payments.answer("ListAutoDebits", pb.ListAutoDebitsResponse(debits=[debit]))
    body = gateway.http.get("/api/v1/admin/mandates/mdt_1/debits", headers=ADMIN).json()
    assert [(d["invoice_id"], d["state"], d["amount"]) for d in body["data"]] == [("inv_2", "scheduled", "1178.82")]
    sent = gateway.payments.requests["ListAutoDebits"][0]
    assert (sent.mandate_id, sent.organisation_id) == ("mdt_1", "")


def test_an_owner_sets_up_auto_debit_for_their_own_organisation_and_a_key_cannot(gateway):
    owner, member = gateway.org_user("owner", "org_1"), gateway.org_user("member", "org_1")
    gateway.add_key("bk_org_1", "org_1")
    body = {"method": "upi", "max_amount": "15000.00", "idempotency_key": "k1"}
    assert gateway.http.post("/api/v1/mandates", headers=member, json=body).status_code == 403
    key = gateway.http.post("/api/v1/mandates", headers={"Authorization": "Bearer bk_org_1"}, json=body)
    assert key.status_code == 403 and "API key cannot set up auto-debit" in key.json()["detail"]
    # The customer at Razorpay is the organisation: no other name or email may be given.
    assert gateway.http.post("/api/v1/mandates", headers=owner,
                             json={**body, "customer_email": "x@elsewhere.example"}).status_code == 400
    assert "CreateMandate" not in gateway.payments.requests
    gateway.payments.answer("CreateMandate", pb.CreateMandateResponse(mandate=MANDATE, created=True))
    made = gateway.http.post("/api/v1/mandates", headers=owner, json=body)
    assert made.status_code == 201 and made.json()["checkout_url"] == MANDATE.checkout_url, made.text
    [sent] = gateway.payments.requests["CreateMandate"]
    assert (sent.organisation_id, sent.customer_name, sent.customer_email, sent.max_amount_minor) == (
        "org_1", "Acme Analytics Pvt Ltd", "ap@acme.example", 1_500_000)
    [entry] = gateway.audit
    assert (entry["action"], entry["resource_id"], entry["actor"]) == ("mandate.create", "mdt_1", "user:usr_0001")


def test_the_organisation_pauses_and_cancels_only_its_own_mandate(gateway):
    owner = gateway.org_user("owner", "org_1")
    member = gateway.org_user("member", "org_1")
    gateway.payments.answer("ListMandates", pb.ListMandatesResponse(mandates=[MANDATE]))
    listed = gateway.http.get("/api/v1/mandates", headers=member)
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["data"]] == ["mdt_1"]
    assert gateway.payments.requests["ListMandates"][0].organisation_id == "org_1"
    # Another organisation's mandate (not in this one's list) is not found, and payments is never asked to move it.
    assert gateway.http.post("/api/v1/mandates/mdt_other/pause", headers=owner).status_code == 404
    assert gateway.http.post("/api/v1/mandates/mdt_1/pause", headers=member).status_code == 403
    paused = pb.Mandate(id="mdt_1", organisation_id="org_1", state=pb.MANDATE_STATE_PAUSED,
                        reason="paused by the organisation")
    gateway.payments.answer("PauseMandate", pb.PauseMandateResponse(mandate=paused))
    gateway.payments.answer("CancelMandate", pb.CancelMandateResponse(mandate=pb.Mandate(
        id="mdt_1", organisation_id="org_1", state=pb.MANDATE_STATE_CANCELLED)))
    assert gateway.http.post("/api/v1/mandates/mdt_1/pause", headers=owner).json()["state"] == "paused"
    assert gateway.http.post("/api/v1/mandates/mdt_1/cancel", headers=owner).json()["state"] == "cancelled"
    assert gateway.payments.requests["PauseMandate"][0].organisation_id == "org_1"
    assert gateway.payments.requests["CancelMandate"][0].organisation_id == "org_1"
    assert gateway.audited() == [("mandate.pause", "mdt_1"), ("mandate.cancel", "mdt_1")]
    gateway.payments.answer("ListAutoDebits", pb.ListAutoDebitsResponse())
    assert gateway.http.get("/api/v1/mandates/mdt_1/debits", headers=member).json() == {"data": []}
    assert gateway.payments.requests["ListAutoDebits"][0].organisation_id == "org_1"
