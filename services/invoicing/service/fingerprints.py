"""The digest of a request that an idempotency key is bound to, so a key reused with another body is caught."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(request: Any) -> str:
    """SHA-256 of the request's canonical JSON (sorted keys; decimals and dates as text)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
