"""Request validation the way Razorpay words it: the first problem found, with the field it is about."""

from __future__ import annotations

from typing import Any

from sandboxes.razorpay.errors import bad_request
from sandboxes.razorpay.ids import now

# Currencies Razorpay accepts for orders (a subset is enough for a sandbox); three-decimal ones need a final 0.
CURRENCIES = frozenset(
    "INR USD EUR GBP SGD AED AUD CAD CHF CNY DKK HKD JPY MYR NOK NZD QAR SAR SEK THB ZAR KWD BHD OMR".split()
)
THREE_DECIMAL = frozenset({"KWD", "BHD", "OMR"})
MIN_AMOUNT = 100
MAX_RECEIPT = 40
MAX_NOTES = 15
MAX_NOTE_VALUE = 256
ORDER_FIELDS = frozenset(
    {"amount", "currency", "receipt", "notes", "payment_capture", "partial_payment", "first_payment_min_amount",
     # An authorisation order of recurring payments: the method, the customer, and the token (mandate) asked for.
     "method", "customer_id", "token"}
)
REFUND_FIELDS = frozenset({"amount", "speed", "notes", "receipt", "payment_id"})
CAPTURE_FIELDS = frozenset({"amount", "currency"})
LINK_FIELDS = frozenset(
    {
        "amount", "currency", "description", "reference_id", "customer", "notify", "callback_url",
        "callback_method", "expire_by", "notes", "accept_partial", "first_min_partial_amount", "reminder_enable",
        "upi_link",
    }
)


def reject_unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = [key for key in body if key not in allowed]
    if extra:
        raise bad_request(f"{', '.join(extra)} is/are not required and should not be sent", extra[0])


def currency(body: dict[str, Any], default: str | None = None) -> str:
    value = body.get("currency", default)
    if value is None:
        raise bad_request("The currency field is required.", "currency")
    if not isinstance(value, str) or value not in CURRENCIES:
        raise bad_request("The selected currency is invalid.", "currency")
    return value


def amount(body: dict[str, Any], currency_code: str, *, required: bool = True, name: str = "amount") -> int | None:
    """An integer amount in minor units, at least 1.00 of the currency."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"The {name} field is required.", name)
        return None
    # JSON booleans are ints in Python; Razorpay rejects them like any other non-integer.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        else:
            raise bad_request(f"The {name} must be an integer.", name)
    if value < MIN_AMOUNT:
        raise bad_request(f"The {name} must be atleast {currency_code} 1.00", name)
    if currency_code in THREE_DECIMAL and value % 10:
        raise bad_request(f"The {name} must have 0 as its last digit for {currency_code}", name)
    return value


def text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"The {name} must be a string.", name)
    if len(value) > limit:
        raise bad_request(f"The {name} may not be greater than {limit} characters.", name)
    return value


def notes(body: dict[str, Any]) -> dict[str, str]:
    value = body.get("notes")
    if value is None or value == []:
        return {}
    if not isinstance(value, dict):
        raise bad_request("The notes must be an array.", "notes")
    if len(value) > MAX_NOTES:
        raise bad_request(f"Number of fields in notes should be less than or equal to {MAX_NOTES}", "notes")
    for key, note in value.items():
        if not isinstance(note, str | int | float) or isinstance(note, bool):
            raise bad_request(f"The notes.{key} must be a string.", f"notes.{key}")
        if len(str(note)) > MAX_NOTE_VALUE:
            raise bad_request(
                f"The notes.{key} may not be greater than {MAX_NOTE_VALUE} characters.", f"notes.{key}"
            )
    return {str(key): str(note) for key, note in value.items()}


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if value in (True, 1, "1", "true"):
        return True
    if value in (False, 0, "0", "false"):
        return False
    raise bad_request(f"The {name} field may be sent only with value 0 or 1.", name)


RECURRING_METHODS = ("card", "upi", "emandate")
FREQUENCIES = ("as_presented", "daily", "weekly", "monthly", "quarterly", "yearly")
# Ceilings on a token's max_amount by method, in paise (Razorpay's published defaults: card ₹10 lakh, UPI ₹1 lakh,
# eNACH ₹1 crore). Debits above ₹15,000 on cards and UPI still need the customer's extra authentication.
MAX_TOKEN_AMOUNT = {"card": 100_000_000, "upi": 10_000_000, "emandate": 1_000_000_000}


def token_request(body: dict[str, Any], method: str) -> dict[str, Any]:
    """The `token` object of an authorisation order: max_amount, expire_at, frequency (and eNACH's bank account)."""
    token = body.get("token")
    if not isinstance(token, dict):
        raise bad_request("The token must be an array.", "token")
    reject_unknown(token, frozenset({"max_amount", "expire_at", "frequency", "auth_type", "bank_account",
                                     "recurring_value", "recurring_type", "first_payment_amount", "notes"}))
    max_amount = token.get("max_amount")
    if isinstance(max_amount, bool) or not isinstance(max_amount, int) or max_amount < MIN_AMOUNT:
        raise bad_request("The token.max_amount must be an integer of at least 100.", "token.max_amount")
    if max_amount > MAX_TOKEN_AMOUNT[method]:
        raise bad_request(f"The token.max_amount may not be greater than {MAX_TOKEN_AMOUNT[method]} for {method}.",
                          "token.max_amount")
    expire_at = token.get("expire_at")
    if isinstance(expire_at, bool) or not isinstance(expire_at, int) or expire_at <= now():
        raise bad_request("The token.expire_at must be a timestamp in the future.", "token.expire_at")
    frequency = token.get("frequency", "as_presented")
    if frequency not in FREQUENCIES:
        raise bad_request("The selected token.frequency is invalid.", "token.frequency")
    bank_account = token.get("bank_account") or {}
    if method == "emandate" and not isinstance(bank_account, dict):
        raise bad_request("The token.bank_account must be an array.", "token.bank_account")
    return {"max_amount": max_amount, "expire_at": expire_at, "frequency": frequency,
            "auth_type": token.get("auth_type") or ("netbanking" if method == "emandate" else None),
            "bank_account": bank_account if method == "emandate" else None}


def order_request(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a new order, validated; raises RazorpayError naming the first bad field."""
    reject_unknown(body, ORDER_FIELDS)
    code = currency(body, "INR")
    method = body.get("method")
    if "token" in body:
        # An authorisation order: INR only, a recurring method, a customer; eNACH may authorise for 0.
        if method not in RECURRING_METHODS:
            raise bad_request("The method must be one of card, upi or emandate for a recurring order.", "method")
        if code != "INR":
            raise bad_request("Recurring payments are supported only in INR.", "currency")
        if not isinstance(body.get("customer_id"), str) or not body["customer_id"]:
            raise bad_request("The customer_id field is required for a recurring order.", "customer_id")
        token = token_request(body, method)
        value = body.get("amount")
        if method == "emandate" and value == 0:
            return {"amount": 0, "currency": code, "receipt": text(body, "receipt", MAX_RECEIPT),
                    "notes": notes(body), "payment_capture": True, "partial_payment": False,
                    "first_payment_min_amount": None, "method": method, "customer_id": body["customer_id"],
                    "token": token}
    else:
        token = None
    value = amount(body, code)
    partial = flag(body, "partial_payment", False)
    minimum = amount(body, code, required=False, name="first_payment_min_amount") if partial else None
    return {
        "amount": value,
        "currency": code,
        "receipt": text(body, "receipt", MAX_RECEIPT),
        "notes": notes(body),
        "payment_capture": flag(body, "payment_capture", True),
        "partial_payment": partial,
        "first_payment_min_amount": minimum,
        "method": method if token is not None else None,
        "customer_id": body.get("customer_id") if token is not None else None,
        "token": token,
    }


def link_request(body: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(body, LINK_FIELDS)
    code = currency(body, "INR")
    customer = body.get("customer") or {}
    if not isinstance(customer, dict) or set(customer) - {"name", "email", "contact"}:
        raise bad_request("The customer must contain only name, email and contact.", "customer")
    notify = body.get("notify") or {}
    if not isinstance(notify, dict):
        raise bad_request("The notify must be an array.", "notify")
    callback_url = text(body, "callback_url", 2048)
    method = body.get("callback_method")
    if callback_url and method != "get":
        raise bad_request("The callback method field must be get when callback_url is sent.", "callback_method")
    expire_by = body.get("expire_by")
    if expire_by is not None and (not isinstance(expire_by, int) or expire_by <= now()):
        raise bad_request("The expire by must be a timestamp in the future.", "expire_by")
    partial = flag(body, "accept_partial", False)
    return {
        "amount": amount(body, code),
        "currency": code,
        "description": text(body, "description", 2048) or "",
        "reference_id": text(body, "reference_id", MAX_RECEIPT) or "",
        "customer": {key: customer.get(key, "") for key in ("name", "email", "contact")},
        "notify": {"email": bool(notify.get("email", False)), "sms": bool(notify.get("sms", False))},
        "callback_url": callback_url or "",
        "callback_method": method or "",
        "expire_by": expire_by or 0,
        "notes": notes(body),
        "accept_partial": partial,
        "first_min_partial_amount": (
            amount(body, code, required=False, name="first_min_partial_amount") or 0 if partial else 0
        ),
        "reminder_enable": flag(body, "reminder_enable", False),
        "upi_link": flag(body, "upi_link", False),
    }
