"""The settlement routes in front of fake stubs: an invoice's status history and settlements, the review list's
filters, and resolving a review item (who resolved it, what is audited)."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

REVIEW = "/api/v1/admin/review-items"


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _item(state: int = pb.REVIEW_ITEM_STATE_OPEN) -> pb.ReviewItem:
    return pb.ReviewItem(id="rvw_1", invoice_id="inv_1", organisation_id="org_1",
                         kind=pb.REVIEW_ITEM_KIND_OVER_PAYMENT, detail="over-payment: 100.00 INR more than was due",
                         event_id="evt_1", amount_minor=10000, currency="INR", state=state,
                         resolution="Refunded as rfd_1" if state == pb.REVIEW_ITEM_STATE_RESOLVED else "",
                         resolved_by="admin" if state == pb.REVIEW_ITEM_STATE_RESOLVED else "")


def test_an_invoices_status_history(gateway):
    change = pb.InvoiceStatusChange(invoice_id="inv_1", from_status=pb.INVOICE_STATUS_ISSUED,
                                    to_status=pb.INVOICE_STATUS_PAID, reason="payment pmt_1 captured: 1178.82 INR",
                                    cause="payment.captured:pay_1")
    change.change_time.FromSeconds(1_794_767_400)
    first = pb.InvoiceStatusChange(invoice_id="inv_1", to_status=pb.INVOICE_STATUS_ISSUED,
                                   reason="issued as INV/2627/00001", cause="invoice run run_1")
    gateway.invoicing.answer("ListInvoiceStatusChanges",
                             pb.ListInvoiceStatusChangesResponse(status_changes=[first, change]))
    body = gateway.http.get("/api/v1/admin/invoices/inv_1/status-changes", headers=ADMIN).json()
    assert [(c["from_status"], c["to_status"]) for c in body] == [(None, "issued"), ("issued", "paid")]
    assert body[1] == {"invoice_id": "inv_1", "from_status": "issued", "to_status": "paid",
                       "changed_at": "2026-11-15T18:30:00Z", "reason": "payment pmt_1 captured: 1178.82 INR",
                       "cause": "payment.captured:pay_1"}
    assert gateway.invoicing.requests["ListInvoiceStatusChanges"][0].invoice_id == "inv_1"


def test_an_invoices_settlements_with_amounts_as_minor_units_and_text(gateway):
    gateway.invoicing.answer("ListInvoiceSettlements", pb.ListInvoiceSettlementsResponse(settlements=[
        pb.Settlement(event_id="evt_1", invoice_id="inv_1", kind=pb.SETTLEMENT_KIND_PAYMENT_CAPTURED,
                      payment_id="pmt_1", provider="razorpay", amount_minor=117882, currency="INR", applied=True),
        pb.Settlement(event_id="evt_2", invoice_id="inv_1", kind=pb.SETTLEMENT_KIND_REFUND_PROCESSED,
                      refund_id="rfd_1", provider="razorpay", amount_minor=500, currency="KWD", applied=False)]))
    body = gateway.http.get("/api/v1/admin/invoices/inv_1/settlements", headers=ADMIN).json()
    assert [(s["kind"], s["amount_minor"], s["amount"], s["applied"]) for s in body] == [
        ("payment_captured", 117882, "1178.82", True), ("refund_processed", 500, "0.500", False)]


def test_an_unknown_invoice_has_no_history(gateway):
    gateway.invoicing.answer("ListInvoiceStatusChanges", NotFound("no invoice with id 'inv_9'"))
    gateway.invoicing.answer("ListInvoiceSettlements", NotFound("no invoice with id 'inv_9'"))
    assert gateway.http.get("/api/v1/admin/invoices/inv_9/status-changes", headers=ADMIN).status_code == 404
    assert gateway.http.get("/api/v1/admin/invoices/inv_9/settlements", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(("params", "state"), [
    ({}, pb.REVIEW_ITEM_STATE_OPEN), ({"state": "open"}, pb.REVIEW_ITEM_STATE_OPEN),
    ({"state": "resolved"}, pb.REVIEW_ITEM_STATE_RESOLVED), ({"state": "all"}, pb.REVIEW_ITEM_STATE_UNSPECIFIED),
])
def test_the_review_list_is_open_items_unless_asked(gateway, params, state):
    gateway.invoicing.answer("ListReviewItems",
                             pb.ListReviewItemsResponse(review_items=[_item()], next_page_token="t2"))
    page = gateway.http.get(REVIEW, headers=ADMIN, params={**params, "organisation_id": "org_1", "page_size": 20,
                                                           "page_token": "t1"}).json()
    sent = gateway.invoicing.requests["ListReviewItems"][0]
    assert (sent.state, sent.organisation_id, sent.page_size, sent.page_token) == (state, "org_1", 20, "t1")
    assert page["next_page_token"] == "t2"
    assert page["data"][0] | {"created_at": None} == {
        "id": "rvw_1", "invoice_id": "inv_1", "organisation_id": "org_1", "kind": "over_payment",
        "detail": "over-payment: 100.00 INR more than was due", "event_id": "evt_1", "currency": "INR",
        "amount_minor": 10000, "amount": "100.00", "state": "open", "created_at": None, "resolved_at": None,
        "resolution": "", "resolved_by": ""}


def test_an_unknown_review_state_is_400_naming_it(gateway):
    response = gateway.http.get(REVIEW, headers=ADMIN, params={"state": "closed"})
    assert response.status_code == 400 and response.json()["field"] == "state"
    assert gateway.invoicing.requests == {}


def test_resolving_a_review_item_says_who_and_is_audited(gateway):
    gateway.invoicing.answer("ResolveReviewItem",
                             pb.ResolveReviewItemResponse(review_item=_item(pb.REVIEW_ITEM_STATE_RESOLVED)),
                             InvalidArgument("is required: say what was done about it", field="resolution"),
                             NotFound("no review item with id 'rvw_9'"))
    response = gateway.http.post(f"{REVIEW}/rvw_1/resolve", headers=ADMIN, json={"resolution": "Refunded as rfd_1"})
    assert response.status_code == 200 and response.json()["state"] == "resolved", response.text
    sent = gateway.invoicing.requests["ResolveReviewItem"][0]
    assert (sent.review_item_id, sent.resolution, sent.resolved_by) == ("rvw_1", "Refunded as rfd_1", "admin")
    blank = gateway.http.post(f"{REVIEW}/rvw_1/resolve", headers=ADMIN, json={"resolution": ""})
    assert blank.status_code == 400 and blank.json()["field"] == "resolution"
    unknown = gateway.http.post(f"{REVIEW}/rvw_9/resolve", headers=ADMIN, json={"resolution": "x"})
    assert unknown.status_code == 404
    assert gateway.audited() == [("review_item.resolve", "rvw_1")]


def test_settlement_routes_need_the_admin_token_and_are_documented(gateway):
    routes = [("/api/v1/admin/invoices/{invoice_id}/status-changes", "get"),
              ("/api/v1/admin/invoices/{invoice_id}/settlements", "get"), (REVIEW, "get"),
              (f"{REVIEW}/{{review_item_id}}/resolve", "post")]
    for path, method in routes:
        assert gateway.http.request(method, path, json={}).status_code == 401, path
    assert gateway.invoicing.requests == {}
    paths = gateway.http.get("/openapi.json").json()["paths"]
    for path, method in routes:
        operation = paths[path][method]
        assert operation["summary"] and operation["description"] and operation["tags"] == ["invoices"]
        assert {"400", "401", "404"} <= set(operation["responses"]), (path, method)
