"""Quota checks and entitlements: may an organisation use more of a metric, and what does its plan grant.

A check reads two things, both from memory when it can: what the organisation is on at the time (the
``PlanDirectory``, invoicing's answer cached) and the metric's usage in that billing period (the ``QuotaBook``,
within its lag bound). The decision itself is the pure rule of ``domain/quota.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from billing_runtime.database import UnitOfWork
from billing_runtime.errors import InvalidArgument, NotFound
from services.metering.domain.entitlements import Entitlement, entitlements, validate_feature
from services.metering.domain.metric import validate_code
from services.metering.domain.plan_in_force import PlanDirectory, PlanInForce
from services.metering.domain.quota import QuotaDecision, decide, parse_quantity
from services.metering.domain.usage_totals import MAX_TOTAL_QUERIES, TotalQuery
from services.metering.service.quota_book import QuotaBook, Usage, UsageKey
from services.metering.service.usage_totals import get_usage_totals

MAX_CHECKS = 1_000


@dataclass(frozen=True, slots=True)
class CheckQuota:
    """One question as it arrives; ``at`` None means now."""

    organisation_id: str
    metric_code: str
    quantity: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class QuotaAnswer:
    organisation_id: str
    metric_code: str
    quantity: Decimal
    plan: PlanInForce
    used: Decimal
    usage_time: datetime
    decision: QuotaDecision
    # What the answer was computed from: the book's entry as it was read, and the first overage it knew.
    usage: Usage | None = None
    read_at: float = 0.0
    first_over: datetime | None = None


@dataclass(frozen=True, slots=True)
class Entitlements:
    plan: PlanInForce
    entitlements: list[Entitlement]


class QuotaChecks:
    """What the quota RPCs need, built once at start-up."""

    def __init__(self, plans: PlanDirectory, book: QuotaBook,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.plans = plans
        self.book = book
        self.now = now

    async def check(self, command: CheckQuota, prefix: str = "") -> QuotaAnswer:
        """Whether ``quantity`` more of the metric may be used now (in the period containing ``at``)."""
        if not command.organisation_id:
            raise InvalidArgument("is required", field=f"{prefix}organisation_id")
        validate_code(command.metric_code, f"{prefix}metric_code")
        quantity = parse_quantity(command.quantity, f"{prefix}quantity")
        now = self.now()
        at = command.at or now
        plan = await self._plan(command.organisation_id, at, prefix)
        key = UsageKey(command.organisation_id, command.metric_code, plan.period_start, plan.period_end)
        usage = self.book.fresh(key) or (await self.book.usage([key]))[0]
        return await self._answer(command, quantity, plan, key, usage, now)

    async def check_many(self, commands: Sequence[CheckQuota]) -> list[QuotaAnswer]:
        """Up to MAX_CHECKS checks in order, their usage gathered in one pass over the book (what is not fresh in
        memory is read in one batch)."""
        if len(commands) > MAX_CHECKS:
            raise InvalidArgument(f"at most {MAX_CHECKS} checks per call, got {len(commands)}", field="checks")
        now = self.now()
        prepared = []
        for index, command in enumerate(commands):
            prefix = f"checks[{index}]."
            if not command.organisation_id:
                raise InvalidArgument("is required", field=f"{prefix}organisation_id")
            validate_code(command.metric_code, f"{prefix}metric_code")
            quantity = parse_quantity(command.quantity, f"{prefix}quantity")
            plan = await self._plan(command.organisation_id, command.at or now, prefix)
            key = UsageKey(command.organisation_id, command.metric_code, plan.period_start, plan.period_end)
            prepared.append((command, quantity, plan, key))
        usages = await self.book.usage([key for _, _, _, key in prepared])
        return [await self._answer(command, quantity, plan, key, usage, now)
                for (command, quantity, plan, key), usage in zip(prepared, usages, strict=True)]

    async def _plan(self, organisation_id: str, at: datetime, prefix: str) -> PlanInForce:
        plan = await self.plans.plan_in_force(organisation_id, at)
        if plan is None:
            raise NotFound(f"no organisation with id {organisation_id[:64]!r}", field=f"{prefix}organisation_id")
        return plan

    async def _answer(self, command: CheckQuota, quantity: Decimal, plan: PlanInForce, key: UsageKey, usage,
                      now: datetime) -> QuotaAnswer:
        terms = plan.quota(command.metric_code) if plan.found else None
        first_over = usage.first_over
        if terms is None:
            usage.limit = None
        elif usage.limit != terms.limit or (first_over is None and usage.used > terms.limit):
            first_over = await self.book.first_over(key, usage, terms.limit)
        decision = decide(plan, command.metric_code, usage.used, quantity, now, first_over)
        return QuotaAnswer(command.organisation_id, command.metric_code, quantity, plan, usage.used,
                           usage.usage_time, decision, usage, usage.read_at, first_over)

    async def still_holds(self, answer: QuotaAnswer, now: datetime) -> bool:
        """Whether the same question asked at ``now`` (without a time) would get exactly ``answer`` again: the same
        plan in force, the same usage read (still within the lag bound), the same first overage, and nothing that
        depends on the clock (a grace end not passed; no grace clock that would start at ``now``). What lets a
        busy caller's repeated checks reuse one answer instead of deciding again."""
        decision = answer.decision
        if answer.usage is None or (decision.grace_end is not None and (answer.first_over is None
                                                                          or now >= decision.grace_end)):
            return False
        plan = await self.plans.plan_in_force(answer.organisation_id, now)
        if plan is None or (plan is not answer.plan and plan != answer.plan):
            return False
        entry = self.book.fresh(UsageKey(answer.organisation_id, answer.metric_code, plan.period_start,
                                         plan.period_end))
        return entry is answer.usage and entry.read_at == answer.read_at and entry.first_over == answer.first_over

    async def entitlements(self, organisation_id: str, feature: str) -> Entitlements:
        """The organisation's features now: its plan's, with its overrides over them; or only ``feature``."""
        if not organisation_id:
            raise InvalidArgument("is required", field="organisation_id")
        if feature:
            validate_feature(feature)
        plan = await self._plan(organisation_id, self.now(), "")
        return Entitlements(plan, entitlements(plan, feature))


class UsageTotalsReader:
    """The ``UsageReader`` over ``get_usage_totals``: the same totals GetUsageTotals answers (a billing period is
    aligned on the 15-minute grid, so every pair of a metric without filters is answered by one statement)."""

    def __init__(self, uow: Callable[[], UnitOfWork]) -> None:
        self._uow = uow

    async def read(self, keys: Sequence[UsageKey]) -> list[Decimal]:
        values: list[Decimal] = []
        for first in range(0, len(keys), MAX_TOTAL_QUERIES):
            chunk = keys[first:first + MAX_TOTAL_QUERIES]
            totals = await get_usage_totals(
                self._uow(), [TotalQuery(k.organisation_id, k.metric_code, k.period_start, k.period_end) for k in chunk]
            )
            values.extend(Decimal(total.value) for total in totals)
        return values
