"""Identifiers and clocks shaped like Razorpay's: `<prefix>_` followed by 14 alphanumerics, unix seconds."""

from __future__ import annotations

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 14
PREFIXES = ("order", "pay", "rfnd", "plink", "acc", "evt", "card", "cust", "token", "notif")


def new_id(prefix: str) -> str:
    """A fresh id such as `order_EKwxwAgItmmXdp`."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(ID_LENGTH))


def looks_like(prefix: str, value: str) -> bool:
    """Whether `value` has the shape of an id of this kind (Razorpay answers differently for malformed ids)."""
    head, _, tail = value.partition("_")
    return head == prefix and len(tail) == ID_LENGTH and tail.isalnum()


# How far the sandbox's clock runs ahead of the machine's (seconds). Tests move it forward through the control API
# (POST /_sandbox/clock/advance) to make a day pass without sleeping; one value per process, reset when a sandbox
# starts or is reset.
_offset = 0


def now() -> int:
    """Unix seconds, the only timestamp Razorpay's bodies carry (on the sandbox's movable clock)."""
    return int(time.time()) + _offset


def advance(seconds: int) -> int:
    """Move the sandbox clock forward (never back); returns the offset now in force."""
    global _offset
    if seconds < 0:
        raise ValueError("the sandbox clock only moves forward")
    _offset += seconds
    return _offset


def reset_clock() -> None:
    global _offset
    _offset = 0
