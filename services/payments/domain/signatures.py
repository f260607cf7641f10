"""Razorpay Checkout's signature: lowercase hex HMAC-SHA256 of "<order id>|<payment id>", keyed with the API
key secret, where the order id is the one WE stored for the invoice (never the one the browser sends back).
(Webhook signatures are checked at the gateway, over the raw body.)"""

from __future__ import annotations

from billing_runtime.signatures import matches


def checkout_matches(order_id: str, payment_id: str, signature: str, key_secret: str) -> bool:
    return matches(f"{order_id}|{payment_id}".encode(), signature, [key_secret])
