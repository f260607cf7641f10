"""The e-invoicing routes in front of fake stubs: the registrations by status (failed by default), organisation or
invoice, the retry (and its audit), the IRN cancellation reason a void carries, and a customer's invoice as the IRP
acknowledged it (never why an attempt failed; another organisation's invoice 404)."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import FailedPrecondition, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

EINVOICES = "/api/v1/admin/einvoices"
IRN = "a" * 64


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _registration(status: int = pb.EINVOICE_REGISTRATION_STATUS_FAILED) -> pb.EinvoiceRegistration:
    message = pb.EinvoiceRegistration(
        document_id="inv_1",
        invoice_id="inv_1",
        organisation_id="org_a",
        document_type="INV",
        document_number="INV/2627/00001",
        irn=IRN,
        status=status,
        attempts=1,
        last_error="blocked before sending: dated 2026-10-01, more than 30 days before 2026-11-05",
    )
    if status == pb.EINVOICE_REGISTRATION_STATUS_PENDING:
        message.next_attempt_time.FromSeconds(1_794_767_400)
    return message


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, pb.EINVOICE_REGISTRATION_STATUS_FAILED),
        ({"status": "pending"}, pb.EINVOICE_REGISTRATION_STATUS_PENDING),
        ({"status": "all"}, pb.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED),
    ],
)
def test_the_list_is_failed_registrations_unless_asked(gateway, params, status):
    gateway.invoicing.answer(
        "ListEinvoiceRegistrations",
        pb.ListEinvoiceRegistrationsResponse(registrations=[_registration()], next_page_token="inv_1"),
    )
    page = gateway.http.get(EINVOICES, headers=ADMIN, params={**params, "page_size": 10}).json()
    sent = gateway.invoicing.requests["ListEinvoiceRegistrations"][0]
    assert (sent.status, sent.page_size) == (status, 10)
    assert page["next_page_token"] == "inv_1"
    assert page["data"][0] == {
        "document_id": "inv_1",
        "invoice_id": "inv_1",
        "organisation_id": "org_a",
        "document_type": "INV",
        "document_number": "INV/2627/00001",
        "irn": IRN,
        "status": "failed",
        "attempts": 1,
        "ack_no": "",
        "acknowledged_at": None,
        "next_attempt_at": None,
        "cancelled_at": None,
        "last_error": "blocked before sending: dated 2026-10-01, more than 30 days before 2026-11-05",
    }


def test_an_unknown_status_is_400_naming_it(gateway):
    response = gateway.http.get(EINVOICES, headers=ADMIN, params={"status": "lost"})
    assert response.status_code == 400 and response.json()["field"] == "status"
    assert gateway.invoicing.requests == {}


def test_retry(gateway):
    gateway.invoicing.answer(
        "RetryEinvoiceRegistration",
        pb.RetryEinvoiceRegistrationResponse(registration=_registration(pb.EINVOICE_REGISTRATION_STATUS_PENDING)),
        FailedPrecondition("the e-invoice registration of inv_2 is registered; only a failed one is retried"),
        NotFound("no e-invoice registration for 'inv_9'"),
    )
    response = gateway.http.post(f"{EINVOICES}/inv_1/retry", headers=ADMIN)
    assert response.status_code == 200 and response.json()["status"] == "pending", response.text
    assert response.json()["next_attempt_at"] == "2026-11-15T18:30:00Z"
    assert gateway.invoicing.requests["RetryEinvoiceRegistration"][0].document_id == "inv_1"
    assert gateway.http.post(f"{EINVOICES}/inv_2/retry", headers=ADMIN).status_code == 422
    assert gateway.http.post(f"{EINVOICES}/inv_9/retry", headers=ADMIN).status_code == 404


def test_void_carries_the_irn_cancellation_reason(gateway):
    gateway.invoicing.answer("VoidInvoice", FailedPrecondition("the IRP no longer cancels IRN x: issue a credit note"))
    response = gateway.http.post(
        "/api/v1/admin/invoices/inv_1/void", headers=ADMIN, json={"reason": "Wrong customer", "irn_cancel_reason": "2"}
    )
    assert response.status_code == 422 and "credit note" in response.json()["detail"]
    assert gateway.invoicing.requests["VoidInvoice"][0].irn_cancel_reason == "2"
    bad = gateway.http.post(
        "/api/v1/admin/invoices/inv_1/void", headers=ADMIN, json={"reason": "x", "irn_cancel_reason": "9"}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "irn_cancel_reason"


def test_the_list_is_narrowed_to_an_organisation_or_an_invoice(gateway):
    gateway.invoicing.answer("ListEinvoiceRegistrations", pb.ListEinvoiceRegistrationsResponse())
    params = {"status": "all", "organisation_id": "org_a", "invoice_id": "inv_1"}
    assert gateway.http.get(EINVOICES, headers=ADMIN, params=params).status_code == 200
    sent = gateway.invoicing.requests["ListEinvoiceRegistrations"][0]
    assert (sent.organisation_id, sent.invoice_id) == ("org_a", "inv_1")
    too_long = gateway.http.get(EINVOICES, headers=ADMIN, params={"organisation_id": "o" * 65})
    assert too_long.status_code == 400 and too_long.json()["field"] == "organisation_id"


def _issued(organisation_id: str = "org_a") -> pb.GetInvoiceResponse:
    return pb.GetInvoiceResponse(invoice=pb.Invoice(id="inv_1", organisation_id=organisation_id,
                                                    status=pb.INVOICE_STATUS_ISSUED, number="INV/2627/00001"))


def test_a_customer_sees_the_irn_once_acknowledged_and_never_why_it_failed(gateway):
    member = gateway.org_user("member", "org_a")
    registered = _registration(pb.EINVOICE_REGISTRATION_STATUS_REGISTERED)
    registered.last_error, registered.ack_no = "", "112610000012345"
    registered.ack_time.FromSeconds(1_794_767_400)
    gateway.invoicing.answer("GetInvoice", _issued(), _issued(), _issued("org_b"))
    gateway.invoicing.answer(
        "ListEinvoiceRegistrations",
        pb.ListEinvoiceRegistrationsResponse(registrations=[registered]),
        pb.ListEinvoiceRegistrationsResponse(registrations=[_registration()]),
    )
    shown = gateway.http.get("/api/v1/invoices/inv_1/einvoice", headers=member)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"invoice_id": "inv_1", "status": "registered", "irn": IRN, "ack_no": "112610000012345",
                            "acknowledged_at": "2026-11-15T18:30:00Z", "cancelled_at": None}
    sent = gateway.invoicing.requests["ListEinvoiceRegistrations"][0]
    assert (sent.invoice_id, sent.status) == ("inv_1", pb.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED)
    failed = gateway.http.get("/api/v1/invoices/inv_1/einvoice", headers=member).json()
    assert (failed["status"], failed["irn"], failed["ack_no"]) == ("failed", "", "")
    assert "blocked" not in str(failed)
    # Another organisation's invoice: not found, and its registrations are never asked for.
    other = gateway.http.get("/api/v1/invoices/inv_1/einvoice", headers=member)
    assert other.status_code == 404 and len(gateway.invoicing.requests["ListEinvoiceRegistrations"]) == 2


def test_an_invoice_that_is_not_einvoiced_is_404(gateway):
    gateway.add_key("bk_tenant_a", "org_a")
    gateway.invoicing.answer("GetInvoice", _issued())
    gateway.invoicing.answer("ListEinvoiceRegistrations", pb.ListEinvoiceRegistrationsResponse())
    response = gateway.http.get("/api/v1/invoices/inv_1/einvoice", headers={"Authorization": "Bearer bk_tenant_a"})
    assert response.status_code == 404 and "not e-invoiced" in response.json()["detail"]
