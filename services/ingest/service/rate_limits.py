"""Per-project event rates at ingest: each project may send ``events_per_second`` with bursts of ``burst`` events
(its organisation's plan says how much, ``IngestRateLimit`` in the plan's terms; ingest's default applies to
plans that say nothing). Beyond it a batch is refused whole, RESOURCE_EXHAUSTED with a ``retry-after``
(HTTP 429 through the gateway); resending the same batch later is safe, as always.

The count is shared by every ingest replica: a GCRA timestamp per project in ``ingest.rate_limits``
(``billing_runtime/rate_limit_store.py``), moved by one per event. So that a stream of batches does not cost a
database round trip each, a process takes a *lease*: at least what the batch needs and up to ``lease_seconds``
of the rate at once, spent locally by the batches that follow; what is left of a lease after ``lease_ttl_seconds``
is dropped (it was counted, so replicas together never exceed the rate; a replica may refuse a little early).
After a refusal, the replica refuses the project's batches without asking until one event would fit again, so a
client hammering past its rate costs no database work.

A batch larger than the whole burst is admitted when the project is idle, and the project then waits out its
cost at the rate (``gcra.take``). Streams are paced: a batch waits up to ``stream_max_wait_seconds`` for room
before the stream is ended with RESOURCE_EXHAUSTED (the client resends what was not acknowledged).

The plan's rate is asked of invoicing and kept ``plan_ttl_seconds``; when invoicing cannot answer, the default
applies for a few seconds (logged and counted); when the shared state cannot be reached, the batch is admitted
uncounted (logged, ``billing_ingest_rate_leases_total{outcome="unavailable"}``): a rate is a bound, never a reason
to lose events.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from billing_runtime.errors import DomainError, ResourceExhausted
from billing_runtime.gcra import Grant, Rate
from billing_runtime.logging import get_logger
from services.ingest.domain.event_rate import EventRate
from services.ingest.domain.project import Project

log = get_logger(__name__)

RATE_LIMITED = Counter("billing_ingest_batches_rate_limited_total",
                       "Batches refused because their project was over its event rate.")
RATE_LEASES = Counter("billing_ingest_rate_leases_total",
                      "Shared rate-limit checks (leases taken from ingest.rate_limits), by outcome.", ["outcome"])
PLAN_RATE_FAILURES = Counter("billing_ingest_plan_rate_lookups_failed_total",
                             "Times invoicing could not say a plan's event rate (ingest's default applied).")

# After a failed lookup of a plan's rate, the default applies this long before invoicing is asked again.
_FAILED_LOOKUP_SECONDS = 5.0


class PlanRates(Protocol):
    """The event rate of the plan an organisation is on (``adapters/invoicing_organisations.py``): None when the
    plan sets none (or there is no subscription). Raises a DomainError when invoicing cannot answer."""

    async def ingest_rate(self, organisation_id: str) -> EventRate | None: ...


class SharedRates(Protocol):
    """The shared GCRA state (``billing_runtime.rate_limit_store.PostgresRateLimits`` over ``ingest``)."""

    async def take(self, key: str, rate: Rate, need: int, want: int | None = None) -> Grant: ...


@dataclass
class _Lease:
    tokens: int
    expires: float


@dataclass
class _PlanRate:
    rate: EventRate | None
    expires: float


class EventRateLimiter:
    """One per ingest process, shared by every batch."""

    def __init__(
        self,
        plans: PlanRates,
        shared: SharedRates,
        *,
        default: EventRate | None = None,
        lease_seconds: float = 0.05,
        lease_ttl_seconds: float = 1.0,
        plan_ttl_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self._plans = plans
        self._shared = shared
        self._default = default
        self._lease_seconds = lease_seconds
        self._lease_ttl = lease_ttl_seconds
        self._plan_ttl = plan_ttl_seconds
        self._clock = clock
        self._sleep = sleep
        self._leases: dict[str, _Lease] = {}
        self._rates: dict[str, _PlanRate] = {}
        # Per project, until when (clock seconds) not one unit is free: refusals answered without a shared check.
        self._blocked: dict[str, float] = {}

    async def admit(self, project: Project, events: int, max_wait_seconds: float = 0.0) -> None:
        """Count ``events`` against the project's rate, waiting up to ``max_wait_seconds`` for room; raises
        ResourceExhausted (with the seconds to wait) when there is none."""
        if events < 1:
            return
        rate = await self._rate_of(project.organisation_id)
        if rate is None:
            return
        deadline = self._clock() + max_wait_seconds
        while True:
            retry_after = await self._take(project.id, rate, events)
            if retry_after is None:
                return
            if self._clock() + retry_after > deadline:
                RATE_LIMITED.inc()
                raise ResourceExhausted(
                    f"rate limit: project {project.id} may send {rate.describe()}; retry in "
                    f"{math.ceil(retry_after)} s", retry_after_seconds=math.ceil(retry_after),
                )
            await self._sleep(retry_after)

    async def _take(self, project_id: str, rate: EventRate, events: int) -> float | None:
        """Spend from the local lease, topping it up from the shared state; None when admitted, else the seconds
        until ``events`` would fit."""
        lease = self._lease(project_id)
        if lease is not None and lease.tokens >= events:
            lease.tokens -= events
            return None
        blocked = self._blocked.get(project_id, 0.0) - self._clock()
        if blocked > 0:  # refused moments ago: no unit is free before then, so no need to ask
            return blocked + (events - 1) / rate.events_per_second
        held = 0
        if lease is not None:  # what is left of the lease goes to this batch (other batches may run meanwhile)
            held, lease.tokens = lease.tokens, 0
        need = events - held
        want = max(need, min(rate.burst, math.ceil(rate.events_per_second * self._lease_seconds)))
        try:
            grant = await self._shared.take(f"project:{project_id}", rate.gcra, need, want)
        except Exception:  # noqa: BLE001 - the count cannot be kept: admit, like quotas when metering is down
            RATE_LEASES.labels("unavailable").inc()
            log.warning("rate limit not counted: the shared state cannot be reached", project_id=project_id,
                        exc_info=True)
            return None
        RATE_LEASES.labels("granted" if grant.granted else "refused").inc()
        if grant.granted:
            self._keep(project_id, grant.granted - need)
            return None
        self._keep(project_id, held)  # not spent: back to the lease
        retry_after = grant.retry_after.total_seconds()
        if len(self._blocked) >= 100_000:
            self._blocked.clear()
        self._blocked[project_id] = self._clock() + max(0.0, retry_after - (need - 1) / rate.events_per_second)
        return retry_after

    def _lease(self, project_id: str) -> _Lease | None:
        lease = self._leases.get(project_id)
        if lease is not None and lease.expires <= self._clock():
            del self._leases[project_id]
            return None
        return lease

    def _keep(self, project_id: str, tokens: int) -> None:
        """Add to the project's lease (a new one lasts ``lease_ttl_seconds``)."""
        if tokens <= 0:
            return
        lease = self._lease(project_id)
        if lease is None:
            if len(self._leases) >= 100_000:
                self._leases.clear()
            self._leases[project_id] = _Lease(tokens, self._clock() + self._lease_ttl)
        else:
            lease.tokens += tokens

    async def _rate_of(self, organisation_id: str) -> EventRate | None:
        now = self._clock()
        cached = self._rates.get(organisation_id)
        if cached is not None and cached.expires > now:
            return cached.rate
        try:
            rate = await self._plans.ingest_rate(organisation_id)
            expires = now + self._plan_ttl
        except DomainError as error:
            PLAN_RATE_FAILURES.inc()
            log.warning("plan rate unknown; the default applies", organisation_id=organisation_id,
                        error=str(error))
            rate, expires = None, now + _FAILED_LOOKUP_SECONDS
        if len(self._rates) >= 100_000:
            self._rates.clear()
        self._rates[organisation_id] = _PlanRate(rate or self._default, expires)
        return rate or self._default
