"""Quota enforcement at ingest: refuse the events of a batch that would take usage over a hard cap the plan
enforces at ingest; accept everything else (soft caps, quotas without enforcement, metrics without quota).

Metering answers (``CheckQuotas``); its answers are kept per (organisation, metric, billing period), so a stream
of batches costs one question per pair and TTL, and a batch whose pairs are all cached costs no call at all. An
answer older than ``ttl_seconds`` is refreshed in the background and still used meanwhile, for at most one more
TTL, so batches do not wait on metering; only a pair no usable answer covers waits. What this process admits is
added to the cached usage, so its own traffic is judged against the cap at once; other replicas' traffic is seen
once the answer is refreshed. Enforcement therefore lags metered usage by at most twice the TTL plus metering's
own bound (docs/events-api.md).

When metering cannot answer, ``fail_open`` (the default) accepts the batch unchecked, logs it and counts it in
``ingest_quota_checks_failed_total``: usage is revenue, and losing it because metering is briefly down is worse
than admitting some events over a cap. ``fail_open=False`` answers UNAVAILABLE instead, so the client retries.
After a failure, metering is not asked again for one TTL (every batch meanwhile gets the same decision).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from prometheus_client import Counter

from billing_runtime.errors import DomainError, Unavailable
from billing_runtime.logging import get_logger
from services.ingest.domain.quota import (
    UNMEASURED,
    Measure,
    MetricRule,
    MetricUsage,
    QuotaQuestion,
    QuotaReport,
    QuotaWindow,
)
from services.ingest.service.ports import QuotaSource

log = get_logger(__name__)

QUOTA_CALLS = Counter("ingest_quota_checks_total", "CheckQuotas calls ingest made to metering.")
QUOTA_FAILURES = Counter(
    "ingest_quota_checks_failed_total",
    "Batches whose quotas could not be checked because metering did not answer, by what was done.",
    ["decision"],
)
QUOTA_REFUSED = Counter("ingest_events_refused_for_quota_total", "Events refused because they went over a hard cap.")

# Rounds of questions for one batch: each round asks about the times no cached period covers yet. A batch spans
# at most the accepted past window (35 days), so two or three periods; beyond this, the rest goes unchecked.
_MAX_ROUNDS = 4


class QuotaEvent(Protocol):
    """What enforcement reads of an incoming event."""

    metric: str
    value: str

    @property
    def timestamp(self) -> _Seconds: ...

    @property
    def dimensions(self) -> Mapping[str, str]: ...


class _Seconds(Protocol):
    seconds: int


@dataclass
class Admission:
    """What enforcement decided for a batch: the events refused (by position, with the reason), the quotas
    that applied, and what was counted against the cached windows (given back if the batch is not written)."""

    refused: dict[int, str] = field(default_factory=dict)
    reports: list[QuotaReport] = field(default_factory=list)
    retry_after_seconds: int | None = None
    taken: list[tuple[QuotaWindow, Decimal]] = field(default_factory=list)
    at: float = 0.0  # when it was decided (Unix seconds)


@dataclass
class _CachedWindow:
    window: QuotaWindow
    refresh_at: float  # older than the TTL: refreshed in the background, still used meanwhile ...
    expires: float  # ... until twice the TTL, when it is no longer used


@dataclass
class _CachedRules:
    rules: dict[str, MetricRule]
    expires: float


class QuotaEnforcer:
    """The decision cache and the rule: one per ingest process, shared by every batch."""

    def __init__(
        self,
        source: QuotaSource,
        *,
        ttl_seconds: float = 0.5,
        metric_ttl_seconds: float = 30.0,
        usage_lag_seconds: float = 1.0,
        fail_open: bool = True,
        max_windows: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl_seconds
        self._usage_lag = usage_lag_seconds
        self._metric_ttl = metric_ttl_seconds
        self._fail_open = fail_open
        self._max_windows = max_windows
        self._clock = clock
        self._windows: dict[tuple[str, str], list[_CachedWindow]] = {}
        self._rules: dict[str, _CachedRules] = {}
        self._down_until = 0.0
        self._asking: dict[str, asyncio.Lock] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit_clean(
        self, organisation_id: str, metrics: Sequence[MetricUsage] | None, now: datetime
    ) -> Admission | None:
        """The fast path: decide from per-metric totals of a clean batch. An Admission when every event fits;
        None when some may not (or the totals cannot tell), so the events must be walked one by one."""
        if metrics is None:
            return None
        now_seconds = now.timestamp()
        rules = await self._metric_rules(organisation_id)
        if rules is None:
            return self._unchecked()
        wanted: dict[str, tuple[list[int], Decimal]] = {}
        for usage in metrics:
            amount = _total(rules.get(usage.metric, UNMEASURED), usage)
            wanted[usage.metric] = ([usage.min_seconds], amount if amount is not None else Decimal(usage.events))
        if not await self._resolve(organisation_id, wanted, now_seconds):
            return self._unchecked()
        admission = Admission(at=now_seconds)
        touched: list[QuotaWindow] = []
        for usage in metrics:
            window = self._find(organisation_id, usage.metric, usage.min_seconds)
            if window is None or not window.covers(usage.max_seconds):
                return self._undo(admission)  # no answer, or the batch spans two periods of this metric
            touched.append(window)
            rule = rules.get(usage.metric, UNMEASURED)
            if window.limit is None or rule.measure is Measure.UNMEASURED:
                continue
            if rule.measure is Measure.PEAK:
                if window.enforced and (usage.peak is None or not window.take(Decimal(usage.peak), Measure.PEAK,
                                                                                now_seconds)):
                    return self._undo(admission)
                continue
            amount = _total(rule, usage)
            if rule.filters or amount is None:
                if window.enforced:  # which events count, or what they add up to, needs each event
                    return self._undo(admission)
                continue  # nothing to refuse: only the reported remainder is a little high until the refresh
            if not window.take(amount, rule.measure, now_seconds):
                return self._undo(admission)
            admission.taken.append((window, amount))
        admission.reports = _reports(touched, now_seconds)
        return admission

    async def admit(self, organisation_id: str, events: Sequence[QuotaEvent], now: datetime) -> Admission:
        """Walk the events in order, per (metric, period) from the cached usage, refusing those that do not fit."""
        now_seconds = now.timestamp()
        rules = await self._metric_rules(organisation_id)
        if rules is None:
            return self._unchecked()
        wanted: dict[str, tuple[list[int], Decimal]] = {}
        for event in events:
            stamps, quantity = wanted.get(event.metric, ([], Decimal(0)))
            rule = rules.get(event.metric, UNMEASURED)
            amount = rule.amount(event.value) if rule.measure in (Measure.SUM, Measure.COUNT) else Decimal(1)
            wanted[event.metric] = (stamps, quantity + amount)
            stamps.append(event.timestamp.seconds)
        if not await self._resolve(organisation_id, wanted, now_seconds):
            return self._unchecked()
        admission = Admission(at=now_seconds)
        touched: dict[int, QuotaWindow] = {}
        refusing: dict[int, QuotaWindow] = {}
        for index, event in enumerate(events):
            window = self._find(organisation_id, event.metric, event.timestamp.seconds)
            if window is None:
                continue  # metering gave no period for this time (after every round): accepted unchecked
            touched[id(window)] = window
            if window.limit is None:
                continue
            rule = rules.get(event.metric, UNMEASURED)
            if rule.measure is Measure.UNMEASURED or not rule.counts(event.dimensions):
                continue
            amount = rule.amount(event.value)
            if window.take(amount, rule.measure, now_seconds):
                if rule.measure is not Measure.PEAK:
                    admission.taken.append((window, amount))
            else:
                admission.refused[index] = window.refusal(now_seconds)
                refusing[id(window)] = window
        if refusing:
            QUOTA_REFUSED.inc(len(admission.refused))
            admission.retry_after_seconds = max(w.retry_after(now_seconds) for w in refusing.values())
        admission.reports = _reports(list(touched.values()), now_seconds)
        return admission

    def release(self, admission: Admission | None) -> None:
        """Give back what an admission counted: its events were not written (the write failed)."""
        if admission is not None:
            self._undo(admission)

    # -- the cache ------------------------------------------------------------------------------------------

    def _find(self, organisation_id: str, metric: str, seconds: int) -> QuotaWindow | None:
        """The cached window covering the time, even one that has just expired: a batch is judged against the
        answers it resolved, even if they expire while it is walked."""
        entry = self._entry(organisation_id, metric, seconds, float("-inf"))
        return entry.window if entry is not None else None

    def _entry(self, organisation_id: str, metric: str, seconds: int, now: float) -> _CachedWindow | None:
        cached = self._windows.get((organisation_id, metric))
        if cached:
            for entry in cached:
                if entry.expires > now and entry.window.covers(seconds):
                    return entry
        return None

    def _store(self, organisation_id: str, window: QuotaWindow, fetched: float) -> None:
        key = (organisation_id, window.metric)
        kept = []
        for entry in self._windows.get(key, ()):
            if entry.window.period_start == window.period_start:
                window.carry_from(entry.window, self._usage_lag)
            elif entry.expires > fetched:
                kept.append(entry)
        kept.append(_CachedWindow(window, fetched + self._ttl, fetched + 2 * self._ttl))
        if key not in self._windows and len(self._windows) >= self._max_windows:
            self._windows.pop(next(iter(self._windows)))
        self._windows[key] = kept

    async def _resolve(
        self, organisation_id: str, wanted: dict[str, tuple[list[int], Decimal]], now_seconds: float
    ) -> bool:
        """Make sure a usable window covers every (metric, time); False when metering did not answer.

        A window older than the TTL is still used for one more TTL while a refresh runs in the background, so
        batches do not wait on metering; only a time no usable window covers waits for an answer. One question
        at a time per organisation: batches that miss together (a stream's batches in flight) wait for the first
        answer instead of each fetching its own window, which would count their admissions apart.
        """
        for _ in range(_MAX_ROUNDS):
            questions, due = self._questions(organisation_id, wanted)
            if due and organisation_id not in self._refreshing:
                self._refreshing.add(organisation_id)
                task = asyncio.create_task(self._refresh(organisation_id, due, now_seconds))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not questions:
                return True
            async with self._lock(organisation_id):
                questions, _ = self._questions(organisation_id, wanted)  # another batch may just have asked
                if not questions:
                    return True
                if not await self._ask(organisation_id, questions, now_seconds):
                    return False
        return True

    async def _refresh(self, organisation_id: str, questions: list[QuotaQuestion], now_seconds: float) -> None:
        try:
            async with self._lock(organisation_id):
                now = self._clock()
                still_due = [
                    q for q in questions
                    if (entry := self._entry(organisation_id, q.metric, q.at_seconds, now)) is None
                    or entry.refresh_at <= now
                ]
                if still_due:
                    await self._ask(organisation_id, still_due, now_seconds)
        finally:
            self._refreshing.discard(organisation_id)

    async def _ask(self, organisation_id: str, questions: list[QuotaQuestion], now_seconds: float) -> bool:
        if self._clock() < self._down_until:
            return False
        try:
            QUOTA_CALLS.inc()
            windows = await self._source.check(organisation_id, questions, now_seconds)
        except DomainError as error:
            self._down(error)
            return False
        fetched = self._clock()
        for question, window in zip(questions, windows, strict=True):
            if not window.covers(question.at_seconds):
                log.warning("quota answer does not cover the time asked", metric=question.metric,
                            asked=question.at_seconds, start=window.period_start, reset=window.reset)
                continue  # accepted unchecked rather than asked again and again
            self._store(organisation_id, window, fetched)
        return True

    def _lock(self, organisation_id: str) -> asyncio.Lock:
        if len(self._asking) > self._max_windows:
            self._asking = {k: v for k, v in self._asking.items() if v.locked()}
        return self._asking.setdefault(organisation_id, asyncio.Lock())

    def _questions(
        self, organisation_id: str, wanted: dict[str, tuple[list[int], Decimal]]
    ) -> tuple[list[QuotaQuestion], list[QuotaQuestion]]:
        """What must be asked before the batch can be judged, and what is due for a refresh in the background."""
        now = self._clock()
        questions, due = [], []
        for metric, (stamps, quantity) in wanted.items():
            missing = []
            for stamp in stamps:
                entry = self._entry(organisation_id, metric, stamp, now)
                if entry is None:
                    missing.append(stamp)
                elif entry.refresh_at <= now:
                    due.append(QuotaQuestion(metric, entry.window.period_start, quantity))
            if missing:
                questions.append(QuotaQuestion(metric, min(missing), quantity))
        return questions, due

    async def _metric_rules(self, organisation_id: str) -> dict[str, MetricRule] | None:
        cached = self._rules.get(organisation_id)
        now = self._clock()
        if cached is not None and cached.expires > now:
            return cached.rules
        if now < self._down_until:
            return None
        try:
            rules = await self._source.metric_rules(organisation_id)
        except DomainError as error:
            self._down(error)
            return None
        if len(self._rules) >= self._max_windows:
            self._rules.pop(next(iter(self._rules)))
        self._rules[organisation_id] = _CachedRules(rules, self._clock() + self._metric_ttl)
        return rules

    def _down(self, error: DomainError) -> None:
        self._down_until = self._clock() + self._ttl
        log.warning(
            "metering did not answer quota checks",
            error=str(error), decision="accept unchecked" if self._fail_open else "refuse (UNAVAILABLE)",
            retry_in_seconds=self._ttl,
        )

    def _unchecked(self) -> Admission:
        """Metering did not answer: accept unchecked (fail open) or refuse the batch for a retry."""
        if self._fail_open:
            QUOTA_FAILURES.labels("accepted").inc()
            return Admission()
        QUOTA_FAILURES.labels("refused").inc()
        raise Unavailable("quotas could not be checked (metering unavailable); retry the batch with the same ids")

    @staticmethod
    def _undo(admission: Admission) -> None:
        for window, amount in admission.taken:
            window.give_back(amount, admission.at)
        admission.taken.clear()


def _total(rule: MetricRule, usage: MetricUsage) -> Decimal | None:
    """What a clean batch adds to a SUM or COUNT metric; None when the scanner could not sum it exactly."""
    if rule.measure is Measure.COUNT:
        return Decimal(usage.events)
    if rule.measure is Measure.SUM and usage.total is not None:
        return Decimal(usage.total)
    return None


def _reports(windows: list[QuotaWindow], now_seconds: float) -> list[QuotaReport]:
    """One report per metric with a quota: the latest period's, as the client's current quota."""
    latest: dict[str, QuotaWindow] = {}
    for window in windows:
        if window.limit is not None:
            other = latest.get(window.metric)
            if other is None or window.period_start > other.period_start:
                latest[window.metric] = window
    return [report for window in latest.values() if (report := window.report(now_seconds)) is not None]
