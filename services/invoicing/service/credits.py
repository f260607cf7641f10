"""Prepaid credit: granting it (by an operator, or for a credit note), buying it (a top-up invoice paid through the
payments flow), voiding a grant, and reading an organisation's balance. Spending it is the period close's
(``period_close.py``), in the transaction that stores the invoice; making a top-up's grant available is
settlement's (``settlements.py``), when its invoice becomes paid, and so is taking its credit back when that
payment is refunded (``claw_back_refunds``, in the transaction that applies the refund)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.invoicing.domain.credit import (
    CreditBalance,
    CreditGrant,
    GrantSource,
    GrantStatus,
    GrantTerms,
    balances,
    claw_back,
    credit_purchase_invoice,
    grant_terms,
)
from services.invoicing.domain.invoice import Invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.settlement import Review, ReviewKind, Settlement, SettlementKind, describe_money
from services.invoicing.service.billing_inputs import Supplier, customer_party
from services.invoicing.service.fingerprints import fingerprint
from services.invoicing.service.organisations import existing_organisation
from services.invoicing.service.ports import Credits, InvoicingTransaction

MAX_VOID_REASON_LENGTH = 500


@dataclass(frozen=True)
class CreditStatement:
    """An organisation's credit at ``at``: balances per currency, its grants, and the consumption ledger."""

    at: datetime
    balances: tuple[CreditBalance, ...]
    grants: tuple[CreditGrant, ...]
    consumptions: tuple[Any, ...]


def _request(terms: Any, organisation_id: str) -> dict[str, Any]:
    return {
        "organisation_id": organisation_id, "currency": terms.currency, "amount_minor": terms.amount_minor,
        "priority": terms.priority, "source": terms.source.value, "source_id": terms.source_id,
        "expires_at": terms.expires_at, "description": terms.description,
    }


async def grant_credit(
    uow: InvoicingTransaction,
    *,
    organisation_id: str,
    amount_minor: int,
    currency: str,
    priority: int = 0,
    expires_at: datetime | None = None,
    source: str = GrantSource.GRANTED.value,
    source_id: str = "",
    description: str = "",
    idempotency_key: str = "",
    now: datetime | None = None,
) -> tuple[CreditGrant, bool]:
    """Grant credit to an organisation; (grant, created). ``source`` is ``granted`` (an operator) or
    ``credit_note`` (``source_id`` the credit note's id: the credit notes feature calls this). Idempotent by
    ``idempotency_key`` and by (source, source_id): a repeat returns the first grant, created False."""
    now = now or datetime.now(UTC)
    if source == GrantSource.PURCHASED.value:
        raise InvalidArgument("purchased credit comes from a top-up (TopUpCredit), not a grant", field="source")
    if source == GrantSource.INVOICE.value:
        raise InvalidArgument("an invoice's credit comes from its negative total when it is issued, not a grant",
                              field="source")
    async with uow:
        organisation = await existing_organisation(uow, organisation_id)
        terms = grant_terms(
            currency=currency, amount_minor=amount_minor, priority=priority, source=source, expires_at=expires_at,
            source_id=source_id, description=description,
            organisation_currency=organisation.details.billing_currency, now=now,
        )
        grant, created = await add_grant(uow, organisation.id, terms, idempotency_key, now)
    return grant, created


async def add_grant(
    uow: InvoicingTransaction, organisation_id: str, terms: GrantTerms, idempotency_key: str, now: datetime
) -> tuple[CreditGrant, bool]:
    """Store an available grant inside the caller's transaction (a grant's use case, or a credit note leaving
    credit with the customer); (grant, created). A repeat for the same (source, source id) returns the first."""
    repository = uow.credits
    if terms.source_id:
        await repository.lock_source(terms.source, terms.source_id)
        existing = await repository.id_for_source(terms.source, terms.source_id)
        if existing is not None:
            found = await repository.get(existing)
            assert found is not None
            if found.organisation_id != organisation_id or found.amount_minor != terms.amount_minor:
                raise FailedPrecondition(
                    f"{terms.source.value} {terms.source_id[:64]!r} already gave grant {existing} (another "
                    "organisation or amount)", field="source_id",
                )
            return found, False
    grant_id, created = await repository.add(
        new_id("crg"), organisation_id, terms, GrantStatus.AVAILABLE, now,
        idempotency_key=idempotency_key, fingerprint=fingerprint(_request(terms, organisation_id)),
    )
    grant = await repository.get(grant_id)
    assert grant is not None
    return grant, created


async def void_grant(
    uow: InvoicingTransaction, *, organisation_id: str, grant_id: str, reason: str, now: datetime | None = None
) -> CreditGrant:
    """Withdraw what is left of a grant (an operator's correction); consumption already recorded stays. Voiding a
    voided grant returns it."""
    reason = reason.strip()
    if not reason:
        raise InvalidArgument("is required: say why the grant is void", field="reason")
    if len(reason) > MAX_VOID_REASON_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_VOID_REASON_LENGTH} characters", field="reason")
    if not grant_id:
        raise InvalidArgument("is required", field="grant_id")
    now = now or datetime.now(UTC)
    async with uow:
        grant = await uow.credits.get(grant_id, for_update=True)
        if grant is None or grant.organisation_id != organisation_id:
            raise NotFound(f"no credit grant {grant_id[:64]!r} for organisation {organisation_id[:64]!r}")
        if grant.status is not GrantStatus.VOIDED:
            await uow.credits.void(grant_id, reason, now)
            grant = await uow.credits.get(grant_id)
    assert grant is not None
    return grant


async def credit_statement(
    uow: InvoicingTransaction, *, organisation_id: str, now: datetime | None = None
) -> CreditStatement:
    """The organisation's balance per currency, its grants and its ledger of consumption."""
    now = now or datetime.now(UTC)
    async with uow:
        organisation = await existing_organisation(uow, organisation_id)
        grants = (await uow.credits.of_organisations([organisation.id])).get(organisation.id, [])
        ledger = await uow.credits.consumptions_of(organisation.id)
    return CreditStatement(now, balances(grants, now), tuple(grants), tuple(ledger))


async def claw_back_refunds(
    credits: Credits, invoice_id: str, refunds: Sequence[Settlement], failed_refund_ids: Sequence[str],
    now: datetime,
) -> list[Review]:
    """Settlement's, in the transaction that applies a refund event to ``invoice_id``: when that invoice is a
    top-up, each processed refund it counts (``refunds``) takes its amount back from the grant the top-up bought,
    once per refund id (a redelivered or reordered event takes nothing twice), and what a failed refund took is
    given back. Only what is still unspent is taken (no balance goes negative); what the refund claims beyond that
    was already spent, and goes to the review list naming the invoices it was spent on. Any other invoice: nothing.
    """
    grant_id = await credits.purchase_grant_of(invoice_id)
    if grant_id is None:
        return []
    grant = await credits.get(grant_id, for_update=True)
    assert grant is not None
    await credits.release_clawbacks(grant_id, failed_refund_ids, now)
    reviews: list[Review] = []
    for refund in refunds:
        if refund.kind is not SettlementKind.REFUND_PROCESSED:
            continue
        refund_id = refund.refund_id or refund.event_id
        grant = await credits.get(grant_id)
        assert grant is not None
        clawback = claw_back(grant, refund.amount_minor)
        if not await credits.record_clawback(grant_id, invoice_id, refund_id, clawback.taken_minor, now):
            continue
        if clawback.spent_minor:
            spent_on = await credits.spent_on(grant_id)
            detail = (
                f"top-up refunded after its credit was spent: refund {refund_id} of top-up invoice {invoice_id} "
                f"took back {describe_money(clawback.taken_minor, grant.currency)} of credit grant {grant_id}; "
                f"{describe_money(clawback.spent_minor, grant.currency)} of the refund was credit already spent on "
                f"invoices {', '.join(spent_on)}"
            )
            reviews.append(Review(ReviewKind.REFUNDED_CREDIT_SPENT, refund.event_id, detail, clawback.spent_minor,
                                  grant.currency))
    return reviews


@dataclass(frozen=True)
class TopUp:
    grant: CreditGrant
    invoice: Invoice
    created: bool


class PurchaseIssuer(Protocol):
    """What a top-up needs of the period close: who supplies, and issuing a stored draft."""

    @property
    def supplier(self) -> Supplier: ...

    async def issue(self, drafts: Sequence[str | Invoice]) -> list[Invoice]: ...


async def top_up_credit(
    uow: InvoicingTransaction,
    issuer: PurchaseIssuer,
    *,
    organisation_id: str,
    amount_minor: int,
    currency: str,
    priority: int = 0,
    expires_at: datetime | None = None,
    idempotency_key: str = "",
    now: datetime | None = None,
) -> TopUp:
    """Buy credit: an invoice of kind credit purchase for ``amount_minor``, issued (so payments collects it), and
    a pending grant that becomes available when that invoice is paid. A repeat with the same idempotency key
    returns the first top-up (issuing its invoice if a crash left it a draft). ``issuer``: the period close."""
    now = now or datetime.now(UTC)
    async with uow:
        organisation = await existing_organisation(uow, organisation_id)
        terms = grant_terms(
            currency=currency, amount_minor=amount_minor, priority=priority, source=GrantSource.PURCHASED.value,
            expires_at=expires_at, source_id="", description="top-up",
            organisation_currency=organisation.details.billing_currency, now=now,
        )
        repository = uow.credits
        key = idempotency_key or new_id("topup")
        await repository.lock_source(GrantSource.PURCHASED, key)
        request = fingerprint({**_request(terms, organisation.id), "top_up": True})
        existing = await repository.made_with_key(key)
        if existing is not None and existing[1] != request:
            raise Conflict("was already used for a different request", field="idempotency_key")
        if existing is None:
            grant_id, invoice_id = new_id("crg"), new_id("inv")
            invoice = credit_purchase_invoice(
                invoice_id, grant_id, terms.amount_minor, terms.currency, organisation_id=organisation.id,
                customer=customer_party(organisation), customer_country=organisation.details.country,
                customer_state_code=organisation.details.state_code, supplier=issuer.supplier.party,
                supplier_state_code=issuer.supplier.state_code, at=now, time_zone=organisation.details.timezone,
            )
            validate_invoice(invoice)
            await uow.invoices.insert_drafts([invoice])
            grant_id, created = await repository.add(
                grant_id, organisation.id, terms, GrantStatus.PENDING, now, idempotency_key=key,
                fingerprint=request, purchase_invoice_id=invoice_id,
            )
        else:
            grant_id, created = existing[0], False
        grant = await repository.get(grant_id)
        assert grant is not None
        invoice_id = await repository.purchase_invoice_of(grant_id)
        assert invoice_id
    await issuer.issue([invoice_id])
    async with uow:
        stored = await uow.invoices.get(invoice_id)
    assert stored is not None
    return TopUp(grant, stored, created)
