"""API keys: random, shown once, stored as a SHA-256 hash with a short visible prefix.

A key reads ``bk_<8-character prefix>_<32-character secret>`` (``billing_runtime.credentials``, shared with the
gateway's staff tokens). The prefix finds the row (and tells keys apart in listings); the hash of the whole key
proves possession. Keys carry ~190 bits of randomness, so a fast hash is right here: there is nothing to
brute-force, and verification sits on the ingest hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_runtime.credentials import CredentialFormat, Minted, hash_secret, secret_matches, state_of
from billing_runtime.credentials import CredentialState as ApiKeyState
from billing_runtime.errors import InvalidArgument

KEYS = CredentialFormat("bk")
KEY_PREFIX = KEYS.kind
MAX_NAME_LENGTH = 100
MintedKey = Minted

__all__ = ["ApiKey", "ApiKeyState", "MintedKey", "hash_secret", "matches", "mint_key", "prefix_of"]


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
        return state_of(self.revoked_at, self.expires_at, now)


def mint_key() -> MintedKey:
    return KEYS.mint()


def prefix_of(secret: str) -> str | None:
    """The stored prefix of a well-formed key, or None if ``secret`` cannot be one of ours."""
    return KEYS.prefix_of(secret)


def matches(key: ApiKey, secret: str) -> bool:
    return secret_matches(key.secret_hash, secret)


def validate_key_request(name: str, expires_at: datetime | None, now: datetime) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_NAME_LENGTH} characters", field="name")
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument("must be in the future", field="expire_time")
    return name
