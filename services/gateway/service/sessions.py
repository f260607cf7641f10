"""People signing in: email and password (and a TOTP code once they enabled one) make a browser session; the
session is checked on every request, ends at sign-out, after idling or at its absolute lifetime, and at once when
the user is disabled. Each use case is one transaction (password hashing, slow on purpose, runs outside them)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from billing_runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from services.gateway.domain import sessions as sess
from services.gateway.domain.access import Principal
from services.gateway.domain.credentials import User
from services.gateway.service.ports import LoginThrottle, Passwords, StaffTransaction, Totp

WRONG_CREDENTIALS = "email or password is wrong"
SESSION_NOT_VALID = "the session is not valid or has ended; sign in again"


class SignInRefused(Unauthenticated):
    """A refused sign-in: the client sees the message (the same for every wrong email or password); the audit
    log also gets ``reason`` and, when the email was known, ``user_id``."""

    def __init__(self, message: str, *, reason: str, user_id: str = "", field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.reason = reason
        self.user_id = user_id


class _NoLoginThrottle:
    """Lets every attempt through (the default until the shared rate limiter is wired)."""

    async def check(self, source: str, email: str) -> None:
        return None

    async def failed(self, source: str, email: str) -> None:
        return None

    async def succeeded(self, source: str, email: str) -> None:
        return None


NO_LOGIN_THROTTLE: LoginThrottle = _NoLoginThrottle()


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    totp_code: str | None = None
    source_ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class SignedIn:
    session_id: str  # the cookie's value: never stored
    csrf_token: str
    session: sess.Session
    user: User


async def login(
    uow: StaffTransaction, passwords: Passwords, totp: Totp, throttle: LoginThrottle, command: Login,
    policy: sess.SessionPolicy, now: datetime,
) -> SignedIn:
    email = command.email.strip().lower()
    await throttle.check(command.source_ip, email)
    async with uow:
        record = await uow.users.get_sign_in(email=email)
    # Always one argon2 verification, known email or not: the answer and its timing say nothing about which.
    password_ok = await passwords.verify(record.password_hash if record else None, command.password)
    if record is None or not password_ok or record.user.disabled_at is not None:
        await throttle.failed(command.source_ip, email)
        reason = ("unknown email" if record is None else "wrong password" if not password_ok else "user disabled")
        raise SignInRefused(WRONG_CREDENTIALS, reason=reason, user_id=record.user.id if record else "")
    user = record.user
    step: int | None = None
    if user.totp_enabled:
        if not command.totp_code:
            raise SignInRefused("totp_code is required", reason="totp_code missing", user_id=user.id,
                                field="totp_code")
        step = _totp_step(totp, record, command.totp_code, now)
        if step is None:
            await throttle.failed(command.source_ip, email)
            raise SignInRefused("totp_code is wrong or already used", reason="totp_code wrong", user_id=user.id,
                                field="totp_code")
    rehashed = (
        await passwords.hash(command.password)
        if record.password_hash and passwords.needs_rehash(record.password_hash) else None
    )
    session_id = sess.new_session_id()
    csrf_token = sess.csrf_token_of(session_id)
    session = sess.Session(
        id_hash=sess.hash_value(session_id), user_id=user.id, csrf_hash=sess.hash_value(csrf_token),
        created_at=now, expires_at=now + policy.lifetime, last_seen_at=now, source_ip=command.source_ip,
        user_agent=sess.clip_user_agent(command.user_agent),
    )
    async with uow:
        if step is not None and not await uow.users.use_totp_step(user.id, step):
            raise SignInRefused("totp_code is wrong or already used", reason="totp_code replayed", user_id=user.id,
                                field="totp_code")
        if rehashed is not None:
            await uow.users.set_password_hash(user.id, rehashed)
        await uow.sessions.add(session)
    await throttle.succeeded(command.source_ip, email)
    return SignedIn(session_id=session_id, csrf_token=csrf_token, session=session, user=user)


def _totp_step(totp: Totp, record: sess.SignIn, code: str, now: datetime) -> int | None:
    secret = record.totp_secret
    if not secret:
        return None
    return sess.accepted_totp_step(code, now, record.totp_last_step, lambda step: totp.code_at(secret, step))


async def authenticate_session(
    uow: StaffTransaction, session_id: str, policy: sess.SessionPolicy, now: datetime
) -> tuple[Principal, sess.Session, User]:
    """The principal a session cookie acts as, its session and user. Unknown, revoked, idle and expired sessions
    and sessions of disabled users are refused alike."""
    if not session_id or len(session_id) > 128:
        raise Unauthenticated(SESSION_NOT_VALID)
    async with uow:
        found = await uow.sessions.get_with_user(sess.hash_value(session_id))
        if found is None:
            raise Unauthenticated(SESSION_NOT_VALID)
        session, user = found
        if not session.active(now, policy) or user.disabled_at is not None:
            raise Unauthenticated(SESSION_NOT_VALID)
        if session.needs_touch(now):  # sliding idle timeout, written at most once a minute
            await uow.sessions.touch(session.id_hash, now)
            session = replace(session, last_seen_at=now)
    principal = Principal(actor=f"user:{user.id}", role=user.role, user_id=user.id, credential="session",
                          organisation_id=user.organisation_id or "")
    return principal, session, user


async def logout(uow: StaffTransaction, session: sess.Session, now: datetime) -> None:
    async with uow:
        await uow.sessions.revoke(session.id_hash, now)


async def prune_sessions(
    uow: StaffTransaction, policy: sess.SessionPolicy, grace: timedelta, now: datetime, batch: int = sess.PRUNE_BATCH
) -> int:
    """Delete the sessions that ended more than ``grace`` before ``now``, ``batch`` rows per transaction until
    none is left; returns how many. Safe on every replica at once: a delete is idempotent, and rows one replica
    holds are left to the others."""
    ended_before = now - grace
    pruned = 0
    while True:
        async with uow:
            deleted = await uow.sessions.prune(ended_before, policy.idle, batch)
        pruned += deleted
        if deleted < batch:
            return pruned


async def reseal_totp_secrets(uow: StaffTransaction, batch: int = sess.RESEAL_BATCH) -> tuple[int, tuple[str, ...]]:
    """Seal every TOTP secret stored in plain text (from before secrets were sealed) or under a previous key with
    the current key, a page of users per transaction; returns how many, and the users whose secret no configured
    key opens (left as they are). Safe on every replica at once: a secret is replaced only if still as read."""
    after: str | None = None
    resealed = 0
    unreadable: tuple[str, ...] = ()
    while True:
        async with uow:
            page = await uow.users.reseal_totp_secrets(after=after, limit=batch)
        resealed += page.resealed
        unreadable += page.unreadable
        if page.scanned < batch:
            return resealed, unreadable
        after = page.last_user_id


@dataclass(frozen=True)
class ChangePassword:
    user_id: str
    current_password: str
    new_password: str
    keep_session: str  # the id hash of the session asking: it stays signed in, every other one ends
    source_ip: str = ""


async def change_password(
    uow: StaffTransaction, passwords: Passwords, throttle: LoginThrottle, command: ChangePassword, now: datetime
) -> int:
    """Set a new password after checking the current one; returns how many other sessions were ended."""
    async with uow:
        record = await uow.users.get_sign_in(user_id=command.user_id)
    if record is None:
        raise Unauthenticated(SESSION_NOT_VALID)
    sess.validate_password(command.new_password, record.user.email, field="new_password")
    await throttle.check(command.source_ip, record.user.email)
    if not await passwords.verify(record.password_hash, command.current_password):
        await throttle.failed(command.source_ip, record.user.email)
        raise PermissionDenied("current_password is wrong", field="current_password")
    new_hash = await passwords.hash(command.new_password)
    async with uow:
        await uow.users.set_password_hash(command.user_id, new_hash)
        return await uow.sessions.revoke_all(command.user_id, now, keep=command.keep_session)


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    uri: str


async def begin_totp(uow: StaffTransaction, totp: Totp, user_id: str) -> TotpEnrolment:
    """A new secret for the user's authenticator app, pending until a code from it is confirmed."""
    secret = totp.new_secret()
    async with uow:
        record = await uow.users.get_sign_in(user_id=user_id)
        if record is None:
            raise Unauthenticated(SESSION_NOT_VALID)
        if record.user.totp_enabled:
            raise FailedPrecondition("TOTP is already enabled; disable it first to enrol a new authenticator")
        await uow.users.set_totp(user_id, secret=secret, enabled=False, last_step=None)
    return TotpEnrolment(secret=secret, uri=totp.uri(secret, record.user.email))


async def confirm_totp(uow: StaffTransaction, totp: Totp, user_id: str, code: str, now: datetime) -> None:
    async with uow:
        record = await uow.users.get_sign_in(user_id=user_id)
        if record is None:
            raise Unauthenticated(SESSION_NOT_VALID)
        if record.user.totp_enabled:
            raise FailedPrecondition("TOTP is already enabled")
        if not record.totp_secret:
            raise FailedPrecondition("no TOTP enrolment is pending: start with POST /api/v1/auth/totp")
        step = _totp_step(totp, record, code, now)
        if step is None:
            raise InvalidArgument("is wrong or already used", field="code")
        await uow.users.set_totp(user_id, secret=record.totp_secret, enabled=True, last_step=step)


async def disable_totp(uow: StaffTransaction, totp: Totp, user_id: str, code: str, now: datetime) -> None:
    """Turn the second factor off, proving the authenticator is at hand (a stolen session alone cannot)."""
    async with uow:
        record = await uow.users.get_sign_in(user_id=user_id)
        if record is None:
            raise Unauthenticated(SESSION_NOT_VALID)
        if not record.user.totp_enabled:
            raise FailedPrecondition("TOTP is not enabled")
        step = _totp_step(totp, record, code, now)
        if step is None or not await uow.users.use_totp_step(user_id, step):
            raise InvalidArgument("is wrong or already used", field="code")
        await uow.users.set_totp(user_id, secret=None, enabled=False, last_step=None)
