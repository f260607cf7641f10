"""What an invoice document says, written out once for both renderers (PDF and HTML): titles, formatted amounts,
dates, parties and notes. The renderers only lay this out, so the PDF and the HTML view cannot disagree.

``InvoiceView`` and its parts are also the context of the HTML template (documented in docs/invoices.md,
"Templates and branding"); renaming a field breaks operators' templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path

import pycountry

from services.invoicing.domain import gst
from services.invoicing.domain.amount_format import (
    format_minor_grouped,
    format_quantity,
    format_unit_price,
)
from services.invoicing.domain.amount_in_words import amount_in_words
from services.invoicing.domain.billing_period import zone_of
from services.invoicing.domain.charges import TierAmount
from services.invoicing.domain.einvoice_registration import Registration, RegistrationStatus
from services.invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, Party, TaxRegime

_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
# The GST portal's place-of-supply code for a customer outside India.
EXPORT_PLACE_OF_SUPPLY = "96"
EXPORT_TITLE = "EXPORT INVOICE"
# The declaration GST requires on a zero-rated export, the same words as the note the invoice builder adds.
EXPORT_SUBTITLE = gst.EXPORT_NOTE.upper()
# The IRP acknowledges in Indian time; the acknowledgement is printed as it gave it.
_IST = timezone(timedelta(hours=5, minutes=30), "IST")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Branding:
    """The operator's look of invoices: name, logo (PNG or JPEG), two colours (``#RRGGBB``) and a footer line."""

    name: str
    logo_path: Path | None = None
    primary_colour: str = "#1F4E79"
    accent_colour: str = "#EAF1F8"
    footer: str = ""

    def __post_init__(self) -> None:
        # Colours go into CSS and PDF drawing commands verbatim: anything but #RRGGBB is refused here.
        for field_name in ("primary_colour", "accent_colour"):
            if not _HEX_COLOUR.fullmatch(getattr(self, field_name)):
                raise ValueError(f"{field_name} must be a colour written #RRGGBB, got {getattr(self, field_name)!r}")
        if self.logo_path is not None:
            if self.logo_path.suffix.lower() not in _LOGO_TYPES:
                raise ValueError(f"logo_path must be a .png, .jpg or .jpeg file, got {str(self.logo_path)!r}")
            if not self.logo_path.is_file():
                raise ValueError(f"logo_path {str(self.logo_path)!r} is not a readable file")

    @classmethod
    def from_settings(cls, settings) -> Branding:
        """Branding from ``InvoicingSettings`` (``brand_*``); a missing logo file fails here, at start-up."""
        return cls(
            name=settings.brand_name,
            logo_path=settings.brand_logo_path,
            primary_colour=settings.brand_primary_colour,
            accent_colour=settings.brand_accent_colour,
            footer=settings.brand_footer,
        )

    @property
    def logo_mime_type(self) -> str:
        """``image/png`` or ``image/jpeg``; "" without a logo."""
        return _LOGO_TYPES[self.logo_path.suffix.lower()] if self.logo_path else ""


@dataclass(frozen=True)
class PartyView:
    """Supplier or customer as printed: ``state`` is "Karnataka (29)"; ``country`` a name ("United States")."""

    name: str
    address_lines: tuple[str, ...]
    email: str
    gstin: str
    state: str
    country: str


@dataclass(frozen=True)
class BreakdownRowView:
    """One tier (or package, or event band) under a usage line; amounts unrounded, as the price computed them."""

    description: str
    quantity: str
    unit_price: str
    flat_fee: str  # "" when the tier has none
    amount: str


@dataclass(frozen=True)
class LineView:
    number: int
    kind: str
    description: str
    period: str  # "1 Oct 2026 - 14 Oct 2026" when the line covers only part of the billing period, else ""
    sac_code: str
    quantity: str
    unit_price: str
    amount: str
    amount_minor: int
    breakdown: tuple[BreakdownRowView, ...]  # empty unless the price has more than one row


@dataclass(frozen=True)
class TaxLineView:
    kind: str  # CGST, SGST, IGST
    rate: str  # "9"
    taxable: str
    amount: str
    label: str  # "CGST 9% on INR 1,000.00"


@dataclass(frozen=True)
class EinvoiceView:
    """What the IRP gave an e-invoice, printed on its first page: IRN, acknowledgement and the signed QR code."""

    irn: str
    ack_no: str
    ack_date: str  # "05 Dec 2026 21:30 IST"
    signed_qr_code: str  # the JWT the QR image encodes
    cancelled: bool = False


def einvoice_view(registration: Registration | None) -> EinvoiceView | None:
    """The e-invoice block for a registered (or cancelled after registration) document; None otherwise."""
    if registration is None or not registration.ack_no or registration.ack_at is None:
        return None
    acknowledged = registration.ack_at.astimezone(_IST)
    return EinvoiceView(
        irn=registration.irn,
        ack_no=registration.ack_no,
        ack_date=f"{acknowledged.day:02d} {_MONTHS[acknowledged.month - 1]} {acknowledged.year} "
        f"{acknowledged.hour:02d}:{acknowledged.minute:02d} IST",
        signed_qr_code=registration.signed_qr_code,
        cancelled=registration.status is RegistrationStatus.CANCELLED,
    )


@dataclass(frozen=True)
class InvoiceView:
    """Everything the document prints, as text. Amounts are grouped numbers without a currency code;
    ``total_with_currency`` and the tax labels carry the code (``INR 1,180.00``)."""

    title: str  # "TAX INVOICE", "EXPORT INVOICE" or "DRAFT INVOICE"
    subtitle: str  # the export declaration, or ""
    status: str  # draft, issued, paid, void
    watermark: str  # "DRAFT", "VOID" or ""
    status_note: str  # why the document is not (or no longer) a tax invoice, or ""
    number: str  # "(assigned at issue)" on a draft
    issue_date: str
    due_date: str
    billing_period: str  # "1 Oct 2026 - 31 Oct 2026"
    period_key: str
    currency: str
    place_of_supply: str  # "Karnataka (29)", "Other Country (96)"
    supplier: PartyView
    customer: PartyView
    lines: tuple[LineView, ...]
    tax_lines: tuple[TaxLineView, ...]
    subtotal: str
    tax_total: str
    total: str
    total_with_currency: str
    amount_in_words: str  # "Rupees Six Thousand Five Hundred and Forty and Ninety Paise Only"
    exchange_rate_note: str  # "Prices converted from USD at 1 USD = 83.12 INR (...)", or ""
    notes: tuple[str, ...]
    # Prepaid credit spent after the total, (label, "-500.00") per grant, and what is left to pay; empty without.
    credit_lines: tuple[tuple[str, str], ...] = ()
    amount_due: str = ""
    # The details block, (label, value) in order: number, dates, period, place of supply, currency. A credit note
    # (``credit_note_document.py``) names its invoice here instead of a due date.
    details: tuple[tuple[str, str], ...] = ()
    details_heading: str = "INVOICE DETAILS"
    document_name: str = "Invoice"  # "Credit note": the PDF's title and the file's metadata
    # The IRP's IRN, acknowledgement and signed QR code of an e-invoiced document; None when not e-invoiced.
    einvoice: EinvoiceView | None = None


def format_date(value: date | None) -> str:
    """``1 Oct 2026`` (English month names whatever the process locale, so renders are reproducible)."""
    if value is None:
        return ""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def _local(instant: datetime, zone: tzinfo | None) -> datetime:
    return instant.astimezone(zone) if zone is not None and instant.tzinfo is not None else instant


def format_period(start: datetime, end: datetime, zone: tzinfo | None = None) -> str:
    """``1 Oct 2026 - 31 Oct 2026`` for [start, end), the days as seen in ``zone`` (the organisation's; periods
    are stored in UTC, and an IST October starts on 30 Sep 18:30 UTC). Without a zone, the datetimes' own.
    The period ends exclusively, so one ending at midnight ends the day before."""
    first = _local(start, zone).date()
    last = (_local(end, zone) - timedelta(microseconds=1)).date()
    return f"{format_date(first)} - {format_date(last)}"


def state_label(state_code: str) -> str:
    """``Karnataka (29)``; the export code ``96`` is "Other Country" as on the GST portal."""
    if state_code == EXPORT_PLACE_OF_SUPPLY:
        return f"Other Country ({state_code})"
    name = gst.STATE_CODES.get(state_code)
    return f"{name} ({state_code})" if name else state_code


def _country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code) if code else None
    return country.name if country is not None else code


def party_view(party: Party) -> PartyView:
    """A party as printed; the address splits into lines at newlines."""
    lines = tuple(line.strip() for line in party.address.splitlines() if line.strip())
    return PartyView(
        name=party.name,
        address_lines=lines,
        email=party.email,
        gstin=party.gstin,
        state=state_label(party.state_code) if party.state_code else "",
        country=_country_name(party.country),
    )


def _plain_decimal(value: Decimal) -> str:
    """A rate without exponent or trailing zeros: 9.00 -> "9", 83.1200 -> "83.12"."""
    text = format(value.normalize(), "f")
    return text


def tier_description(row: TierAmount, currency: str) -> str:
    """A breakdown row's name with its tier's bounds, when it has them: "Tier 1 (first 10,00,000)",
    "Tier 2 (over 10,00,000 up to 50,00,000)", "Tier 3 (over 50,00,000)". ``from_units`` is exclusive, so
    "over" is exact where a dash would leave the boundary unit ambiguous."""
    text = row.description[:1].upper() + row.description[1:]
    if row.from_units is None:
        return text
    lower = format_quantity(row.from_units, currency)
    if row.up_to is None:
        bounds = f"over {lower}"
    elif not row.from_units:
        bounds = f"first {format_quantity(row.up_to, currency)}"
    else:
        bounds = f"over {lower} up to {format_quantity(row.up_to, currency)}"
    return f"{text} ({bounds})"


def line_view(line: InvoiceLine, invoice: Invoice, zone: tzinfo | None = None) -> LineView:
    """One invoice line as printed, with its tier breakdown when the price has more than one row."""
    currency = invoice.currency
    period = ""
    covers = (line.period_start, line.period_end)
    if all(covers) and covers != (invoice.period_start, invoice.period_end):
        period = format_period(line.period_start, line.period_end, zone)
    breakdown: tuple[BreakdownRowView, ...] = ()
    if len(line.breakdown) > 1:
        breakdown = tuple(
            BreakdownRowView(
                description=tier_description(row, currency),
                quantity=format_quantity(row.quantity, currency),
                unit_price=format_unit_price(row.unit_price, currency),
                flat_fee=format_unit_price(row.flat_fee, currency) if row.flat_fee else "",
                amount=format_unit_price(row.amount, currency),
            )
            for row in line.breakdown
        )
    return LineView(
        number=line.number,
        kind=str(line.kind),
        description=line.description,
        period=period,
        sac_code=line.sac_code,
        quantity=format_quantity(line.quantity, currency),
        unit_price=format_unit_price(line.unit_price, currency),
        amount=format_minor_grouped(line.amount_minor, currency),
        amount_minor=line.amount_minor,
        breakdown=breakdown,
    )


def exchange_rate_note(invoice: Invoice) -> str:
    """How prices were converted, so the invoice can be re-explained: rate, its source and effective time (UTC)."""
    rate = invoice.exchange_rate
    if rate is None:
        return ""
    effective = rate.effective_at.astimezone(UTC) if rate.effective_at.tzinfo else rate.effective_at
    return (
        f"Prices converted from {rate.base_currency} at 1 {rate.base_currency} = {_plain_decimal(rate.rate)} "
        f"{rate.quote_currency} ({rate.source}, effective {effective:%Y-%m-%d %H:%M} UTC)"
    )


def _title(invoice: Invoice) -> tuple[str, str]:
    subtitle = EXPORT_SUBTITLE if invoice.tax_regime == TaxRegime.EXPORT else ""
    if invoice.status == InvoiceStatus.DRAFT:
        return "DRAFT INVOICE", subtitle
    return (EXPORT_TITLE if subtitle else "TAX INVOICE"), subtitle


def _status_note(invoice: Invoice, zone: tzinfo | None) -> str:
    if invoice.status == InvoiceStatus.DRAFT:
        return "Draft: not a tax invoice. The number and dates are assigned when it is issued."
    if invoice.status == InvoiceStatus.VOID:
        when = f" on {format_date(_local(invoice.voided_at, zone).date())}" if invoice.voided_at else ""
        reason = f": {invoice.void_reason}" if invoice.void_reason else ""
        return f"Void{when}{reason}. This invoice is cancelled and must not be paid."
    return ""


def build_invoice_view(
    invoice: Invoice, *, time_zone: str = "", registration: Registration | None = None
) -> InvoiceView:
    """The document's text for ``invoice``. The billing period's days are written in ``time_zone`` if given, else
    in the zone the invoice carries (its organisation's), else in the stored datetimes' own zone (UTC)."""
    time_zone = time_zone or invoice.time_zone  # invoices carry their organisation's zone
    zone = zone_of(time_zone, field="time_zone") if time_zone else None
    currency = invoice.currency
    title, subtitle = _title(invoice)
    watermark = {InvoiceStatus.DRAFT: "DRAFT", InvoiceStatus.VOID: "VOID"}.get(invoice.status, "")
    tax_lines = tuple(
        TaxLineView(
            kind=str(tax.kind),
            rate=_plain_decimal(tax.rate),
            taxable=format_minor_grouped(tax.taxable_minor, currency),
            amount=format_minor_grouped(tax.amount_minor, currency),
            label=(
                f"{tax.kind} {_plain_decimal(tax.rate)}% on {currency} "
                f"{format_minor_grouped(tax.taxable_minor, currency)}"
            ),
        )
        for tax in invoice.tax_lines
    )
    # The builder records the export declaration as a note too; the subtitle already prints it.
    notes = tuple(note for note in invoice.notes if note.strip().upper() != subtitle)
    total = format_minor_grouped(invoice.total_minor, currency)
    number = invoice.number or "(assigned at issue)"
    period = format_period(invoice.period_start, invoice.period_end, zone)
    place = state_label(invoice.place_of_supply)
    return InvoiceView(
        title=title,
        subtitle=subtitle,
        status=str(invoice.status),
        watermark=watermark,
        status_note=_status_note(invoice, zone),
        number=number,
        issue_date=format_date(invoice.issue_date),
        due_date=format_date(invoice.due_date),
        billing_period=period,
        period_key=invoice.period_key,
        currency=currency,
        place_of_supply=place,
        supplier=party_view(invoice.supplier),
        customer=party_view(invoice.customer),
        lines=tuple(line_view(line, invoice, zone) for line in invoice.lines),
        tax_lines=tax_lines,
        subtotal=format_minor_grouped(invoice.subtotal_minor, currency),
        tax_total=format_minor_grouped(invoice.tax_minor, currency),
        total=total,
        total_with_currency=f"{currency} {total}",
        amount_in_words=amount_in_words(invoice.total_minor, currency),
        exchange_rate_note=exchange_rate_note(invoice),
        notes=notes,
        credit_lines=tuple(
            (line.description, format_minor_grouped(line.amount_minor, currency)) for line in invoice.credit_lines
        ),
        amount_due=format_minor_grouped(invoice.payable_minor, currency) if invoice.credit_lines else "",
        details=(
            ("Invoice number", number),
            ("Issue date", format_date(invoice.issue_date) or "-"),
            ("Due date", format_date(invoice.due_date) or "-"),
            ("Billing period", period),
            ("Place of supply", place),
            ("Currency", currency),
        ),
        einvoice=einvoice_view(registration),
    )
