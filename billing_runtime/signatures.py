"""HMAC-SHA256 signatures in lowercase hex, compared in constant time: how Razorpay signs webhooks and
Checkout callbacks. Pure Python; domain code may import it."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def sign(message: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def matches(message: bytes, signature: str, secrets: Iterable[str]) -> bool:
    """True when ``signature`` is the HMAC of ``message`` under any of ``secrets`` (a rotation keeps the old
    and the new secret valid for a while). Every secret is tried, so timing does not say which one matched."""
    presented = signature.strip().lower().encode()
    found = False
    for secret in secrets:
        if secret and hmac.compare_digest(sign(message, secret).encode(), presented):
            found = True
    return found
