"""Payment records: how a payment by UPI, card, netbanking or wallet looks, in the API and in webhooks.

The REST body has exactly the keys of Razorpay's "fetch a payment" samples for the method; webhook bodies add what
Razorpay's webhook samples add (`amount_transferred`, `base_amount`, and the `card` object for card payments).
"""

from __future__ import annotations

import secrets
from typing import Any

from sandboxes.razorpay.errors import bad_request
from sandboxes.razorpay.ids import new_id, now
from sandboxes.razorpay.store import Obj, public

METHODS = ("upi", "card", "netbanking", "wallet", "emandate")
# Razorpay's test credentials: these VPAs and card numbers succeed or fail without asking anything else.
SUCCESS_VPA = "success@razorpay"
FAILURE_VPA = "failure@razorpay"
DECLINED_CARD = "4000000000000002"
DEFAULT_CARD = "4111111111111111"
NETWORKS = {"4": "Visa", "5": "MasterCard", "6": "RuPay", "3": "American Express"}

DEFAULT_FAILURE = {
    "error_code": "BAD_REQUEST_ERROR",
    "error_description": "Payment failed due to insufficient balance in the customer's account.",
    "error_source": "customer",
    "error_step": "payment_authorization",
    "error_reason": "insufficient_balance",
}


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def method_details(method: str, details: dict[str, Any]) -> dict[str, Any]:
    """The method-specific keys of a payment (vpa, card, bank, wallet) and its acquirer data."""
    if method not in METHODS:
        raise bad_request("Invalid payment method given: " + str(method), "method")
    if method == "upi":
        vpa = details.get("vpa") or SUCCESS_VPA
        if "@" not in vpa:
            raise bad_request("Invalid VPA. Please enter a valid Virtual Payment Address", "vpa")
        return {
            "vpa": vpa,
            "acquirer_data": {"rrn": _digits(12), "upi_transaction_id": _digits(12)},
            "upi": {"payer_account_type": "bank_account", "vpa": vpa, "flow": "collect"},
        }
    if method == "card":
        number = "".join(ch for ch in str(details.get("card_number") or DEFAULT_CARD) if ch.isdigit())
        if not 12 <= len(number) <= 19:
            raise bad_request("Your card number is invalid.", "card[number]")
        card_id = new_id("card")
        card = {
            "id": card_id,
            "entity": "card",
            "name": details.get("card_name") or "",
            "last4": number[-4:],
            "network": NETWORKS.get(number[0], "Unknown"),
            "type": "credit",
            "issuer": None,
            "international": False,
            "emi": False,
            "sub_type": "consumer",
            "iin": number[:6],
        }
        return {
            "card_id": card_id,
            "_card": card,
            "_card_number": number,
            "customer_id": None,
            "token_id": None,
            "acquirer_data": {"auth_code": _digits(6)},
        }
    if method == "emandate":
        return {"bank": details.get("bank") or "HDFC", "acquirer_data": {}}
    if method == "netbanking":
        return {"bank": details.get("bank") or "HDFC", "acquirer_data": {"bank_transaction_id": _digits(7)}}
    return {"wallet": details.get("wallet") or "paytm", "acquirer_data": {"transaction_id": None}}


def should_decline(method: str, extra: dict[str, Any]) -> bool:
    """Whether Razorpay's test credentials say this attempt fails."""
    return (method == "upi" and extra.get("vpa") == FAILURE_VPA) or (
        method == "card" and extra.get("_card_number") == DECLINED_CARD
    )


def new_payment(
    order: Obj, method: str, details: dict[str, Any], amount: int, email: str, contact: str
) -> Obj:
    """A payment in state `created` for the order; the caller moves it to authorized or failed."""
    extra = method_details(method, details)
    payment: Obj = {
        "id": new_id("pay"),
        "entity": "payment",
        "amount": amount,
        "currency": order["currency"],
        "status": "created",
        "order_id": order["id"],
        "invoice_id": None,
        "international": False,
        "method": method,
        "amount_refunded": 0,
        "refund_status": None,
        "captured": False,
        "description": details.get("description"),
        "card_id": None,
        "bank": None,
        "wallet": None,
        "vpa": None,
        "email": email,
        "contact": contact,
        "notes": dict(order.get("notes") or {}),
        "fee": None,
        "tax": None,
        "error_code": None,
        "error_description": None,
        "error_source": None,
        "error_step": None,
        "error_reason": None,
        "acquirer_data": {},
        "created_at": now(),
    }
    payment.update(extra)
    return payment


def fee_and_tax(amount: int) -> tuple[int, int]:
    """Razorpay's standard 2% plus 18% GST on the fee; `fee` includes the tax, as in Razorpay's bodies."""
    base = amount * 2 // 100
    tax = base * 18 // 100
    return base + tax, tax


def webhook_view(payment: Obj) -> Obj:
    """The payment as webhook payloads carry it."""
    body = public(payment)
    body["base_amount"] = payment["amount"]
    body["amount_transferred"] = 0
    if "_card" in payment:
        body["card"] = dict(payment["_card"])
    return body
