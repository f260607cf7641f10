"""Prepaid credit (a wallet): grants of credit to an organisation and how an invoice spends them.

A grant is an amount of the organisation's invoicing currency, in minor units, with a priority (lower is spent
first), an optional expiry instant and a source: ``granted`` by an operator, ``purchased`` by a top-up (available
only once the top-up's invoice is paid), or ``credit_note`` (credit left by a credit note). Its remaining balance
is its amount less what invoices consumed from it (a voided invoice gives its consumption back) and less what
refunds of its top-up's payment took back (``claw_back``).

Credit is a means of payment, not a discount: it is spent on an invoice's total AFTER coupons and AFTER tax, as
Lago's prepaid credits and Stripe's customer balance are. GST stays on the full taxable amount; the invoice's total
is the tax invoice's value, and the credit lines (one per grant spent, negative) reduce only what is left to pay.
Grants are spent in order of priority, then earliest expiry (no expiry last), then the oldest first; a grant
expired at the moment of spending (``expires_at <= at``) is never spent, nor a voided or unpaid one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain import gst
from services.invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, LineKind, Party, TaxRegime
from services.invoicing.domain.money import MAX_AMOUNT_MINOR, format_amount, minor_to_decimal

MAX_PRIORITY = 1000
MAX_SOURCE_ID_LENGTH = 128
MAX_DESCRIPTION_LENGTH = 200


class GrantSource(StrEnum):
    GRANTED = "granted"  # by an operator
    PURCHASED = "purchased"  # by a top-up, paid through the provider
    CREDIT_NOTE = "credit_note"  # credit left by a credit note
    INVOICE = "invoice"  # an invoice whose total is negative (a plan paid in advance, downgraded): what it owes back


class GrantStatus(StrEnum):
    PENDING = "pending"  # a top-up not paid yet: not spendable
    AVAILABLE = "available"
    VOIDED = "voided"  # its remaining balance withdrawn by an operator


class LedgerKind(StrEnum):
    """The kinds of entry in the credit ledger."""

    INVOICE = "invoice"  # an invoice consumed credit from a grant (given back when the invoice is voided)
    CLAWBACK = "clawback"  # a refund of a top-up's payment took back the credit it bought (given back if it failed)


@dataclass(frozen=True)
class CreditGrant:
    """A grant and what has been consumed from it (consumptions of voided invoices are not counted)."""

    id: str
    organisation_id: str
    currency: str
    amount_minor: int
    priority: int
    source: GrantSource
    created_at: datetime
    status: GrantStatus = GrantStatus.AVAILABLE
    expires_at: datetime | None = None
    source_id: str = ""
    description: str = ""
    consumed_minor: int = 0
    voided_at: datetime | None = None
    # Taken back by refunds of the top-up that bought it (failed refunds not counted).
    clawed_back_minor: int = 0

    @property
    def remaining_minor(self) -> int:
        return self.amount_minor - self.consumed_minor - self.clawed_back_minor

    def expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def spendable(self, at: datetime) -> bool:
        """Whether an invoice priced at ``at`` may spend from this grant."""
        return self.status is GrantStatus.AVAILABLE and not self.expired(at) and self.remaining_minor > 0

    def describe(self) -> str:
        what = self.description or f"{self.source.value.replace('_', ' ')} credit"
        return f"Prepaid credit: {what} ({self.id})"


@dataclass(frozen=True)
class GrantTerms:
    """A grant as asked for, validated (``grant_terms``)."""

    currency: str
    amount_minor: int
    priority: int
    source: GrantSource
    expires_at: datetime | None
    source_id: str
    description: str


def grant_terms(
    *,
    currency: str,
    amount_minor: int,
    priority: int,
    source: str,
    expires_at: datetime | None,
    source_id: str,
    description: str,
    organisation_currency: str,
    now: datetime,
) -> GrantTerms:
    """Validate a grant; InvalidArgument naming the field otherwise."""
    if currency != organisation_currency:
        raise InvalidArgument(
            f"must be the organisation's invoicing currency {organisation_currency}, got {currency[:8]!r}",
            field="currency",
        )
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or not 0 < amount_minor <= MAX_AMOUNT_MINOR:
        raise InvalidArgument(f"must be a whole number of minor units from 1 to {MAX_AMOUNT_MINOR}",
                              field="amount_minor")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise InvalidArgument(f"must be from 0 to {MAX_PRIORITY} (lower is spent first)", field="priority")
    try:
        kind = GrantSource(source)
    except ValueError:
        raise InvalidArgument(
            f"must be one of {', '.join(s.value for s in GrantSource)}", field="source"
        ) from None
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= now):
        raise InvalidArgument("must be an instant with a time zone, in the future", field="expires_at")
    if len(source_id) > MAX_SOURCE_ID_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_SOURCE_ID_LENGTH} characters", field="source_id")
    if kind is GrantSource.CREDIT_NOTE and not source_id:
        raise InvalidArgument("names the credit note a credit_note grant comes from", field="source_id")
    if len(description) > MAX_DESCRIPTION_LENGTH or any(ord(c) < 32 for c in description):
        raise InvalidArgument(f"must be one line of at most {MAX_DESCRIPTION_LENGTH} characters",
                              field="description")
    return GrantTerms(currency, amount_minor, priority, kind, expires_at, source_id, description.strip())


@dataclass(frozen=True)
class Clawback:
    """What a refund of a top-up's payment does to the grant it bought: ``taken_minor`` comes off what is still
    unspent; ``spent_minor`` of the refund was credit already spent (an operator must look at it)."""

    taken_minor: int
    spent_minor: int


def claw_back(grant: CreditGrant, refunded_minor: int) -> Clawback:
    """Take ``refunded_minor`` back from ``grant``: never more than is left of it (no balance goes negative), and
    never more than it bought, less earlier claw-backs (a refund beyond what was paid is settlement's over-refund,
    not spent credit). What the refund claims beyond what is left was spent. A voided grant's remainder was already
    withdrawn: nothing is taken, and only what was spent is reported."""
    if refunded_minor < 0:
        raise ValueError(f"refunded_minor is {refunded_minor}; refunds are never negative")
    claim = min(refunded_minor, max(grant.amount_minor - grant.clawed_back_minor, 0))
    left = max(grant.remaining_minor, 0)
    taken = 0 if grant.status is GrantStatus.VOIDED else min(claim, left)
    return Clawback(taken, max(claim - left, 0))


def spending_order(grant: CreditGrant) -> tuple[int, int, datetime, datetime, str]:
    """Priority, then earliest expiry (none last), then the oldest, then id (a total order)."""
    no_expiry = grant.expires_at is None
    return (grant.priority, int(no_expiry), grant.expires_at or grant.created_at, grant.created_at, grant.id)


@dataclass(frozen=True)
class CreditUse:
    """``amount_minor`` (positive) spent from ``grant``."""

    grant: CreditGrant
    amount_minor: int


def allocate_credits(
    grants: Sequence[CreditGrant], payable_minor: int, currency: str, at: datetime
) -> tuple[CreditUse, ...]:
    """What to spend from which grant to pay ``payable_minor`` of ``currency`` at ``at``: the spendable grants
    of that currency in spending order, each up to its remaining balance, until the amount is paid. The uses sum to
    min(payable, spendable balance); never more than either."""
    left = max(payable_minor, 0)
    uses: list[CreditUse] = []
    for grant in sorted(grants, key=spending_order):
        if left == 0:
            break
        if grant.currency != currency or not grant.spendable(at):
            continue
        taken = min(grant.remaining_minor, left)
        uses.append(CreditUse(grant, taken))
        left -= taken
    return tuple(uses)


def credit_lines(uses: Sequence[CreditUse], first_number: int, currency: str) -> tuple[InvoiceLine, ...]:
    """One negative line per grant used, numbered from ``first_number``."""
    return tuple(
        InvoiceLine(
            number=first_number + index,
            kind=LineKind.CREDIT,
            description=use.grant.describe(),
            quantity=Decimal(1),
            unit_price=minor_to_decimal(-use.amount_minor, currency),
            amount_minor=-use.amount_minor,
            credit_grant_id=use.grant.id,
        )
        for index, use in enumerate(uses)
    )


@dataclass(frozen=True)
class CreditBalance:
    """An organisation's spendable credit in one currency at an instant."""

    currency: str
    available_minor: int  # spendable now
    pending_minor: int  # top-ups not paid yet

    def describe(self) -> str:
        return f"{format_amount(self.available_minor, self.currency)} {self.currency}"


def balances(grants: Sequence[CreditGrant], at: datetime) -> tuple[CreditBalance, ...]:
    """Per currency: the spendable balance at ``at`` and what is pending payment, currencies in order."""
    totals: dict[str, list[int]] = {}
    for grant in grants:
        entry = totals.setdefault(grant.currency, [0, 0])
        if grant.spendable(at):
            entry[0] += grant.remaining_minor
        elif grant.status is GrantStatus.PENDING:
            entry[1] += grant.amount_minor
    return tuple(CreditBalance(currency, a, p) for currency, (a, p) in sorted(totals.items()))


def apply_credits(invoice: Invoice, grants: Sequence[CreditGrant], at: datetime) -> Invoice:
    """``invoice`` with its credit lines: the organisation's grants spent on its total (after tax) at ``at``, and
    the amount due reduced by them. Grants of other organisations are ignored."""
    own = [grant for grant in grants if grant.organisation_id == invoice.organisation_id]
    uses = allocate_credits(own, invoice.total_minor, invoice.currency, at)
    lines = credit_lines(uses, len(invoice.lines) + 1, invoice.currency)
    credited = replace(invoice, credit_lines=lines, amount_due_minor=None)
    return credited


def purchase_period_key(grant_id: str) -> str:
    """A top-up invoice's key in place of a billing period: one invoice per purchased grant."""
    return f"credit-{grant_id}"


def credit_purchase_invoice(
    invoice_id: str,
    grant_id: str,
    amount_minor: int,
    currency: str,
    *,
    organisation_id: str,
    customer: Party,
    customer_country: str,
    customer_state_code: str,
    supplier: Party,
    supplier_state_code: str,
    at: datetime,
    time_zone: str,
) -> Invoice:
    """The draft invoice of a top-up: one credit-purchase line for the credit bought, at GST 0%. Prepaid credit is
    a means of payment (like a multi-purpose voucher), so GST is charged when it is spent on a usage invoice, whose
    tax stays on the full taxable amount: charging it on the purchase too would tax the same supply twice."""
    line = InvoiceLine(
        number=1, kind=LineKind.CREDIT_PURCHASE, description=f"Prepaid credit ({grant_id})", quantity=Decimal(1),
        unit_price=minor_to_decimal(amount_minor, currency), amount_minor=amount_minor,
    )
    regime = gst.tax_regime(supplier_state_code, customer_country, customer_state_code)
    taxes = gst.tax_lines((line,), regime)
    tax = sum(t.amount_minor for t in taxes)
    return Invoice(
        id=invoice_id, organisation_id=organisation_id, status=InvoiceStatus.DRAFT, currency=currency,
        period_start=at, period_end=at, period_key=purchase_period_key(grant_id), lines=(line,), tax_lines=taxes,
        subtotal_minor=amount_minor, tax_minor=tax, total_minor=amount_minor + tax, tax_regime=regime,
        place_of_supply=gst.place_of_supply(customer_country, customer_state_code), supplier=supplier,
        customer=customer, notes=(gst.EXPORT_NOTE,) if regime is TaxRegime.EXPORT else (), time_zone=time_zone,
    )
