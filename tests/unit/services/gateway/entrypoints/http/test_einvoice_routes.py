"""The e-invoicing routes in front of fake stubs: the registrations by status (failed by default), the retry (and
its audit), and the IRN cancellation reason a void carries."""

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
