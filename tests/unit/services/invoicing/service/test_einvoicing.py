"""The e-invoice registrar with fakes: each outcome of a registration attempt, the duplicate resolved by Get IRN,
the 30-day block, voiding (withdraw, cancel within 24 hours, refuse after) and the operators' retry."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jwt
import pytest

from billing_runtime.errors import FailedPrecondition, Unavailable
from services.invoicing.domain.einvoice import SellerDetails
from services.invoicing.domain.einvoice_checks import TurnoverBand
from services.invoicing.domain.einvoice_registration import (
    Acknowledgement,
    IrpRefusal,
    IrpUnavailable,
    ListedRegistration,
    Registration,
    RegistrationStatus,
)
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.service.einvoicing import EinvoicePolicy, EinvoiceRegistrar, pending_registration
from tests.unit.services.invoicing.adapters import invoice_samples as samples

NOW = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
POLICY = EinvoicePolicy(True, SellerDetails("Billing Platform Demo Pvt Ltd", "1 MG Road", "Bengaluru", 560001, "29"))
INVOICE = samples.inr_intra_state()  # issued 1 Nov 2026, total 6,540.90


def signed(buyer: str, total: float) -> str:
    return jwt.encode(
        {"data": json.dumps({"BuyerDtls": {"Gstin": buyer}, "ValDtls": {"TotInvVal": total}})},
        "k" * 32,
        algorithm="HS256",
    )


class Store:
    def __init__(self, invoice=INVOICE) -> None:
        self.invoice = invoice
        self.rows: dict[str, Registration] = {}

    async def add_pending(self, registrations):
        for r in registrations:
            self.rows.setdefault(r.document_id, r)

    async def claim_due(self, now, lease, limit):
        due = [r for r in self.rows.values() if r.status is RegistrationStatus.PENDING and r.next_attempt_at <= now]
        claimed = [replace(r, attempts=r.attempts + 1, next_attempt_at=now + lease) for r in due[:limit]]
        for r in claimed:
            self.rows[r.document_id] = r
        return claimed

    async def save(self, registration, now):
        self.rows[registration.document_id] = registration

    async def get(self, document_id, *, for_update=False):
        return self.rows.get(document_id)

    async def list(self, *, status="", organisation_id="", invoice_id="", limit, after):
        return [
            ListedRegistration(r, self.invoice.organisation_id)
            for r in self.rows.values()
            if (not status or r.status.value == status)
            and (not organisation_id or organisation_id == self.invoice.organisation_id)
            and (not invoice_id or r.invoice_id == invoice_id)
        ][:limit]


class Invoices:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, invoice_id, *, for_update=False):
        return self.store.invoice if invoice_id == self.store.invoice.id else None


class Uow:
    def __init__(self, store: Store) -> None:
        self.einvoices = store
        self.invoices = Invoices(store)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None


class Irp:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, Any]] = []

    def _next(self, call: str, argument: Any) -> Any:
        self.calls.append((call, argument))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def generate(self, document_json):
        return self._next("generate", json.loads(document_json))

    async def get(self, irn):
        return self._next("get", irn)

    async def cancel(self, irn, reason_code, remark):
        return self._next("cancel", (irn, reason_code))


def ack(irn: str, **kw) -> Acknowledgement:
    return Acknowledgement(
        irn=irn,
        ack_no="112610000000001",
        ack_at=NOW,
        signed_invoice=kw.get("signed_invoice", signed(samples.INTRA_GSTIN, 6540.9)),
        signed_qr_code="qr",
        status=kw.get("status", "ACT"),
    )


def setup(*answers, clock=NOW, band=TurnoverBand.FROM_10_CRORE, invoice=INVOICE):
    store = Store(invoice)
    registration = pending_registration(invoice, NOW - timedelta(minutes=1))
    store.rows[registration.document_id] = registration
    irp = Irp(*answers)
    registrar = EinvoiceRegistrar(lambda: Uow(store), irp, replace(POLICY, turnover_band=band), clock=lambda: clock)
    return store, irp, registrar, registration


async def test_registered():
    store, irp, registrar, pending = setup(ack("x"))
    assert await registrar.register_due() == 1
    row = store.rows[INVOICE.id]
    assert (row.status, row.ack_no, row.attempts, row.last_error) == (
        RegistrationStatus.REGISTERED,
        "112610000000001",
        1,
        "",
    )
    assert irp.calls[0][1]["DocDtls"]["No"] == INVOICE.number


async def test_unreachable_irp_is_retried_with_backoff():
    store, _, registrar, _ = setup(IrpUnavailable("the IRP answered HTTP 503"))
    await registrar.register_due()
    row = store.rows[INVOICE.id]
    assert (row.status, row.next_attempt_at, row.last_error) == (
        RegistrationStatus.PENDING,
        NOW + timedelta(seconds=30),
        "the IRP answered HTTP 503",
    )


async def test_refusal_fails_with_the_irp_codes():
    store, _, registrar, _ = setup(IrpRefusal([("2189", "Invalid total invoice value")]))
    await registrar.register_due()
    row = store.rows[INVOICE.id]
    assert row.status is RegistrationStatus.FAILED and "2189" in row.last_error and row.next_attempt_at is None


async def test_duplicate_with_same_buyer_and_total_is_ours():
    store, irp, registrar, _ = setup(IrpRefusal([("2150", "Duplicate IRN")]), ack("existing"))
    await registrar.register_due()
    assert [call for call, _ in irp.calls] == ["generate", "get"]
    assert store.rows[INVOICE.id].status is RegistrationStatus.REGISTERED


@pytest.mark.parametrize("theirs", [signed(samples.INTRA_GSTIN, 6000.0), signed(samples.INTER_GSTIN, 6540.9)])
async def test_duplicate_with_other_details_fails(theirs):
    store, irp, registrar, _ = setup(IrpRefusal([("2150", "Duplicate IRN")]), ack("x", signed_invoice=theirs))
    await registrar.register_due()
    row = store.rows[INVOICE.id]
    assert row.status is RegistrationStatus.FAILED and "already holds IRN" in row.last_error


async def test_thirty_day_rule_blocks_before_sending():
    store, irp, registrar, _ = setup(clock=datetime(2026, 12, 2, 6, tzinfo=UTC))
    await registrar.register_due()
    row = store.rows[INVOICE.id]
    assert row.status is RegistrationStatus.FAILED and row.last_error.startswith("blocked before sending")
    assert irp.calls == []
    # A smaller supplier has no such limit.
    store, irp, registrar, _ = setup(ack("x"), clock=datetime(2027, 3, 1, tzinfo=UTC), band=TurnoverBand.BELOW_10_CRORE)
    await registrar.register_due()
    assert store.rows[INVOICE.id].status is RegistrationStatus.REGISTERED


async def test_voided_before_registration_is_never_sent():
    store, irp, registrar, _ = setup(invoice=replace(INVOICE, status=InvoiceStatus.VOID))
    await registrar.register_due()
    assert store.rows[INVOICE.id].status is RegistrationStatus.CANCELLED and irp.calls == []


async def registered_store(*answers, clock=NOW):
    store, irp, registrar, pending = setup(ack("irn1"), *answers, clock=clock)
    await registrar.register_due()
    return store, irp, registrar


async def test_void_within_24_hours_cancels_the_irn():
    store, irp, registrar = await registered_store(NOW + timedelta(hours=1))
    cancelled = await registrar.cancel_for_void(INVOICE.id, "2", "wrong customer")
    assert irp.calls[-1] == ("cancel", ("irn1", "2"))
    assert (cancelled.status, cancelled.cancel_reason) == (RegistrationStatus.CANCELLED, "2")


async def test_void_after_24_hours_is_refused_without_asking_the_irp():
    store, irp, registrar = await registered_store(clock=NOW)
    later = EinvoiceRegistrar(lambda: Uow(store), irp, POLICY, clock=lambda: NOW + timedelta(hours=24, seconds=1))
    with pytest.raises(FailedPrecondition, match="credit note"):
        await later.cancel_for_void(INVOICE.id, "", "late")
    assert [c for c, _ in irp.calls] == ["generate"] and store.rows[INVOICE.id].status is RegistrationStatus.REGISTERED


async def test_void_refused_by_the_irp_2270_or_away():
    store, irp, registrar = await registered_store(
        IrpRefusal([("2270", "time limit crossed")]), IrpUnavailable("timeout")
    )
    with pytest.raises(FailedPrecondition, match="2270.*credit note"):
        await registrar.cancel_for_void(INVOICE.id, "4", "x")
    with pytest.raises(Unavailable, match="not voided"):
        await registrar.cancel_for_void(INVOICE.id, "4", "x")
    assert store.rows[INVOICE.id].status is RegistrationStatus.REGISTERED


async def test_void_of_a_pending_registration_withdraws_it():
    store, irp, registrar, _ = setup()
    withdrawn = await registrar.cancel_for_void(INVOICE.id, "3", "order cancelled")
    assert withdrawn.status is RegistrationStatus.CANCELLED and irp.calls == []
    assert await registrar.register_due() == 0


async def test_operators_retry_failed_ones_only():
    store, _, registrar, _ = setup(IrpRefusal([("2176", "Invalid HSN code(s)")]))
    await registrar.register_due()
    again = await registrar.retry(INVOICE.id)
    assert (again.status, again.next_attempt_at) == (RegistrationStatus.PENDING, NOW)
    assert await registrar.retry(INVOICE.id) == again  # pending: unchanged
    store.rows[INVOICE.id] = replace(again, status=RegistrationStatus.REGISTERED)
    with pytest.raises(FailedPrecondition):
        await registrar.retry(INVOICE.id)


async def test_registrations_are_listed_with_their_organisation_and_narrowed_to_one():
    store, _, registrar, _ = setup(IrpRefusal([("2176", "Invalid HSN code(s)")]))
    await registrar.register_due()
    [listed] = await registrar.list(status="failed", limit=10, after=None)
    assert (listed.registration.document_id, listed.organisation_id) == (INVOICE.id, INVOICE.organisation_id)
    assert await registrar.list(status="", limit=10, after=None, organisation_id="org_someone_else") == []
    assert await registrar.list(status="", limit=10, after=None, invoice_id=INVOICE.id) == [listed]


def test_the_queued_irn_is_the_formula_of_the_invoice():
    from services.invoicing.domain.einvoice import DocumentType, irn

    queued = pending_registration(INVOICE, NOW)
    assert queued.irn == irn(samples.SUPPLIER_GSTIN, date(2026, 11, 1), DocumentType.INVOICE, INVOICE.number)
    assert not POLICY.applies(replace(INVOICE, customer=replace(INVOICE.customer, gstin="")))


async def test_voided_while_being_registered_cancels_the_fresh_irn():
    store, irp, registrar, _ = setup()

    async def generate(document_json):
        irp.calls.append(("generate", None))
        # The invoice is voided while the IRP works: the pending registration is withdrawn meanwhile.
        await registrar.cancel_for_void(INVOICE.id, "1", "duplicate")
        return ack("fresh")

    irp.generate = generate
    irp.answers = [NOW + timedelta(minutes=1)]
    await registrar.register_due()
    row = store.rows[INVOICE.id]
    assert [c for c, _ in irp.calls] == ["generate", "cancel"] and irp.calls[-1][1] == ("fresh", "1")
    assert (row.status, row.irn, row.cancel_reason) == (RegistrationStatus.CANCELLED, "fresh", "1")
