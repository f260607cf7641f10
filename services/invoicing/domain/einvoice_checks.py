"""What the IRP refuses, checked before an e-invoice is sent, and the time rules around registration.

Each check names its rule and the IRP error code the portal answers with. Schema-level checks (a missing field, a
value out of its length, pattern or decimals) are code 2140 ("not as per the eInvoice request schema"); the
business rules have their own codes from NIC's published list (2172, 2176, 2182, 2189, 2193).

Time rules
- A supplier with aggregate turnover of ₹10 crore or more must register a document within 30 days of its date; the
  IRP refuses later ones, so we block them before sending (:func:`reporting_problem`).
- An IRN may be cancelled within 24 hours of its acknowledgement; after that the supplier issues a credit note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.einvoice import (
    DOCUMENT_NUMBER,
    MAX_ITEMS,
    MAX_ROUND_OFF,
    TOLERANCE,
    UNREGISTERED,
    VERSION,
    DocumentRefused,
    DocumentType,
    Problem,
    SupplyType,
)
from services.invoicing.domain.gst import EXPORT_PLACE_OF_SUPPLY, STATE_CODES, gstin_problem

SCHEMA = "2140"
REPORTING_DAYS = 30
CANCEL_WINDOW = timedelta(hours=24)
GST_RATES = frozenset(
    Decimal(r) for r in ("0", "0.1", "0.25", "1", "1.5", "3", "5", "6", "7.5", "12", "18", "28", "40")
)
_SAC = re.compile(r"^99[0-9]{4}$")
_HSN = re.compile(r"^[0-9]{4}([0-9]{2}){0,2}$")
_DATE = re.compile(r"^[0-3][0-9]/[01][0-9]/[0-9]{4}$")
_EXPORTS = (SupplyType.EXPWP.value, SupplyType.EXPWOP.value)


class TurnoverBand(StrEnum):
    """The supplier's aggregate annual turnover, for the 30-day reporting rule."""

    BELOW_10_CRORE = "below_10_crore"
    FROM_10_CRORE = "from_10_crore"


class CancelReason(StrEnum):
    """The IRP's cancellation reason codes."""

    DUPLICATE = "1"
    DATA_ENTRY_MISTAKE = "2"
    ORDER_CANCELLED = "3"
    OTHER = "4"


def cancel_reason(code: str) -> CancelReason:
    try:
        return CancelReason(code.strip())
    except ValueError:
        raise InvalidArgument(
            "must be 1 (duplicate), 2 (data entry mistake), 3 (order cancelled) or 4 (other)",
            field="cancel_reason_code",
        ) from None


def reporting_problem(document_date: date, today: date, band: TurnoverBand) -> str | None:
    """Why a document dated ``document_date`` may no longer be registered on ``today``, or None."""
    if band is TurnoverBand.FROM_10_CRORE and (today - document_date).days > REPORTING_DAYS:
        return (
            f"dated {document_date.isoformat()}, more than {REPORTING_DAYS} days before {today.isoformat()}: a "
            "supplier with turnover of ₹10 crore or more must report within 30 days, so the IRP refuses it. Issue "
            "a new invoice (and a credit note for this one)"
        )
    return None


def check_cancellable(acknowledged_at: datetime, now: datetime) -> None:
    """FailedPrecondition once the 24 hours in which the IRP cancels an IRN have passed (IRP error 2270)."""
    if now - acknowledged_at > CANCEL_WINDOW:
        raise FailedPrecondition(
            f"the IRN was registered at {acknowledged_at.isoformat()}, more than 24 hours ago; the IRP no longer "
            "cancels it (IRP error 2270). Issue a credit note for the invoice instead of voiding it"
        )


def check(document: Mapping[str, Any], *, today: date | None = None) -> None:
    """DocumentRefused listing every problem the IRP would refuse ``document`` for; nothing when it has none."""
    found = problems(document, today=today)
    if found:
        raise DocumentRefused(found)


def problems(document: Mapping[str, Any], *, today: date | None = None) -> list[Problem]:
    """Every rule ``document`` breaks (empty when the IRP would accept it)."""
    out: list[Problem] = []

    def bad(rule: str, code: str, field: str, detail: str) -> None:
        out.append(Problem(rule, code, field, detail))

    if document.get("Version") != VERSION:
        bad("schema version", SCHEMA, "Version", f"must be {VERSION}")
    tran = document.get("TranDtls") or {}
    sup_typ = tran.get("SupTyp")
    if tran.get("TaxSch") != "GST":
        bad("tax scheme", SCHEMA, "TranDtls.TaxSch", "must be GST")
    if sup_typ not in {t.value for t in SupplyType}:
        bad("supply type", SCHEMA, "TranDtls.SupTyp", "must be B2B, SEZWP, SEZWOP, EXPWP, EXPWOP or DEXP")
    _document_details(document.get("DocDtls") or {}, today, bad)
    seller = document.get("SellerDtls") or {}
    buyer = document.get("BuyerDtls") or {}
    _parties(seller, buyer, sup_typ, bad)
    items = document.get("ItemList") or []
    if not 1 <= len(items) <= MAX_ITEMS:
        bad("item count", SCHEMA, "ItemList", f"has {len(items)} items; an e-invoice has 1 to {MAX_ITEMS}")
    intra = seller.get("Stcd") == buyer.get("Pos") and sup_typ == SupplyType.B2B.value
    sums = {k: Decimal(0) for k in ("AssAmt", "CgstAmt", "SgstAmt", "IgstAmt", "CesAmt", "TotItemVal")}
    seen: set[str] = set()
    for index, item in enumerate(items[:MAX_ITEMS]):
        _item(item, f"ItemList[{index}]", intra, sup_typ, seen, bad)
        for key in sums:
            sums[key] += _dec(item.get(key))
    _values(document.get("ValDtls") or {}, sums, bad)
    return out


def _document_details(doc: Mapping[str, Any], today: date | None, bad: Any) -> None:
    if doc.get("Typ") not in {t.value for t in DocumentType}:
        bad("document type", SCHEMA, "DocDtls.Typ", "must be INV, CRN or DBN")
    number = doc.get("No")
    if not isinstance(number, str) or not DOCUMENT_NUMBER.fullmatch(number):
        bad(
            "document number",
            SCHEMA,
            "DocDtls.No",
            "must be 1-16 characters: a letter or a digit 1-9, then letters, digits, '/' or '-'",
        )
    day = _parse_date(doc.get("Dt"))
    if day is None:
        bad("document date", SCHEMA, "DocDtls.Dt", "must be a date written DD/MM/YYYY")
    elif today is not None and day > today:
        bad("document date", "2163", "DocDtls.Dt", "must not be after today")


def _parse_date(text: Any) -> date | None:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None


def _parties(seller: Mapping[str, Any], buyer: Mapping[str, Any], sup_typ: Any, bad: Any) -> None:
    gstin = seller.get("Gstin")
    if not gstin:
        bad("supplier GSTIN", "2155", "SellerDtls.Gstin", "is required")
    elif (problem := gstin_problem(gstin, str(seller.get("Stcd", "")))) is not None:
        bad("supplier GSTIN", SCHEMA, "SellerDtls.Gstin", problem)
    for prefix, party in (("SellerDtls", seller), ("BuyerDtls", buyer)):
        _text(party, prefix, "LglNm", 3, 100, bad)
        _text(party, prefix, "Addr1", 1, 100, bad)
        _text(party, prefix, "Loc", 3, 50, bad)
        pin = party.get("Pin")
        if not isinstance(pin, int) or not 100000 <= pin <= 999999:
            bad("PIN code", SCHEMA, f"{prefix}.Pin", "must be a 6-digit PIN code")
    if seller.get("Stcd") not in STATE_CODES:
        bad("state code", SCHEMA, "SellerDtls.Stcd", "must be a GST state code")
    export = sup_typ in _EXPORTS
    buyer_gstin = buyer.get("Gstin")
    if export:
        for field, wanted in (
            ("Gstin", UNREGISTERED),
            ("Pos", EXPORT_PLACE_OF_SUPPLY),
            ("Stcd", EXPORT_PLACE_OF_SUPPLY),
        ):
            if buyer.get(field) != wanted:
                bad("export buyer", SCHEMA, f"BuyerDtls.{field}", f"must be {wanted} for an export")
        return
    if buyer_gstin == UNREGISTERED or not buyer_gstin:
        bad("buyer GSTIN", SCHEMA, "BuyerDtls.Gstin", f"is required and may be {UNREGISTERED} only for exports")
    elif (problem := gstin_problem(buyer_gstin, str(buyer.get("Stcd", "")))) is not None:
        bad("buyer GSTIN", SCHEMA, "BuyerDtls.Gstin", problem)
    if buyer.get("Pos") not in STATE_CODES:
        bad("place of supply", SCHEMA, "BuyerDtls.Pos", "must be a GST state code")


def _text(party: Mapping[str, Any], prefix: str, field: str, low: int, high: int, bad: Any) -> None:
    value = party.get(field)
    if not isinstance(value, str) or not low <= len(value) <= high:
        bad("party details", SCHEMA, f"{prefix}.{field}", f"must be {low} to {high} characters")


def _dec(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(0)


def _places_ok(value: Any, places: int) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, Decimal) and value.is_finite() and -value.as_tuple().exponent <= places  # type: ignore[operator]


def _item(item: Mapping[str, Any], at: str, intra: bool, sup_typ: Any, seen: set[str], bad: Any) -> None:
    number = item.get("SlNo")
    if not isinstance(number, str) or not number or number in seen:
        bad("item serial number", SCHEMA, f"{at}.SlNo", "must be present and unique")
    seen.add(str(number))
    hsn = item.get("HsnCd")
    if not isinstance(hsn, str) or not _HSN.fullmatch(hsn):
        bad("HSN/SAC code", "2176", f"{at}.HsnCd", "must be a 4, 6 or 8 digit HSN or SAC code")
    elif item.get("IsServc") != ("Y" if _SAC.fullmatch(hsn) else "N"):
        bad("service flag", SCHEMA, f"{at}.IsServc", "must be Y for a SAC code (99xxxx) and N otherwise")
    for key, places in (
        ("Qty", 3),
        ("UnitPrice", 3),
        ("GstRt", 3),
        ("TotAmt", 2),
        ("Discount", 2),
        ("AssAmt", 2),
        ("IgstAmt", 2),
        ("CgstAmt", 2),
        ("SgstAmt", 2),
        ("CesAmt", 2),
        ("OthChrg", 2),
        ("TotItemVal", 2),
    ):
        value = item.get(key, Decimal(0))
        if not _places_ok(value, places):
            bad("decimal places", SCHEMA, f"{at}.{key}", f"must be a number with at most {places} decimals")
        elif _dec(value) < 0:
            bad("non-negative values", SCHEMA, f"{at}.{key}", "must not be negative")
    total, discount, assessable = (_dec(item.get(k)) for k in ("TotAmt", "Discount", "AssAmt"))
    if assessable != total - discount:
        bad(
            "assessable amount",
            "2193",
            f"{at}.AssAmt",
            f"is {assessable}; must be TotAmt - Discount = {total - discount}",
        )
    rate = _dec(item.get("GstRt"))
    if rate not in GST_RATES:
        bad("GST rate", SCHEMA, f"{at}.GstRt", "must be one of the notified GST rates")
    igst, cgst, sgst = (_dec(item.get(k)) for k in ("IgstAmt", "CgstAmt", "SgstAmt"))
    if intra and igst:
        bad("taxes of the place of supply", "2172", f"{at}.IgstAmt", "must be 0 within a state; CGST and SGST apply")
    if not intra and (cgst or sgst):
        bad(
            "taxes of the place of supply",
            "2172",
            f"{at}.CgstAmt",
            "CGST and SGST apply only within a state; IGST applies across states and to exports",
        )
    if sup_typ == SupplyType.EXPWOP.value and (igst or cgst or sgst):
        bad("export without payment of IGST", SCHEMA, f"{at}.IgstAmt", "must be 0 for EXPWOP")
    expected_tax = assessable * rate / 100
    if sup_typ != SupplyType.EXPWOP.value and abs(igst + cgst + sgst - expected_tax) > TOLERANCE:
        bad(
            "item tax",
            SCHEMA,
            f"{at}.GstRt",
            f"taxes {igst + cgst + sgst} differ from AssAmt x GstRt = {expected_tax:.2f} by more than 1",
        )
    computed = assessable + igst + cgst + sgst + _dec(item.get("CesAmt")) + _dec(item.get("OthChrg"))
    if _dec(item.get("TotItemVal")) != computed:
        bad("item value", SCHEMA, f"{at}.TotItemVal", f"must be AssAmt + taxes + OthChrg = {computed}")


def _values(values: Mapping[str, Any], sums: Mapping[str, Decimal], bad: Any) -> None:
    for key in (
        "AssVal",
        "CgstVal",
        "SgstVal",
        "IgstVal",
        "CesVal",
        "StCesVal",
        "Discount",
        "OthChrg",
        "RndOffAmt",
        "TotInvVal",
        "TotInvValFc",
    ):
        if key in values and not _places_ok(values[key], 2):
            bad("decimal places", SCHEMA, f"ValDtls.{key}", "must be a number with at most 2 decimals")
    if _dec(values.get("AssVal")) != sums["AssAmt"]:
        bad("total taxable value", "2182", "ValDtls.AssVal", f"must be the sum of the items' AssAmt ({sums['AssAmt']})")
    for total_key, item_key in (("CgstVal", "CgstAmt"), ("SgstVal", "SgstAmt"), ("IgstVal", "IgstAmt")):
        if _dec(values.get(total_key)) != sums[item_key]:
            bad(
                "total tax",
                SCHEMA,
                f"ValDtls.{total_key}",
                f"must be the sum of the items' {item_key} ({sums[item_key]})",
            )
    round_off = _dec(values.get("RndOffAmt"))
    if abs(round_off) > MAX_ROUND_OFF:
        bad("round off", SCHEMA, "ValDtls.RndOffAmt", f"must be between -{MAX_ROUND_OFF} and {MAX_ROUND_OFF}")
    total = _dec(values.get("TotInvVal"))
    computed = sums["TotItemVal"] + _dec(values.get("OthChrg")) - _dec(values.get("Discount")) + round_off
    if abs(total - computed) > TOLERANCE:
        bad(
            "total invoice value",
            "2189",
            "ValDtls.TotInvVal",
            f"is {total}; the items plus charges less discount plus round-off make {computed} (tolerance ±1)",
        )
    if total <= 0:
        bad("total invoice value", "2189", "ValDtls.TotInvVal", "must be positive")
