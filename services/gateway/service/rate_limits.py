"""Rate limits shared by every gateway replica (the state lives in the gateway's PostgreSQL schema, never in one
process's memory; the arithmetic is ``billing_runtime/gcra.py``'s GCRA).

- staff writes: :func:`charge_staff_write`, ``staff-write:<actor>``, checked by access control after authorisation;
- sign-in failures: :class:`LoginThrottle`, per source address and per email, with exponential backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from billing_runtime.gcra import Decision, Rate


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
    """Refused for a rate limit: retry after ``decision.retry_after`` (the HTTP layer answers 429 with
    ``Retry-After`` and any ``headers`` given)."""

    def __init__(self, message: str, decision: Decision, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.decision = decision
        self.headers = headers or {}


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
