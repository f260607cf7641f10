"""The invoice: numbered lines, tax lines and totals in integer minor units of one currency.

Values only. Building an invoice from usage is ``invoice_builder``; its checks are ``invoice_checks``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from services.invoicing.domain.charges import TierAmount


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PAID = "paid"
    VOID = "void"
    # Decided by settlement (``domain/settlement.py``) from the payments events recorded against the invoice.
    PARTIALLY_PAID = "partially_paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    OVERDUE = "overdue"
    UNCOLLECTIBLE = "uncollectible"


class LineKind(StrEnum):
    BASE_FEE = "base_fee"
    USAGE = "usage"
    MINIMUM_SPEND = "minimum_spend"  # brings a charge up to its minimum amount (positive)
    MAXIMUM_CAP = "maximum_cap"  # brings a charge down to its maximum amount (negative, a discount)
    DISCOUNT = "discount"  # a coupon's discount on the lines of one GST rate (negative; ``domain/discounts.py``)
    # Usage of an earlier, already issued period that metering received after that invoice was priced (an event
    # later than the grace period): the difference it makes, billed on this invoice (``domain/late_usage.py``).
    USAGE_ADJUSTMENT = "usage_adjustment"
    # Prepaid credit spent on the invoice (negative, one per grant; ``domain/credit.py``). Never among ``lines``:
    # a credit pays the total (after tax), it is not a discount, so it sits in ``credit_lines``.
    CREDIT = "credit"
    # The one line of a credit purchase (a top-up): the amount of credit bought.
    CREDIT_PURCHASE = "credit_purchase"


class TaxRegime(StrEnum):
    INTRA_STATE = "intra_state"  # CGST + SGST: the customer's place of supply is the supplier's state
    INTER_STATE = "inter_state"  # IGST: another Indian state
    EXPORT = "export"  # zero-rated: the customer is outside India


class TaxKind(StrEnum):
    CGST = "CGST"
    SGST = "SGST"
    IGST = "IGST"


@dataclass(frozen=True)
class Party:
    """Supplier or customer as printed on the invoice (a snapshot: later edits do not change issued invoices)."""

    name: str
    email: str = ""
    address: str = ""
    country: str = ""
    state_code: str = ""
    gstin: str = ""


@dataclass(frozen=True)
class ExchangeRate:
    """The rate used to convert plan-currency prices to the invoice currency, kept to re-explain the invoice."""

    base_currency: str
    quote_currency: str
    rate: Decimal  # 1 base = rate quote
    source: str
    effective_at: datetime


@dataclass(frozen=True)
class InvoiceLine:
    number: int
    kind: LineKind
    description: str
    # In invoice currency; unit_price is at full precision (display rounds it), amount_minor is the line's
    # only rounding.
    quantity: Decimal
    unit_price: Decimal
    amount_minor: int
    metric_code: str = ""
    charge_model: str = ""
    plan_version_id: str = ""
    # The part of the billing period this line covers (a plan change splits a period).
    period_start: datetime | None = None
    period_end: datetime | None = None
    gst_rate: Decimal = Decimal(0)
    sac_code: str = ""
    # Per-tier explanation in invoice currency, unrounded.
    breakdown: tuple[TierAmount, ...] = ()
    # On a discount line: the coupon's code and the organisation's redemption of it.
    coupon_code: str = ""
    coupon_redemption_id: str = ""
    # On a usage adjustment line: the key of the earlier period whose late usage it bills.
    adjusts_period_key: str = ""
    # On a base fee, usage, minimum-spend or maximum-cap line priced by the organisation's price override: the
    # override's id and version ("" and 0 when the plan's own price applies).
    price_override_id: str = ""
    price_override_version: int = 0
    # On a credit line: the grant the credit came from.
    credit_grant_id: str = ""


@dataclass(frozen=True)
class TaxLine:
    kind: TaxKind
    rate: Decimal  # percent
    taxable_minor: int
    amount_minor: int


@dataclass(frozen=True)
class Invoice:
    id: str
    organisation_id: str
    status: InvoiceStatus
    currency: str
    period_start: datetime
    period_end: datetime
    # Key of the billing period, e.g. "2026-10" (the month its period starts in, in the organisation's zone).
    period_key: str
    lines: tuple[InvoiceLine, ...]
    tax_lines: tuple[TaxLine, ...]
    subtotal_minor: int
    tax_minor: int
    total_minor: int
    tax_regime: TaxRegime
    # GST state code of the place of supply ("96" for exports, as the GST portal codes "Other Country").
    place_of_supply: str
    supplier: Party
    customer: Party
    exchange_rate: ExchangeRate | None = None
    number: str = ""
    issue_date: date | None = None
    due_date: date | None = None
    void_reason: str = ""
    voided_at: datetime | None = None
    replaces_invoice_id: str = ""
    created_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())
    # The organisation's IANA zone: its billing period is printed in it (the bounds above are UTC instants).
    time_zone: str = ""
    # Settlement (``domain/settlement.py``): received, returned, and still owed. A new invoice owes its total less
    # its prepaid credit, never less than nothing (a negative total is owed back as credit when it is issued).
    amount_paid_minor: int = 0
    amount_refunded_minor: int = 0
    amount_due_minor: int | None = None
    # The sum of its credit notes (``domain/credit_note.py``): no longer asked for.
    amount_credited_minor: int = 0
    # Prepaid credit spent on this invoice after tax, one line per grant (negative amounts), numbered after
    # ``lines``. The total stays the tax invoice's value; the credits reduce what is left to pay.
    credit_lines: tuple[InvoiceLine, ...] = ()

    @property
    def credits_minor(self) -> int:
        """Credit applied to the invoice (positive): what the credit lines take off the amount due."""
        return -sum(line.amount_minor for line in self.credit_lines)

    @property
    def payable_minor(self) -> int:
        """What is left for a payment to settle once the credits are spent: the total less the credits."""
        return self.total_minor - self.credits_minor

    @property
    def credit_grant_ids(self) -> frozenset[str]:
        return frozenset(line.credit_grant_id for line in self.credit_lines)

    @property
    def coupon_redemption_ids(self) -> frozenset[str]:
        """The redemptions whose discount the invoice carries (each uses up the invoice's period)."""
        return frozenset(line.coupon_redemption_id for line in self.lines if line.coupon_redemption_id)

    def __post_init__(self) -> None:
        if self.amount_due_minor is None:
            object.__setattr__(
                self, "amount_due_minor", 0 if self.status is InvoiceStatus.VOID else max(self.payable_minor, 0)
            )
