"""People signing in: the password policy, browser sessions (with their CSRF token) and the TOTP second factor's
rules. Pure: hashing passwords (argon2id) and computing TOTP codes (RFC 6238) are the adapters' job
(``adapters/passwords.py``, ``adapters/totp.py``); this module decides what is acceptable.

A session id is 32 random bytes (URL-safe base64), sent as the ``billing_session`` cookie and stored only as its
SHA-256: a database reader cannot sign in with what is stored. The CSRF token is derived from the session id
(an HMAC of it), so the dashboard can ask for it again after a reload; its SHA-256 is stored beside the session's,
and a request's token is compared by hash in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_runtime.errors import InvalidArgument
from services.gateway.domain.credentials import User

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
MAX_USER_AGENT_LENGTH = 200
MAX_AUDITED_EMAIL_LENGTH = 64
# Last seen is written at most this often: a dashboard polling every few seconds would write a row per request.
TOUCH_EVERY = timedelta(minutes=1)
# RFC 6238 defaults (what authenticator apps assume): 30-second steps, 6 digits; a code of the step before or
# after is accepted too (clock skew, a code typed as it turned over).
TOTP_STEP_SECONDS = 30
TOTP_DRIFT_STEPS = 1
# Ended sessions are deleted at most this many rows per transaction: short transactions and few locks held, however
# large the backlog (a first prune after months of sign-ins).
PRUNE_BATCH = 1000
# TOTP secrets sealed again with the current key per transaction (after a key rotation, or the first start with a
# key when they were stored in plain text).
RESEAL_BATCH = 100


def validate_password(password: str, email: str, field: str = "password") -> str:
    """The password if the policy accepts it: 12 to 256 characters, and not the email address. Length is what
    matters (NIST SP 800-63B): no composition rules."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidArgument(f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters", field=field)
    if password.strip().lower() == email.strip().lower():
        raise InvalidArgument("must not be the email address", field=field)
    return password


def clip_email(email: str) -> str:
    """A tried email as the audit log records a failed sign-in: bounded, since anyone can send anything."""
    email = email.strip()
    return email if len(email) <= MAX_AUDITED_EMAIL_LENGTH else email[: MAX_AUDITED_EMAIL_LENGTH - 1] + "…"


def clip_user_agent(user_agent: str) -> str:
    return user_agent[:MAX_USER_AGENT_LENGTH]


def hash_value(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def csrf_token_of(session_id: str) -> str:
    """The session's CSRF token: derived from the session id, so only the holder of the cookie can know it."""
    digest = hmac.new(session_id.encode(), b"billing-csrf-v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(csrf_hash: str, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_hash, hash_value(presented))


@dataclass(frozen=True)
class SessionPolicy:
    """Idle timeout (sliding: each use moves it) and absolute lifetime (from sign-in, whatever the use)."""

    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    id_hash: str
    user_id: str
    csrf_hash: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None = None
    source_ip: str = ""
    user_agent: str = ""

    def active(self, now: datetime, policy: SessionPolicy) -> bool:
        return self.revoked_at is None and now < self.expires_at and now < self.last_seen_at + policy.idle

    def needs_touch(self, now: datetime) -> bool:
        return now - self.last_seen_at >= TOUCH_EVERY

    def idle_expires_at(self, policy: SessionPolicy) -> datetime:
        return min(self.expires_at, self.last_seen_at + policy.idle)

    def ended_at(self, policy: SessionPolicy) -> datetime:
        """When the session ended, or will end unless used: signed out, idle or past its lifetime, the earliest.
        Pruning deletes a session once this is older than the grace period."""
        ends = self.idle_expires_at(policy)
        return min(ends, self.revoked_at) if self.revoked_at is not None else ends


@dataclass(frozen=True)
class SignIn:
    """What signing in needs of a user beyond ``User``: the password's hash and the second factor's state."""

    user: User
    password_hash: str | None
    totp_secret: str | None
    totp_last_step: int | None


@dataclass(frozen=True)
class ResealedTotpSecrets:
    """One page of sealing TOTP secrets again with the current key (those stored in plain text, from before secrets
    were sealed, or under a previous key): how many were looked at, the last user looked at (where the next page
    starts), how many were sealed again, and the users whose secret no configured key opens."""

    scanned: int
    last_user_id: str | None
    resealed: int
    unreadable: tuple[str, ...] = ()


def totp_step_of(now: datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP_SECONDS


def accepted_totp_step(
    code: str, now: datetime, last_used_step: int | None, code_at: Callable[[int], str]
) -> int | None:
    """The time step ``code`` is valid for (the current one, or one either side), or None. A step already used,
    or one before it, is refused: a code cannot be replayed, nor an older one used after a newer one.
    ``code_at(step)`` computes the expected code (the adapter, from the secret)."""
    code = code.strip()
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    current = totp_step_of(now)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        if hmac.compare_digest(code_at(step), code):
            return step
    return None
