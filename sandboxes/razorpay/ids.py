"""Identifiers and clocks shaped like Razorpay's: `<prefix>_` followed by 14 alphanumerics, unix seconds."""

from __future__ import annotations

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 14
PREFIXES = ("order", "pay", "rfnd", "plink", "acc", "evt", "card", "cust", "token")


def new_id(prefix: str) -> str:
    """A fresh id such as `order_EKwxwAgItmmXdp`."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(ID_LENGTH))


def looks_like(prefix: str, value: str) -> bool:
    """Whether `value` has the shape of an id of this kind (Razorpay answers differently for malformed ids)."""
    head, _, tail = value.partition("_")
    return head == prefix and len(tail) == ID_LENGTH and tail.isalnum()


def now() -> int:
    """Unix seconds, the only timestamp Razorpay's bodies carry."""
    return int(time.time())
