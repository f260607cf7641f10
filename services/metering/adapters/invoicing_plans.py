"""Metering's ``PlanDirectory``: what an organisation is on, asked of invoicing (``GetPlanInForce``) and cached.

Quota checks and entitlements ask on every call, so answers are kept per organisation:

- an answer serves a time only while it holds then (``PlanInForce.holds_at``: inside its billing period and
  before a scheduled plan change) and for at most ``ttl`` seconds after it was fetched;
- invoicing announces every change of subscription or entitlement override on
  ``billing.invoicing.v1.subscription.updated``; a plain NATS core subscription on that subject drops the
  organisation's answers at once (JetStream publishes reach core subscribers; a message missed while
  disconnected is covered by the TTL);
- concurrent misses for one organisation share one call (single flight);
- when invoicing cannot be reached, an expired (or dropped) answer that still holds for the time is used and a
  warning logged; with none, ``Unavailable``.

It speaks only invoicing's published contract (``billing.invoicing.v1``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter

from billing.invoicing.v1 import events_pb2, invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import clients
from billing_runtime.errors import NotFound, Unavailable
from billing_runtime.logging import get_logger
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.metering.domain.plan_in_force import Cap, EntitlementValue, PlanInForce, QuotaTerms

log = get_logger(__name__)

SUBSCRIPTION_UPDATED = "billing.invoicing.v1.subscription.updated"
# Answers kept per organisation: one per billing period asked about (a batch may span a period's end).
_ENTRIES_PER_ORGANISATION = 4
# "No such organisation" is remembered briefly: an organisation created a moment later must not stay unknown.
_UNKNOWN_TTL_SECONDS = 2.0
_CAPS = {invoicing_pb2.QUOTA_CAP_HARD: Cap.HARD, invoicing_pb2.QUOTA_CAP_SOFT: Cap.SOFT}

PLAN_LOOKUPS = Counter(
    "billing_metering_plan_lookups_total",
    "Plans in force answered to quota checks and entitlements, by outcome: hit (cached), fetched (asked of "
    "invoicing), stale (invoicing unreachable, an expired answer used) or failed.",
    ["outcome"],
)
_HIT, _FETCHED, _STALE, _FAILED = (PLAN_LOOKUPS.labels(outcome) for outcome in ("hit", "fetched", "stale", "failed"))


@dataclass(slots=True)
class _Entry:
    plan: PlanInForce
    fetched_at: float  # monotonic; -inf once invalidated (kept as a fallback while invoicing is down)


class InvoicingPlans:
    """The ``PlanDirectory`` adapter: ``GetPlanInForce`` over gRPC, cached (see the module's docstring)."""

    def __init__(self, address: str, ttl_seconds: float = 30.0, *, timeout_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._channel = clients.channel(address)
        self._stub = invoicing_pb2_grpc.InvoicingServiceStub(self._channel)
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._entries: dict[str, list[_Entry]] = {}
        self._unknown: dict[str, float] = {}
        self._in_flight: dict[str, asyncio.Future[PlanInForce | None]] = {}
        # Bumped by every invalidation: an answer fetched across one is returned but not kept.
        self._generation: dict[str, int] = {}
        self._subscription: Subscription | None = None

    def cached(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        """The kept answer that serves ``at`` now, or None: no I/O, no await (the quota check's hot path)."""
        entries = self._entries.get(organisation_id)
        if entries:
            now = self._clock()
            for entry in entries:
                if now - entry.fetched_at < self._ttl and entry.plan.period_start <= at < entry.plan.valid_until:
                    return entry.plan
        return None

    async def plan_in_force(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        plan = self.cached(organisation_id, at)
        if plan is not None:
            _HIT.inc()
            return plan
        unknown_since = self._unknown.get(organisation_id)
        if unknown_since is not None and self._clock() - unknown_since < _UNKNOWN_TTL_SECONDS:
            return None
        flight = self._in_flight.get(organisation_id)
        if flight is not None:
            shared = await asyncio.shield(flight)
            if shared is None or shared.holds_at(at):
                return shared
        return await self._fetch(organisation_id, at)

    async def _fetch(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        future: asyncio.Future[PlanInForce | None] = asyncio.get_running_loop().create_future()
        self._in_flight[organisation_id] = future
        generation = self._generation.get(organisation_id, 0)
        try:
            plan = await self._ask(organisation_id, at)
        except Unavailable as error:
            stale = self._stale(organisation_id, at)
            if stale is None:
                future.set_exception(error)
                future.exception()  # marked retrieved: waiters see it raised, nobody else need
                _FAILED.inc()
                raise
            future.set_result(stale)
            _STALE.inc()
            log.warning("invoicing unreachable: using an expired plan in force", organisation_id=organisation_id,
                        plan_code=stale.plan_code, plan_version=stale.plan_version, error=str(error))
            return stale
        except BaseException as error:
            future.set_exception(error if isinstance(error, Exception) else Unavailable("cancelled"))
            future.exception()
            raise
        finally:
            if self._in_flight.get(organisation_id) is future:
                del self._in_flight[organisation_id]
        _FETCHED.inc()
        if self._generation.get(organisation_id, 0) == generation:
            self._keep(organisation_id, plan)
        future.set_result(plan)
        return plan

    async def _ask(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        request = invoicing_pb2.GetPlanInForceRequest(organisation_id=organisation_id, time=to_timestamp(at))
        try:
            response = await clients.call(self._stub.GetPlanInForce, request, timeout=self._timeout)
        except NotFound:
            return None
        return plan_from_pb(response)

    def _keep(self, organisation_id: str, plan: PlanInForce | None) -> None:
        if plan is None:
            self._unknown[organisation_id] = self._clock()
            self._entries.pop(organisation_id, None)
            return
        self._unknown.pop(organisation_id, None)
        entries = [e for e in self._entries.get(organisation_id, ())
                   if e.plan.period_start != plan.period_start and e.fetched_at > float("-inf")]
        entries.insert(0, _Entry(plan, self._clock()))
        self._entries[organisation_id] = entries[:_ENTRIES_PER_ORGANISATION]

    def _stale(self, organisation_id: str, at: datetime) -> PlanInForce | None:
        for entry in self._entries.get(organisation_id, ()):
            if entry.plan.holds_at(at):
                return entry.plan
        return None

    def invalidate(self, organisation_id: str) -> None:
        """Forget what the organisation is on: the next question asks invoicing (the old answer is kept only as a
        fallback for when invoicing cannot be reached)."""
        self._generation[organisation_id] = self._generation.get(organisation_id, 0) + 1
        self._unknown.pop(organisation_id, None)
        for entry in self._entries.get(organisation_id, ()):
            entry.fetched_at = float("-inf")

    async def watch(self, nats: NATS) -> None:
        """Drop an organisation's answers as soon as invoicing announces a change for it."""

        async def changed(message: Msg) -> None:
            try:
                event = events_pb2.SubscriptionUpdated.FromString(message.data)
            except Exception:  # noqa: BLE001 - a message we cannot read changes nothing; the TTL still holds
                log.warning("unreadable subscription.updated message", size=len(message.data))
                return
            if event.organisation_id:
                self.invalidate(event.organisation_id)

        self._subscription = await nats.subscribe(SUBSCRIPTION_UPDATED, cb=changed)

    async def close(self) -> None:
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection may be gone already; nothing left to stop
                pass
        await self._channel.close()


def entitlement_from_pb(value: invoicing_pb2.EntitlementValue) -> EntitlementValue | None:
    which = value.WhichOneof("value")
    if which == "bool_value":
        return value.bool_value
    if which == "number_value":
        return Decimal(value.number_value)
    if which == "string_value":
        return value.string_value
    return None


def _entitlements(values) -> dict[str, EntitlementValue]:
    converted = {key: entitlement_from_pb(value) for key, value in values.items()}
    return {key: value for key, value in converted.items() if value is not None}


def plan_from_pb(response: invoicing_pb2.GetPlanInForceResponse) -> PlanInForce:
    """invoicing's answer in metering's words."""
    period_start = from_timestamp(response.period_start)
    period_end = from_timestamp(response.period_end)
    if period_start is None or period_end is None:
        raise Unavailable("invoicing answered a plan in force without its billing period")
    phase_end = from_timestamp(response.phase_end) if response.HasField("phase_end") else None
    organisation = response.organisation
    common = dict(
        organisation_id=organisation.id, currency=organisation.billing_currency,
        timezone=organisation.timezone or "UTC", period_start=period_start, period_end=period_end,
        valid_until=min(phase_end, period_end) if phase_end else period_end,
        overrides=_entitlements(response.entitlement_overrides),
    )
    if not response.found:
        return PlanInForce(found=False, **common)
    version = response.plan_version
    terms = version.terms
    return PlanInForce(
        found=True,
        subscription_id=response.subscription_id,
        plan_code=version.plan_code,
        plan_version=version.version,
        plan_version_id=version.id,
        enforce_quotas_at_ingest=terms.enforce_quotas_at_ingest,
        quotas={
            quota.metric_code: QuotaTerms(
                metric_code=quota.metric_code,
                limit=Decimal(quota.limit),
                cap=_CAPS.get(quota.cap, Cap.HARD),
                grace_percent=Decimal(quota.grace_percent) if quota.grace_percent else Decimal(0),
                grace_hours=quota.grace_hours,
            )
            for quota in terms.quotas
        },
        entitlements=_entitlements(terms.entitlements),
        **common,
    )
