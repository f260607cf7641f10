"""API keys: random, shown once, stored as a SHA-256 hash with a short visible prefix.

A key reads ``bk_<8-character prefix>_<32-character secret>``. The prefix finds the row (and tells keys
apart in listings); the hash of the whole key proves possession. Keys carry ~190 bits of randomness, so a
fast hash is right here: there is nothing to brute-force, and verification sits on the ingest hot path.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from billing_runtime.errors import InvalidArgument

KEY_PREFIX = "bk"
_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"^bk_([A-Za-z0-9]{8})_([A-Za-z0-9]{32})$")
MAX_NAME_LENGTH = 100


class ApiKeyState(enum.Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class ApiKey:
    id: str
    project_id: str
    name: str
    prefix: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> ApiKeyState:
        if self.revoked_at is not None:
            return ApiKeyState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return ApiKeyState.EXPIRED
        return ApiKeyState.ACTIVE


@dataclass(frozen=True)
class MintedKey:
    """A new key's secret (to show once) and what is stored of it."""

    secret: str
    prefix: str
    secret_hash: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_key() -> MintedKey:
    prefix = _random(8)
    secret = f"{KEY_PREFIX}_{prefix}_{_random(32)}"
    return MintedKey(secret=secret, prefix=f"{KEY_PREFIX}_{prefix}", secret_hash=hash_secret(secret))


def prefix_of(secret: str) -> str | None:
    """The stored prefix of a well-formed key, or None if ``secret`` cannot be one of ours."""
    match = _KEY.fullmatch(secret)
    return f"{KEY_PREFIX}_{match.group(1)}" if match else None


def matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, hash_secret(secret))


def validate_key_request(name: str, expires_at: datetime | None, now: datetime) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_NAME_LENGTH} characters", field="name")
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument("must be in the future", field="expire_time")
    return name
