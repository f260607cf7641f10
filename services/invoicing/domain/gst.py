"""Indian GST: state codes, GSTINs (format and check character), the tax regime of a supply and its tax lines."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.invoice import InvoiceLine, TaxKind, TaxLine, TaxRegime

# GST state codes as issued by GSTN (the first two digits of every GSTIN).
STATE_CODES: dict[str, str] = {
    "01": "Jammu and Kashmir", "02": "Himachal Pradesh", "03": "Punjab", "04": "Chandigarh",
    "05": "Uttarakhand", "06": "Haryana", "07": "Delhi", "08": "Rajasthan", "09": "Uttar Pradesh",
    "10": "Bihar", "11": "Sikkim", "12": "Arunachal Pradesh", "13": "Nagaland", "14": "Manipur",
    "15": "Mizoram", "16": "Tripura", "17": "Meghalaya", "18": "Assam", "19": "West Bengal",
    "20": "Jharkhand", "21": "Odisha", "22": "Chhattisgarh", "23": "Madhya Pradesh", "24": "Gujarat",
    "25": "Daman and Diu", "26": "Dadra and Nagar Haveli and Daman and Diu", "27": "Maharashtra",
    "28": "Andhra Pradesh (before division)", "29": "Karnataka", "30": "Goa", "31": "Lakshadweep",
    "32": "Kerala", "33": "Tamil Nadu", "34": "Puducherry", "35": "Andaman and Nicobar Islands",
    "36": "Telangana", "37": "Andhra Pradesh", "38": "Ladakh", "97": "Other Territory",
    "99": "Centre Jurisdiction",
}  # fmt: skip

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# 2 digits state, 10 characters PAN (5 letters, 4 digits, 1 letter), entity number, 'Z', check character.
_GSTIN_FORMAT = re.compile(r"^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$")


def gstin_check_character(first_fourteen: str) -> str:
    """The GSTN check character: a Luhn mod 36 over the first 14 characters, factors alternating 1 and 2."""
    total = 0
    for position, char in enumerate(first_fourteen):
        product = _ALPHABET.index(char) * (1 if position % 2 == 0 else 2)
        total += product // 36 + product % 36
    return _ALPHABET[(36 - total % 36) % 36]


def gstin_problem(gstin: str, state_code: str) -> str | None:
    """Why ``gstin`` is not a valid GSTIN for an organisation in ``state_code``, or None if it is."""
    if not _GSTIN_FORMAT.fullmatch(gstin):
        return (
            "must be 15 characters: 2-digit state code, 10-character PAN, entity number, 'Z', check character"
        )
    if gstin[:2] not in STATE_CODES:
        return f"starts with {gstin[:2]!r}, which is not a GST state code"
    if gstin[:2] != state_code:
        return f"is registered in state {gstin[:2]} but state_code is {state_code!r}"
    expected = gstin_check_character(gstin[:14])
    if gstin[14] != expected:
        return f"check character is {gstin[14]!r} but should be {expected!r}; the GSTIN has a typo"
    return None


# Place-of-supply code the GST portal uses for a customer outside India ("Other Country").
EXPORT_PLACE_OF_SUPPLY = "96"
EXPORT_NOTE = "Supply meant for export under LUT without payment of IGST"


def tax_regime(supplier_state_code: str, customer_country: str, customer_state_code: str) -> TaxRegime:
    """CGST + SGST when an Indian customer is in the supplier's state, IGST for another Indian state, export
    (zero-rated) for a customer outside India. InvalidArgument for an Indian customer without a valid state."""
    if customer_country != "IN":
        return TaxRegime.EXPORT
    if customer_state_code not in STATE_CODES:
        raise InvalidArgument(
            f"is {customer_state_code!r}; a customer in India needs a GST state code such as 29 to decide CGST+SGST "
            "or IGST",
            field="state_code",
        )
    return TaxRegime.INTRA_STATE if customer_state_code == supplier_state_code else TaxRegime.INTER_STATE


def place_of_supply(customer_country: str, customer_state_code: str) -> str:
    """The GST place of supply: the customer's state code in India, "96" (other country) outside it."""
    return customer_state_code if customer_country == "IN" else EXPORT_PLACE_OF_SUPPLY


def tax_amount_minor(taxable_minor: int, rate: Decimal) -> int:
    """``rate`` percent of ``taxable_minor``, rounded half-up to a whole minor unit (each component on its own)."""
    with localcontext(Context(prec=60)):
        exact = Decimal(taxable_minor) * rate / 100
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def tax_lines(lines: Sequence[InvoiceLine], regime: TaxRegime) -> tuple[TaxLine, ...]:
    """Tax per GST rate on the sum of the lines with that rate, in ascending rate order.

    Intra-state gives a CGST and an SGST line per rate, each at half the rate and rounded half-up separately
    (so CGST + SGST can differ by one minor unit from the full rate rounded once); inter-state an IGST line per
    rate; export none."""
    if regime is TaxRegime.EXPORT:
        return ()
    taxable: dict[Decimal, int] = {}
    for line in lines:
        taxable[line.gst_rate] = taxable.get(line.gst_rate, 0) + line.amount_minor
    result: list[TaxLine] = []
    for rate in sorted(taxable):
        amount = taxable[rate]
        if regime is TaxRegime.INTRA_STATE:
            half = rate / 2
            result.append(TaxLine(TaxKind.CGST, half, amount, tax_amount_minor(amount, half)))
            result.append(TaxLine(TaxKind.SGST, half, amount, tax_amount_minor(amount, half)))
        else:
            result.append(TaxLine(TaxKind.IGST, rate, amount, tax_amount_minor(amount, rate)))
    return tuple(result)
