"""Provider signatures over raw bytes, compared in constant time. Pure Python; domain code may import it.

- Razorpay: lowercase hex HMAC-SHA256 of the raw body (webhooks) or of ``order_id|payment_id`` (Checkout),
  keyed with the webhook secret or the API key secret.
- Stripe: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``, each ``v1`` a lowercase hex
  HMAC-SHA256 of ``"<t>.<raw body>"`` keyed with the endpoint secret (``whsec_...``, prefix included). While an
  endpoint secret is being rolled Stripe sends one ``v1`` per live secret; one matching any of our secrets is
  enough. The timestamp must be within the tolerance of our clock.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable

STRIPE_TOLERANCE_SECONDS = 300
# A Stripe-Signature header is a timestamp and a few 64-character signatures; anything far longer is not one.
STRIPE_HEADER_MAX = 1024


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


class StripeVerdict(enum.StrEnum):
    """What checking a Stripe-Signature header found; only ``VALID`` lets a body in."""

    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"
    NO_MATCH = "no_match"
    TOO_OLD = "too_old"
    TOO_NEW = "too_new"

    @property
    def detail(self) -> str:
        return _STRIPE_DETAILS[self]


_STRIPE_DETAILS = {
    StripeVerdict.VALID: "valid",
    StripeVerdict.MISSING: "Stripe-Signature is missing",
    StripeVerdict.MALFORMED: "Stripe-Signature is not t=<timestamp>,v1=<signature>",
    StripeVerdict.NO_MATCH: "Stripe-Signature does not match the body",
    StripeVerdict.TOO_OLD: "Stripe-Signature's timestamp is older than the tolerance",
    StripeVerdict.TOO_NEW: "Stripe-Signature's timestamp is further in the future than the tolerance",
}


def stripe_signature_header(body: bytes, secret: str, timestamp: int, *more_secrets: str) -> str:
    """The header Stripe would send for ``body`` at ``timestamp``: one ``v1`` per secret (several while an
    endpoint secret is being rolled). For the local Stripe and for tests."""
    signed = str(timestamp).encode() + b"." + body
    return ",".join([f"t={timestamp}", *(f"v1={sign(signed, s)}" for s in (secret, *more_secrets))])


def _parse_stripe_header(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 signatures) as Stripe's libraries read them: comma-separated ``key=value`` pairs, the
    first ``t`` the timestamp, every ``v1`` a candidate; other schemes (``v0``) are ignored. None: not a header."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            if not value.isdigit() or len(value) > 12:
                return None
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        return None
    return timestamp, candidates


def verify_stripe(body: bytes, header: str, secrets: Iterable[str], now: float,
                  tolerance: int = STRIPE_TOLERANCE_SECONDS) -> StripeVerdict:
    """Check ``header`` against the exact ``body`` bytes; ``secrets`` are the endpoint secrets we accept (the
    current one and, during our own rotation, the previous one). Every (secret, v1) pair is compared, so timing
    does not say which matched.

    Stripe's libraries refuse only timestamps older than the tolerance. A timestamp as far in the *future* is
    refused here too: a genuine sender's clock within five minutes of ours covers Stripe, and an open-ended
    future would let a captured body be replayed for as long as its forger chose."""
    if not header:
        return StripeVerdict.MISSING
    if len(header) > STRIPE_HEADER_MAX:
        return StripeVerdict.MALFORMED
    parsed = _parse_stripe_header(header)
    if parsed is None:
        return StripeVerdict.MALFORMED
    timestamp, candidates = parsed
    signed = str(timestamp).encode() + b"." + body
    found = False
    for secret in secrets:
        if not secret:
            continue
        expected = sign(signed, secret).encode()
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate.encode()):
                found = True
    if not found:
        return StripeVerdict.NO_MATCH
    if timestamp < now - tolerance:
        return StripeVerdict.TOO_OLD
    if timestamp > now + tolerance:
        return StripeVerdict.TOO_NEW
    return StripeVerdict.VALID
