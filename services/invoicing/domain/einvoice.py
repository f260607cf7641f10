"""GST e-invoices: the INV-01 (version 1.1) document of an issued invoice or credit note, its checks, its IRN.

Written from GSTN's published INV-01 field list and NIC's e-invoice API documentation.

Who is e-invoiced
- A B2B supply (the buyer has a GSTIN) or an export (the buyer is outside India). B2C invoices are not
  (:func:`is_einvoiced`); neither is anything of a supplier that has e-invoicing switched off (configuration).

How an invoice becomes a document
- Items are the invoice's charging lines (base fee, usage, minimum spend, late-usage adjustments). Negative lines
  (coupon discounts, maximum caps) are not items: the IRP refuses negative values, so each is spread over the
  items of its GST rate as their ``Discount``, in proportion to their amounts (largest remainder, in minor units).
  Prepaid credit spent on the invoice is not part of the tax invoice (it pays the total; it sits in
  ``credit_lines``) and is never an item.
- The invoice's tax lines are spread over the items of their rate in proportion to ``AssAmt`` the same way, so the
  item taxes add up to the invoice's CGST/SGST/IGST to the paisa.
- Amounts are in INR with 2 decimals; quantity, unit price and rate with 3. A foreign-currency invoice is converted
  at its stored exchange rate item by item (``TotInvValFc`` keeps the total in the invoice currency), and the
  paise the conversion of the total differs from the item sums by go to ``RndOffAmt``.
- ``SupTyp``: B2B for an Indian buyer; EXPWP for an export that carries IGST, EXPWOP for a zero-rated export under
  LUT. Exports have buyer ``Gstin`` "URP", ``Pos`` and ``Stcd`` "96" and ``Pin`` 999999.

The IRN is the hex SHA-256 of supplier GSTIN + financial year "YYYY-YY" + document type + document number
(:func:`irn`): we know it before asking the IRP, which makes registration idempotent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum
from typing import Any

import pycountry

from billing_runtime.errors import FailedPrecondition
from services.invoicing.domain import currencies
from services.invoicing.domain.credit_note import CreditNote
from services.invoicing.domain.gst import EXPORT_PLACE_OF_SUPPLY
from services.invoicing.domain.invoice import (
    ExchangeRate,
    Invoice,
    InvoiceStatus,
    LineKind,
    Party,
    TaxKind,
    TaxLine,
    TaxRegime,
)

VERSION = "1.1"
MAX_ITEMS = 1000
UNREGISTERED = "URP"  # the buyer GSTIN of an export
EXPORT_PIN = 999999
SERVICE_UNIT = "OTH"  # unit quantity code for services
TOLERANCE = Decimal("1.00")  # TotInvVal may differ from the computed value by at most one rupee
MAX_ROUND_OFF = Decimal("99.99")
# The IRP's document number pattern: 1-16 characters, the first a letter or a digit 1-9.
DOCUMENT_NUMBER = re.compile(r"^[A-Za-z1-9][A-Za-z0-9/-]{0,15}$")
_PIN = re.compile(r"\b([1-9][0-9]{5})\b")
_TWO = Decimal("0.01")
_THREE = Decimal("0.001")
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP)
# Lines that charge something become items; negative lines are spread over them as discounts.
ITEM_KINDS = frozenset(
    {
        LineKind.BASE_FEE,
        LineKind.USAGE,
        LineKind.MINIMUM_SPEND,
        LineKind.USAGE_ADJUSTMENT,
        LineKind.CREDIT_PURCHASE,
    }
)


class SupplyType(StrEnum):
    B2B = "B2B"
    SEZWP = "SEZWP"
    SEZWOP = "SEZWOP"
    EXPWP = "EXPWP"  # export with payment of IGST
    EXPWOP = "EXPWOP"  # export under LUT, without payment of IGST
    DEXP = "DEXP"


class DocumentType(StrEnum):
    INVOICE = "INV"
    CREDIT_NOTE = "CRN"
    DEBIT_NOTE = "DBN"


@dataclass(frozen=True)
class SellerDetails:
    """The supplier as INV-01 wants it (configuration): the GSTIN comes from the invoice's supplier snapshot."""

    legal_name: str
    address1: str
    location: str
    pin: int
    state_code: str
    trade_name: str = ""
    address2: str = ""
    email: str = ""


@dataclass(frozen=True)
class Problem:
    """Why the IRP would refuse a document: the rule, the IRP's error code for it, the field and what is wrong."""

    rule: str
    code: str
    field: str
    detail: str

    def __str__(self) -> str:
        return f"{self.field}: {self.detail} (rule {self.rule}, IRP error {self.code})"


class DocumentRefused(FailedPrecondition):
    """The document breaks a rule the IRP checks; it is not sent."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" and {len(self.problems) - 5} more" if len(self.problems) > 5 else ""
        super().__init__(f"the IRP would refuse this e-invoice: {shown}{more}")


def is_einvoiced(regime: TaxRegime, buyer_gstin: str) -> bool:
    """B2B (the buyer has a GSTIN) and exports are e-invoiced; B2C is not."""
    return regime is TaxRegime.EXPORT or bool(buyer_gstin)


def financial_year_label(day: date) -> str:
    """The financial year ``day`` falls in, as the IRN formula writes it: 2026-27."""
    first = day.year if day.month >= 4 else day.year - 1
    return f"{first}-{(first + 1) % 100:02d}"


def irn(supplier_gstin: str, document_date: date, document_type: DocumentType, document_number: str) -> str:
    """The IRN: hex SHA-256 of supplier GSTIN + financial year "YYYY-YY" + document type + document number.
    The number is upper-cased (the IRP treats document numbers case-insensitively)."""
    text = f"{supplier_gstin}{financial_year_label(document_date)}{document_type.value}{document_number.upper()}"
    return hashlib.sha256(text.encode()).hexdigest()


def supply_type(regime: TaxRegime, tax_lines: Sequence[TaxLine]) -> SupplyType:
    if regime is TaxRegime.EXPORT:
        pays_igst = any(t.kind is TaxKind.IGST and t.amount_minor for t in tax_lines)
        return SupplyType.EXPWP if pays_igst else SupplyType.EXPWOP
    return SupplyType.B2B


def inr_factor(currency: str, rate: ExchangeRate | None) -> Decimal | None:
    """INR per one unit of ``currency`` from the invoice's stored rate, or None when no stored rate says it."""
    if currency == "INR":
        return Decimal(1)
    if rate is None:
        return None
    with localcontext(_EXACT):
        if rate.base_currency == "INR" and rate.quote_currency == currency:
            return Decimal(1) / rate.rate
        if rate.base_currency == currency and rate.quote_currency == "INR":
            return rate.rate
    return None


@dataclass(frozen=True)
class _Line:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount_minor: int
    gst_rate: Decimal
    sac_code: str


@dataclass(frozen=True)
class _Source:
    doc_type: DocumentType
    number: str
    day: date
    regime: TaxRegime
    place_of_supply: str
    supplier: Party
    customer: Party
    currency: str
    factor: Decimal
    lines: tuple[_Line, ...]
    tax_lines: tuple[TaxLine, ...]
    total_minor: int


def invoice_document(invoice: Invoice, seller: SellerDetails) -> dict[str, Any]:
    """The INV-01 document of an issued invoice. FailedPrecondition when it cannot be one (a draft, B2C, no INR
    rate); the result is checked with :func:`problems` before it is sent."""
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID) or not invoice.number or not invoice.issue_date:
        raise FailedPrecondition(f"invoice {invoice.id} is {invoice.status.value}; only issued invoices are e-invoiced")
    lines = tuple(
        _Line(line.description, line.quantity, line.unit_price, line.amount_minor, line.gst_rate, line.sac_code)
        for line in invoice.lines
        if line.kind in ITEM_KINDS or line.amount_minor < 0
    )
    return _document(
        _Source(
            DocumentType.INVOICE,
            invoice.number,
            invoice.issue_date,
            invoice.tax_regime,
            invoice.place_of_supply,
            invoice.supplier,
            invoice.customer,
            invoice.currency,
            _factor(invoice.currency, invoice.exchange_rate, invoice.number),
            lines,
            invoice.tax_lines,
            invoice.total_minor,
        ),
        seller,
    )


def credit_note_document(note: CreditNote, invoice: Invoice, seller: SellerDetails) -> dict[str, Any]:
    """The INV-01 document (Typ CRN) of a credit note, converted at its invoice's stored rate."""
    lines = tuple(
        _Line(line.description, line.quantity, line.unit_price, line.amount_minor, line.gst_rate, line.sac_code)
        for line in note.lines
    )
    return _document(
        _Source(
            DocumentType.CREDIT_NOTE,
            note.number,
            note.issue_date,
            note.tax_regime,
            note.place_of_supply,
            note.supplier,
            note.customer,
            note.currency,
            _factor(note.currency, invoice.exchange_rate, note.number),
            lines,
            note.tax_lines,
            note.total_minor,
        ),
        seller,
    )


def _factor(currency: str, rate: ExchangeRate | None, number: str) -> Decimal:
    factor = inr_factor(currency, rate)
    if factor is None:
        raise FailedPrecondition(
            f"{number} is in {currency} without a stored {currency}/INR exchange rate; an e-invoice states its "
            "values in INR"
        )
    return factor


def _inr(minor: int, currency: str, factor: Decimal) -> Decimal:
    with localcontext(_EXACT):
        value = Decimal(minor).scaleb(-currencies.minor_units(currency)) * factor
    return value.quantize(_TWO, rounding=ROUND_HALF_UP)


def _spread(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (non-negative, not all zero) by largest remainder."""
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _document(src: _Source, seller: SellerDetails) -> dict[str, Any]:
    items = [line for line in src.lines if line.amount_minor > 0]
    negatives = [line for line in src.lines if line.amount_minor < 0]
    discount = [0] * len(items)
    for rate in sorted({line.gst_rate for line in negatives}):
        owed = -sum(line.amount_minor for line in negatives if line.gst_rate == rate)
        at_rate = [i for i, line in enumerate(items) if line.gst_rate == rate]
        weights = [items[i].amount_minor for i in at_rate]
        if not at_rate or owed > sum(weights):
            # Left for the checks to refuse: the IRP accepts no negative taxable value.
            at_rate = at_rate or list(range(len(items)))[:1]
            weights = [1] * len(at_rate)
        for i, share in zip(at_rate, _spread(owed, weights) if at_rate else [], strict=False):
            discount[i] += share

    def inr(minor: int) -> Decimal:
        return _inr(minor, src.currency, src.factor)

    totals = [inr(line.amount_minor) for line in items]
    offs = [inr(off) for off in discount]
    assessable_paise = [max(int((t - o) * 100), 0) for t, o in zip(totals, offs, strict=True)]
    # Each tax line, converted once, is spread over the items of its rate in proportion to their assessable value
    # in paise: the item taxes add up to the invoice's tax lines, and each stays within a paisa of its share.
    taxes: list[dict[TaxKind, int]] = [{} for _ in items]
    for tax in src.tax_lines:
        at_rate = [i for i, line in enumerate(items) if _tax_rate(line.gst_rate, tax.kind) == tax.rate]
        weights = [assessable_paise[i] for i in at_rate]
        if not at_rate or sum(weights) == 0:
            continue
        paise = int(inr(tax.amount_minor) * 100)
        for i, share in zip(at_rate, _spread(paise, weights), strict=True):
            taxes[i][tax.kind] = taxes[i].get(tax.kind, 0) + share

    item_list: list[dict[str, Any]] = []
    for n, (line, total, off_inr, tax) in enumerate(zip(items, totals, offs, taxes, strict=True), start=1):
        assessable = total - off_inr
        igst, cgst, sgst = (Decimal(tax.get(k, 0)).scaleb(-2) for k in (TaxKind.IGST, TaxKind.CGST, TaxKind.SGST))
        quantity, unit_price = _quantity_and_price(line.quantity, total)
        item_list.append(
            {
                "SlNo": str(n),
                "PrdDesc": line.description[:300],
                "IsServc": "Y" if line.sac_code.startswith("99") else "N",
                "HsnCd": line.sac_code,
                "Qty": quantity,
                "Unit": SERVICE_UNIT,
                "UnitPrice": unit_price,
                "TotAmt": total,
                "Discount": off_inr,
                "AssAmt": assessable,
                "GstRt": line.gst_rate.quantize(_THREE),
                "IgstAmt": igst,
                "CgstAmt": cgst,
                "SgstAmt": sgst,
                "CesRt": Decimal("0.000"),
                "CesAmt": Decimal("0.00"),
                "OthChrg": Decimal("0.00"),
                "TotItemVal": assessable + igst + cgst + sgst,
            }
        )
    sums = {
        key: sum((item[key] for item in item_list), Decimal("0.00"))
        for key in ("AssAmt", "CgstAmt", "SgstAmt", "IgstAmt", "TotItemVal")
    }
    total_inr = inr(src.total_minor)
    export = src.regime is TaxRegime.EXPORT
    customer = src.customer
    buyer_pin = EXPORT_PIN if export else _pin_of(customer.address)
    buyer_state = EXPORT_PLACE_OF_SUPPLY if export else customer.state_code
    value_details: dict[str, Any] = {
        "AssVal": sums["AssAmt"],
        "CgstVal": sums["CgstAmt"],
        "SgstVal": sums["SgstAmt"],
        "IgstVal": sums["IgstAmt"],
        "CesVal": Decimal("0.00"),
        "StCesVal": Decimal("0.00"),
        "Discount": Decimal("0.00"),
        "OthChrg": Decimal("0.00"),
        "RndOffAmt": total_inr - sums["TotItemVal"],
        "TotInvVal": total_inr,
    }
    if src.currency != "INR":
        value_details["TotInvValFc"] = (
            Decimal(src.total_minor)
            .scaleb(-currencies.minor_units(src.currency))
            .quantize(_TWO, rounding=ROUND_HALF_UP)
        )
    address1, location = _address_parts(customer.address, customer.country)
    document: dict[str, Any] = {
        "Version": VERSION,
        "TranDtls": {
            "TaxSch": "GST",
            "SupTyp": supply_type(src.regime, src.tax_lines).value,
            "RegRev": "N",
            "IgstOnIntra": "N",
        },
        "DocDtls": {"Typ": src.doc_type.value, "No": src.number, "Dt": src.day.strftime("%d/%m/%Y")},
        "SellerDtls": _without_empty(
            {
                "Gstin": src.supplier.gstin,
                "LglNm": seller.legal_name,
                "TrdNm": seller.trade_name,
                "Addr1": seller.address1,
                "Addr2": seller.address2,
                "Loc": seller.location,
                "Pin": seller.pin,
                "Stcd": seller.state_code,
                "Em": seller.email,
            }
        ),
        "BuyerDtls": _without_empty(
            {
                "Gstin": UNREGISTERED if export else customer.gstin,
                "LglNm": customer.name,
                "Pos": EXPORT_PLACE_OF_SUPPLY if export else src.place_of_supply,
                "Addr1": address1,
                "Loc": location,
                "Pin": buyer_pin,
                "Stcd": buyer_state,
                "Em": customer.email,
            }
        ),
        "ItemList": item_list,
        "ValDtls": value_details,
    }
    if export:
        document["ExpDtls"] = {"ForCur": src.currency, "CntCode": customer.country}
    return document


def _quantity_and_price(quantity: Decimal, total: Decimal) -> tuple[Decimal, Decimal]:
    """Qty and UnitPrice (3 decimals) whose product is within a rupee of ``total``. A usage line's price per unit
    is often below a tenth of a paisa (0.00038 per API call): then the item is 1 unit at its total (the printed
    invoice keeps the real quantity and price)."""
    qty = quantity.quantize(_THREE, rounding=ROUND_HALF_UP)
    if qty > 0:
        price = (total / qty).quantize(_THREE, rounding=ROUND_HALF_UP)
        if abs(price * qty - total) <= TOLERANCE:
            return qty, price
    return Decimal("1.000"), total.quantize(_THREE)


def _tax_rate(gst_rate: Decimal, kind: TaxKind) -> Decimal:
    return gst_rate if kind is TaxKind.IGST else gst_rate / 2


def _without_empty(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in ("", None, 0)}


def _pin_of(address: str) -> int:
    found = _PIN.search(address)
    return int(found.group(1)) if found else 0


def _address_parts(address: str, country: str) -> tuple[str, str]:
    """Address line 1 and location (city) from a free-text address: its first line, and the line holding the PIN
    (else the last line) without the PIN; a one-line address is split at its commas. Without a location, the
    country's name (a foreign buyer's one-line address)."""
    lines = [p.strip() for p in address.splitlines() if p.strip()]
    if len(lines) == 1:
        lines = [p.strip() for p in lines[0].split(",") if p.strip()]
    if not lines:
        return "", ""
    rest = lines[1:]
    line = next((part for part in rest if _PIN.search(part)), rest[-1] if rest else "")
    location = _PIN.sub("", line).strip(" ,-")
    if len(location) < 3:
        found = pycountry.countries.get(alpha_2=country) if country else None
        location = found.name if found is not None else location
    return lines[0][:100], location[:50]


def dumps(document: Mapping[str, Any]) -> str:
    """The document as JSON text, each Decimal written as a JSON number exactly as it stands (never via float)."""
    if isinstance(document, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in document.items()) + "}"
    if isinstance(document, list):
        return "[" + ",".join(dumps(v) for v in document) + "]"
    if isinstance(document, Decimal):
        return format(document, "f")
    return json.dumps(document)


def loads(text: str | bytes) -> Any:
    """JSON text with its numbers as Decimals (the reverse of :func:`dumps`)."""
    return json.loads(text, parse_float=Decimal)
