"""Random credentials shown once and stored as a hash: project API keys (``bk_...``, ingest) and staff tokens
(``bt_...``, the gateway) share the shape, the hashing and the life cycle. Pure: no I/O.

A credential reads ``<kind>_<8-character prefix>_<32-character secret>``. The prefix finds the row (and tells
credentials apart in listings); the SHA-256 of the whole credential proves possession. About 190 bits of
randomness make a fast hash right: there is nothing to brute-force, and verification sits on hot paths.
People's passwords, which are guessable, get argon2id instead.
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

_ALPHABET = string.ascii_letters + string.digits


class CredentialState(enum.Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def state_of(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> CredentialState:
    if revoked_at is not None:
        return CredentialState.REVOKED
    if expires_at is not None and expires_at <= now:
        return CredentialState.EXPIRED
    return CredentialState.ACTIVE


@dataclass(frozen=True)
class Minted:
    """A new credential's secret (to show once) and what is stored of it."""

    secret: str
    prefix: str
    secret_hash: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret_hash: str, secret: str) -> bool:
    return hmac.compare_digest(secret_hash, hash_secret(secret))


class CredentialFormat:
    """Credentials of one kind (``bk``, ``bt``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._pattern = re.compile(rf"^{re.escape(kind)}_([A-Za-z0-9]{{8}})_([A-Za-z0-9]{{32}})$")

    def mint(self) -> Minted:
        prefix = f"{self.kind}_{_random(8)}"
        secret = f"{prefix}_{_random(32)}"
        return Minted(secret=secret, prefix=prefix, secret_hash=hash_secret(secret))

    def prefix_of(self, secret: str) -> str | None:
        """The stored prefix of a well-formed credential, or None if ``secret`` cannot be one of this kind."""
        match = self._pattern.fullmatch(secret)
        return f"{self.kind}_{match.group(1)}" if match else None
