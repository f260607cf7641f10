"""Indian GST identifiers: state codes and GSTINs (format and check character)."""

from __future__ import annotations

import re

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
