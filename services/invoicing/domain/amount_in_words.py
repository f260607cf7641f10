"""An invoice total in words, as Indian invoices print it: "Rupees Twelve Lakh ... and Fifty Paise Only".

INR is written in the Indian system (lakh, crore) by num2words' ``en_IN``; other currencies in the international
one (million, billion). The minor part follows the currency's ISO 4217 exponent: none for JPY, fils (3 digits)
for KWD.
"""

from __future__ import annotations

from dataclasses import dataclass

import iso4217
from num2words import num2words

from services.invoicing.domain.currencies import minor_units


@dataclass(frozen=True)
class _Names:
    major: str
    minor: str
    major_first: bool = False  # "Rupees Ten" rather than "Ten Rupees"
    # For exactly one unit ("One US Dollar"); Indian invoices keep "Rupees One" and "One Paise".
    major_one: str = ""
    minor_one: str = ""

    def major_for(self, count: int) -> str:
        return self.major_one if count == 1 and self.major_one else self.major

    def minor_for(self, count: int) -> str:
        return self.minor_one if count == 1 and self.minor_one else self.minor


_NAMES: dict[str, _Names] = {
    "INR": _Names("Rupees", "Paise", major_first=True),
    "USD": _Names("US Dollars", "Cents", major_one="US Dollar", minor_one="Cent"),
    "EUR": _Names("Euros", "Cents", major_one="Euro", minor_one="Cent"),
    "GBP": _Names("Pounds Sterling", "Pence", major_one="Pound Sterling", minor_one="Penny"),
    "SGD": _Names("Singapore Dollars", "Cents", major_one="Singapore Dollar", minor_one="Cent"),
    "AUD": _Names("Australian Dollars", "Cents", major_one="Australian Dollar", minor_one="Cent"),
    "CAD": _Names("Canadian Dollars", "Cents", major_one="Canadian Dollar", minor_one="Cent"),
    "AED": _Names("UAE Dirhams", "Fils", major_one="UAE Dirham"),
    "JPY": _Names("Japanese Yen", ""),
    "KWD": _Names("Kuwaiti Dinars", "Fils", major_one="Kuwaiti Dinar"),
    "BHD": _Names("Bahraini Dinars", "Fils", major_one="Bahraini Dinar"),
    "OMR": _Names("Omani Rials", "Baisa", major_one="Omani Rial"),
}


def _words(number: int, currency: str) -> str:
    text = num2words(number, lang="en_IN" if currency == "INR" else "en")
    # num2words writes "twelve lakh, thirty-four thousand, five hundred and sixty-seven": no commas on an invoice,
    # and each word capitalised ("Thirty-Four").
    words = text.replace(",", "").split()
    return " ".join("-".join(part.capitalize() for part in word.split("-")) if word != "and" else "and"
                    for word in words)


def amount_in_words(amount_minor: int, currency: str) -> str:
    """``amount_minor`` of ``currency`` in words ending in "Only".

    INR 123456750 -> "Rupees Twelve Lakh Thirty-Four Thousand Five Hundred and Sixty-Seven and Fifty Paise Only";
    USD 1050 -> "Ten US Dollars and Fifty Cents Only"; JPY 1234 -> "One Thousand Two Hundred and Thirty-Four
    Japanese Yen Only"; KWD 1005 -> "One Kuwaiti Dinar and Five Fils Only". Negative amounts start "Minus"."""
    exponent = minor_units(currency)
    sign = "Minus " if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), 10**exponent)
    names = _NAMES.get(currency)
    if names is None:
        names = _Names(f"{iso4217.Currency(currency).currency_name} ({currency})", "")
    major_name = names.major_for(major)
    major_text = (
        f"{major_name} {_words(major, currency)}" if names.major_first else f"{_words(major, currency)} {major_name}"
    )
    text = sign + major_text
    if exponent and minor:
        if names.minor:
            text += f" and {_words(minor, currency)} {names.minor_for(minor)}"
        else:
            # No common name for the minor unit: write it as a fraction of the major one, as cheques do.
            text += f" and {minor:0{exponent}d}/{10**exponent}"
    return text + " Only"
