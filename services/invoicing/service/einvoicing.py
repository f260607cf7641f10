"""E-invoicing: registering issued invoices with the IRP, and cancelling their IRNs when they are voided.

Invariants
- The issuing transaction queues a ``pending`` registration for every e-invoiced invoice (:func:`queue`), with the
  IRN computed locally; no network call happens inside it. The registrar (:class:`EinvoiceRegistrar`, a worker
  loop in the invoicing process) drains the queue: claims due rows in one short transaction, talks to the IRP
  outside any transaction, and stores the answer in another.
- Registration is idempotent: the same document always has the same IRN, and a duplicate answer (2150) is resolved
  by Get IRN and comparing the buyer and the total, never by registering again.
- An unreachable IRP leaves the registration pending with exponential backoff; a refusal, or a document our own
  checks or the 30-day rule block, marks it ``failed``: the invoice stays issued, flagged, listed for operators,
  who fix the cause and retry.
- The PDF of an e-invoiced invoice is rendered only once it is registered (``registration_for_pdf``): notification
  retries the e-mail until then.
- Voiding an e-invoiced invoice cancels its IRN first, within 24 hours of its acknowledgement; after that the void
  is refused with a message saying a credit note is needed. An IRN never registered (pending or failed) is simply
  withdrawn from the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import jwt

from billing_runtime.errors import FailedPrecondition, NotFound, Unavailable
from billing_runtime.logging import get_logger
from services.invoicing.domain.billing_period import zone_of
from services.invoicing.domain.credit_note import CreditNote
from services.invoicing.domain.einvoice import (
    DocumentType,
    SellerDetails,
    credit_note_document,
    dumps,
    invoice_document,
    irn,
    is_einvoiced,
)
from services.invoicing.domain.einvoice_checks import (
    TurnoverBand,
    cancel_reason,
    check,
    check_cancellable,
    reporting_problem,
)
from services.invoicing.domain.einvoice_registration import (
    MAX_ERROR_LENGTH,
    Acknowledgement,
    IrpRefusal,
    IrpUnavailable,
    ListedRegistration,
    Registration,
    RegistrationStatus,
    backoff,
)
from services.invoicing.domain.invoice import Invoice, InvoiceStatus
from services.invoicing.service.ports import InvoicingTransaction, IrpConnector

log = get_logger(__name__)
DUPLICATE_IRN = "2150"
CANCEL_TOO_LATE = "2270"


@dataclass(frozen=True)
class EinvoicePolicy:
    """The supplier's e-invoicing configuration (``InvoicingSettings.einvoice_*``)."""

    enabled: bool
    seller: SellerDetails
    turnover_band: TurnoverBand = TurnoverBand.FROM_10_CRORE
    time_zone: str = "Asia/Kolkata"

    def applies(self, invoice: Invoice) -> bool:
        """Whether ``invoice`` is e-invoiced: switched on, and B2B or export (never B2C)."""
        return self.enabled and is_einvoiced(invoice.tax_regime, invoice.customer.gstin)


DISABLED = EinvoicePolicy(False, SellerDetails("", "", "", 0, ""))


def pending_registration(invoice: Invoice, now: datetime) -> Registration:
    assert invoice.issue_date is not None and invoice.number
    return Registration(
        document_id=invoice.id,
        invoice_id=invoice.id,
        document_type=DocumentType.INVOICE.value,
        document_number=invoice.number,
        document_date=invoice.issue_date,
        irn=irn(invoice.supplier.gstin, invoice.issue_date, DocumentType.INVOICE, invoice.number),
        status=RegistrationStatus.PENDING,
        next_attempt_at=now,
    )


async def queue(uow: InvoicingTransaction, policy: EinvoicePolicy, issued: list[Invoice], now: datetime) -> None:
    """Inside the issuing transaction: a pending registration for each e-invoiced invoice of ``issued``."""
    pending = [pending_registration(invoice, now) for invoice in issued if policy.applies(invoice)]
    if pending:
        await uow.einvoices.add_pending(pending)


async def queue_credit_note(
    uow: InvoicingTransaction, policy: EinvoicePolicy, note: CreditNote, invoice: Invoice, now: datetime
) -> None:
    """Inside the transaction issuing ``note``: a pending registration (Typ CRN) when its invoice is e-invoiced."""
    if not policy.applies(invoice):
        return
    await uow.einvoices.add_pending(
        [
            Registration(
                document_id=note.id,
                invoice_id=invoice.id,
                document_type=DocumentType.CREDIT_NOTE.value,
                document_number=note.number,
                document_date=note.issue_date,
                irn=irn(note.supplier.gstin, note.issue_date, DocumentType.CREDIT_NOTE, note.number),
                status=RegistrationStatus.PENDING,
                next_attempt_at=now,
            )
        ]
    )


def _claims(signed: str, verify_key: str | None) -> dict[str, Any]:
    """The claims of a JWT the IRP signed (NIC carries them as a JSON string in ``data``)."""
    if verify_key:
        decoded = jwt.decode(signed, verify_key, algorithms=["RS256"])
    else:
        decoded = jwt.decode(signed, options={"verify_signature": False})
    data = decoded.get("data", decoded)
    return json.loads(data) if isinstance(data, str) else dict(data)


class EinvoiceRegistrar:
    """Drains the registration queue against the IRP; cancels IRNs on void; lists and retries for operators."""

    def __init__(
        self,
        uow: Callable[[], InvoicingTransaction],
        connector: IrpConnector,
        policy: EinvoicePolicy,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = timedelta(minutes=2),
        batch_size: int = 20,
        signing_public_key: str | None = None,
        retry_first: timedelta = timedelta(seconds=30),
    ) -> None:
        self._retry_first = retry_first
        self._uow = uow
        self._connector = connector
        self._policy = policy
        self._clock = clock
        self._lease = lease
        self._batch_size = batch_size
        self._signing_public_key = signing_public_key

    async def register_due(self) -> int:
        """Register the due pending documents; how many were tried."""
        now = self._clock()
        async with self._uow() as uow:
            claimed = await uow.einvoices.claim_due(now, self._lease, self._batch_size)
        for registration in claimed:
            try:
                outcome = await self._register(registration)
            except Exception as error:  # noqa: BLE001 - one document's surprise must not stop the others
                log.exception("e-invoice registration failed unexpectedly", document_id=registration.document_id)
                outcome = self._retry_later(registration, f"unexpected error: {type(error).__name__}")
            outcome = await self._store(registration, outcome)
            log.info(
                "e-invoice registration",
                document_id=outcome.document_id,
                status=outcome.status.value,
                attempts=outcome.attempts,
                error=outcome.last_error[:200],
            )
        return len(claimed)

    async def _store(self, claimed: Registration, outcome: Registration) -> Registration:
        """Store ``outcome`` if the registration is still as this worker claimed it. Voided meanwhile (withdrawn
        while the IRP was registering it): the fresh IRN is cancelled at once, so no void invoice keeps a live one."""
        async with self._uow() as uow:
            current = await uow.einvoices.get(claimed.document_id, for_update=True)
            unchanged = (
                current is not None
                and current.status is RegistrationStatus.PENDING
                and current.attempts == claimed.attempts
            )
            if unchanged:
                await uow.einvoices.save(outcome, self._clock())
                return outcome
        if current is None or current.status is not RegistrationStatus.CANCELLED:
            return current or outcome
        if outcome.status is not RegistrationStatus.REGISTERED:
            return current
        try:
            cancelled_at = await self._connector.cancel(
                outcome.irn, current.cancel_reason or "4", "voided while it was being registered"
            )
        except (IrpRefusal, IrpUnavailable) as error:
            log.error(
                "a voided invoice's fresh IRN could not be cancelled",
                document_id=claimed.document_id,
                irn=outcome.irn,
                error=str(error),
            )
            stored = replace(
                outcome,
                status=RegistrationStatus.FAILED,
                last_error=f"voided while being registered; its IRN {outcome.irn} could not be "
                f"cancelled ({error}): cancel it on the IRP portal",
            )
        else:
            stored = replace(
                outcome,
                status=RegistrationStatus.CANCELLED,
                cancelled_at=cancelled_at,
                cancel_reason=current.cancel_reason or "4",
            )
        async with self._uow() as uow:
            await uow.einvoices.save(stored, self._clock())
        return stored

    async def run(self, stopping: asyncio.Event, interval_seconds: float) -> None:
        """The worker loop: register what is due every ``interval_seconds`` until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                while await self.register_due() == self._batch_size:
                    pass
            except Exception:  # noqa: BLE001 - the database away: the next round tries again
                log.exception("e-invoice registrar round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval_seconds)

    def _retry_later(self, registration: Registration, error: str) -> Registration:
        return replace(
            registration,
            status=RegistrationStatus.PENDING,
            last_error=error[:MAX_ERROR_LENGTH],
            next_attempt_at=self._clock() + backoff(registration.attempts, self._retry_first),
        )

    @staticmethod
    def _failed(registration: Registration, error: str) -> Registration:
        return replace(
            registration, status=RegistrationStatus.FAILED, last_error=error[:MAX_ERROR_LENGTH], next_attempt_at=None
        )

    @staticmethod
    def _registered(registration: Registration, ack: Acknowledgement) -> Registration:
        return replace(
            registration,
            status=RegistrationStatus.REGISTERED,
            irn=ack.irn,
            ack_no=ack.ack_no,
            ack_at=ack.ack_at,
            signed_invoice=ack.signed_invoice,
            signed_qr_code=ack.signed_qr_code,
            last_error="",
            next_attempt_at=None,
        )

    async def _register(self, registration: Registration) -> Registration:
        async with self._uow() as uow:
            invoice = await uow.invoices.get(registration.invoice_id)
        if invoice is None:
            return self._failed(registration, "the invoice no longer exists")
        note = None
        if registration.document_type == DocumentType.CREDIT_NOTE.value:
            async with self._uow() as uow:
                note = await uow.credit_notes.get(registration.document_id)
            if note is None:
                return self._failed(registration, "the credit note no longer exists")
        elif invoice.status is InvoiceStatus.VOID:
            return replace(
                registration,
                status=RegistrationStatus.CANCELLED,
                next_attempt_at=None,
                last_error="voided before it was registered; never sent to the IRP",
            )
        today = self._clock().astimezone(zone_of(self._policy.time_zone)).date()
        late = reporting_problem(registration.document_date, today, self._policy.turnover_band)
        if late is not None:
            return self._failed(registration, f"blocked before sending: {late}")
        try:
            document = (
                invoice_document(invoice, self._policy.seller)
                if note is None
                else credit_note_document(note, invoice, self._policy.seller)
            )
            check(document, today=today)
        except FailedPrecondition as refused:
            return self._failed(registration, f"not sent: {refused}")
        try:
            return self._registered(registration, await self._connector.generate(dumps(document)))
        except IrpUnavailable as away:
            return self._retry_later(registration, str(away))
        except IrpRefusal as refusal:
            if DUPLICATE_IRN not in refusal.codes:
                return self._failed(registration, f"the IRP refused it: {refusal}")
        return await self._resolve_duplicate(registration, document)

    async def _resolve_duplicate(self, registration: Registration, document: dict[str, Any]) -> Registration:
        """2150: the IRN exists. Ours if the IRP's copy has the same buyer and total; never registered again."""
        try:
            ack = await self._connector.get(registration.irn)
        except IrpUnavailable as away:
            return self._retry_later(registration, f"duplicate IRN, details not fetched yet: {away}")
        except IrpRefusal as refusal:
            return self._failed(registration, f"duplicate IRN (2150) whose details the IRP would not give: {refusal}")
        theirs = _claims(ack.signed_invoice, self._signing_public_key)
        buyer = str((theirs.get("BuyerDtls") or {}).get("Gstin", ""))
        total = Decimal(str((theirs.get("ValDtls") or {}).get("TotInvVal", "0")))
        ours_buyer, ours_total = document["BuyerDtls"]["Gstin"], document["ValDtls"]["TotInvVal"]
        if buyer != ours_buyer or total != ours_total or ack.status != "ACT":
            return self._failed(
                registration,
                (
                    f"the IRP already holds IRN {registration.irn} for {registration.document_number} with buyer "
                    f"{buyer or '?'} and total {total} (status {ack.status}); this invoice has buyer {ours_buyer} and "
                    f"total {ours_total}. A number is registered once: issue a credit note and a new invoice"
                ),
            )
        return self._registered(registration, ack)

    async def retry(self, document_id: str) -> Registration:
        """An operator's retry of a failed registration: pending again, due now."""
        async with self._uow() as uow:
            registration = await uow.einvoices.get(document_id, for_update=True)
            if registration is None:
                raise NotFound(f"no e-invoice registration for {document_id!r}")
            if registration.status is not RegistrationStatus.FAILED:
                if registration.status is RegistrationStatus.PENDING:
                    return registration
                raise FailedPrecondition(
                    f"the e-invoice registration of {document_id} is {registration.status.value}; only a failed one "
                    "is retried"
                )
            again = replace(registration, status=RegistrationStatus.PENDING, next_attempt_at=self._clock())
            await uow.einvoices.save(again, self._clock())
        return again

    async def list(
        self, *, status: str, limit: int, after: str | None, organisation_id: str = "", invoice_id: str = ""
    ) -> list[ListedRegistration]:
        """Registrations by document id, each with the organisation its invoice bills; only ``status``,
        ``organisation_id``'s or ``invoice_id``'s when given."""
        async with self._uow() as uow:
            return await uow.einvoices.list(
                status=status, organisation_id=organisation_id, invoice_id=invoice_id, limit=limit, after=after
            )

    async def cancel_for_void(self, invoice_id: str, reason_code: str, remark: str) -> Registration | None:
        """Before voiding ``invoice_id``: cancel its IRN (within 24 hours of its acknowledgement) or withdraw its
        pending registration. FailedPrecondition after 24 hours (a credit note is needed); Unavailable when the IRP
        cannot be reached (the invoice is not voided)."""
        code = cancel_reason(reason_code or "4")
        async with self._uow() as uow:
            registration = await uow.einvoices.get(invoice_id)
        if registration is None or registration.status is RegistrationStatus.CANCELLED:
            return registration
        now = self._clock()
        if registration.status is not RegistrationStatus.REGISTERED:
            # A worker registering it right now sees this (``_store``) and cancels the IRN it gets.
            withdrawn = replace(
                registration,
                status=RegistrationStatus.CANCELLED,
                next_attempt_at=None,
                cancelled_at=now,
                cancel_reason=code.value,
                last_error="voided before it was registered; never sent to the IRP",
            )
            async with self._uow() as uow:
                await uow.einvoices.save(withdrawn, now)
            return withdrawn
        assert registration.ack_at is not None
        check_cancellable(registration.ack_at, now)
        try:
            cancelled_at = await self._connector.cancel(registration.irn, code.value, remark)
        except IrpUnavailable as away:
            raise Unavailable(
                f"the IRP could not cancel IRN {registration.irn} now ({away}); the invoice is not voided, try again"
            ) from away
        except IrpRefusal as refusal:
            if CANCEL_TOO_LATE in refusal.codes:
                raise FailedPrecondition(
                    f"the IRP no longer cancels IRN {registration.irn} (IRP error 2270: more than 24 hours since "
                    "it was registered). Issue a credit note for the invoice instead of voiding it"
                ) from refusal
            raise FailedPrecondition(f"the IRP refused to cancel IRN {registration.irn}: {refusal}") from refusal
        cancelled = replace(
            registration, status=RegistrationStatus.CANCELLED, cancelled_at=cancelled_at, cancel_reason=code.value
        )
        async with self._uow() as uow:
            await uow.einvoices.save(cancelled, now)
        return cancelled


async def registration_for_pdf(uow: InvoicingTransaction, invoice: Invoice | CreditNote) -> Registration | None:
    """The registration to print on ``invoice``'s PDF. Unavailable while an e-invoiced invoice awaits its IRN (the
    PDF is not final before it), FailedPrecondition when its registration failed."""
    async with uow:
        registration = await uow.einvoices.get(invoice.id)
    if registration is None or registration.status is RegistrationStatus.CANCELLED:
        return registration
    if registration.status is RegistrationStatus.PENDING:
        raise Unavailable(f"{invoice.number} awaits its IRN from the IRP; its PDF is final once registered")
    if registration.status is RegistrationStatus.FAILED:
        raise FailedPrecondition(
            f"{invoice.number} could not be registered with the IRP ({registration.last_error[:300]}); "
            "without an IRN it is not a valid tax invoice. An operator retries it (e-invoices list)"
        )
    return registration
