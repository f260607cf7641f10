"""Rate limits shared by every gateway replica (the state lives in the gateway's PostgreSQL schema, never in one
process's memory; the arithmetic is ``billing_runtime/gcra.py``'s GCRA).

- staff writes: :func:`enforce_staff_write`, ``staff-write:<actor>``, checked after authorisation by the REST API's
  access control and the gRPC API's admission alike (one budget per credential, whichever API it writes through);
- sign-in failures: :class:`LoginThrottle`, per source address and per email, with exponential backoff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from billing_runtime.errors import Unavailable
from billing_runtime.gcra import Decision, Rate
from billing_runtime.logging import get_logger
from billing_runtime.ratelimit import QuotaField, ratelimit_fields

log = get_logger(__name__)

# The staff write limit's name in the RateLimit-Policy and RateLimit fields.
STAFF_WRITES = "staff-writes"


class RateLimits(Protocol):
    """The shared store (``billing_runtime/rate_limit_store.py`` over PostgreSQL; an in-memory fake in unit tests)."""

    async def check(self, key: str, rate: Rate) -> Decision:
        """Admit one request for ``key`` or not, atomically across every replica."""
        ...

    async def peek(self, key: str, rate: Rate) -> Decision:
        """Whether one more would be admitted now; changes nothing."""
        ...

    async def fail(self, key: str, rate: Rate, max_backoff: timedelta) -> Decision:
        """Charge a failure (``domain.ratelimit.fail``); the decision says whether the next attempt may be made."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the key (its budget is whole again)."""
        ...


def staff_write_key(actor: str) -> str:
    return f"staff-write:{actor}"


def staff_write_rate(per_minute: int) -> Rate:
    """``per_minute`` writes at once from idle, then one every ``60 / per_minute`` seconds (GCRA)."""
    return Rate(per_minute, timedelta(minutes=1))


async def charge_staff_write(limits: RateLimits, actor: str, per_minute: int) -> Decision | None:
    """Charge one write of the credential acting as ``actor``; None when the limit is off (``per_minute`` 0)."""
    if per_minute <= 0:
        return None
    return await limits.check(staff_write_key(actor), staff_write_rate(per_minute))


class RateLimited(Exception):
    """Refused for a rate limit: retry after ``decision.retry_after``. The REST API answers 429 with
    ``Retry-After``, the gRPC API RESOURCE_EXHAUSTED with ``retry-after`` in the trailing metadata; both add the
    IETF ``RateLimit-Policy`` / ``RateLimit`` values in ``fields`` when there are any."""

    def __init__(self, message: str, decision: Decision, fields: tuple[str, str] = ("", "")) -> None:
        super().__init__(message)
        self.decision = decision
        self.fields = fields


def limit_fields(name: str, rate: Rate, decision: Decision) -> tuple[str, str]:
    """(``RateLimit-Policy``, ``RateLimit``) of one limit after ``decision``."""
    return ratelimit_fields([QuotaField(
        name, rate.limit, math.ceil(rate.period.total_seconds()), decision.remaining,
        math.ceil(decision.reset.total_seconds()),
    )])


async def enforce_staff_write(limits: RateLimits | None, actor: str, per_minute: int) -> None:
    """Charge a staff write to its credential (``staff-write:<actor>``); RateLimited over the limit (nothing is
    done). Without a store (unit tests) or with the limit off (``per_minute`` 0) every write passes. If the store
    cannot be reached the write is refused too (Unavailable): it could not be audited either."""
    if limits is None or per_minute <= 0:
        return
    try:
        decision = await charge_staff_write(limits, actor, per_minute)
    except Exception as error:  # noqa: BLE001 - fail closed: no write the limit (and the audit log) cannot see
        log.warning("rate limit store unreachable; staff write refused", error=repr(error))
        raise Unavailable("the gateway's database cannot be reached; retry shortly") from None
    if decision is not None and not decision.allowed:
        raise RateLimited(
            f"too many writes by this credential: at most {per_minute} a minute; retry in "
            f"{decision.retry_after_seconds} s", decision,
            fields=limit_fields(STAFF_WRITES, staff_write_rate(per_minute), decision),
        )


@dataclass(frozen=True)
class LoginPolicy:
    failures: int = 5
    period: timedelta = timedelta(minutes=15)
    max_backoff: timedelta = timedelta(hours=1)

    @property
    def rate(self) -> Rate:
        return Rate(self.failures, self.period)


class SharedLoginThrottle:
    """Failed sign-ins, counted per source address and per email (a distributed guess at one account is stopped
    too): ``failures`` per ``period`` (5 per 15 minutes), then locked out for one interval (3 minutes), doubling
    with every further failure up to ``max_backoff``. A success forgets the email's failures (not the source's:
    one valid account must not launder a guessing address).

    The sign-in route calls :meth:`check` before it verifies anything (raises :class:`RateLimited`), then
    :meth:`failed` or :meth:`succeeded`. Emails are compared lower-cased."""

    def __init__(self, limits: RateLimits, policy: LoginPolicy | None = None) -> None:
        self._limits = limits
        self._policy = policy or LoginPolicy()

    @staticmethod
    def _keys(source: str, email: str) -> tuple[str, str]:
        return f"login-source:{source}", f"login-email:{email.strip().lower()}"

    async def check(self, source: str, email: str) -> None:
        rate = self._policy.rate
        refused = [d for d in [await self._limits.peek(key, rate) for key in self._keys(source, email)]
                   if not d.allowed]
        if refused:
            worst = max(refused, key=lambda d: d.retry_after)
            raise RateLimited("too many failed sign-ins; try again later", worst)

    async def failed(self, source: str, email: str) -> None:
        for key in self._keys(source, email):
            await self._limits.fail(key, self._policy.rate, self._policy.max_backoff)

    async def succeeded(self, source: str, email: str) -> None:
        await self._limits.reset(self._keys(source, email)[1])
