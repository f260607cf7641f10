"""Accepting usage events: authenticate the key, screen each event, make the accepted ones durable.

"Accepted" means durable in JetStream: the outcome is computed only after the event log acknowledged the write,
and a failed write fails the whole call (UNAVAILABLE) so the client retries with the same event ids. Nothing here
counts events; metering does, once per (project, event_id), which is what makes every retry safe.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from prometheus_client import Counter

from billing_runtime.errors import InvalidArgument, PermissionDenied
from billing_runtime.ids import new_ulid
from services.ingest.domain import event as rules
from services.ingest.domain.api_key import ApiKey, ApiKeyState
from services.ingest.domain.event import ACCEPTED, DUPLICATE, REJECTED, BatchOutcome, EventResult
from services.ingest.domain.project import Project
from services.ingest.domain.quota import QUOTA_FIELD, MetricUsage
from services.ingest.service.api_keys import verify_api_key
from services.ingest.service.ports import IngestTransaction
from services.ingest.service.quotas import Admission, QuotaEnforcer

EVENTS = Counter("ingest_events_total", "Events received, by outcome.", ["outcome"])
REJECTED_BY_REASON = Counter(
    "billing_ingest_events_rejected_total",
    "Events rejected, by reason: the field that failed its rule (event_id, metric, value, timestamp, dimensions, "
    "unit), or quota (over a hard cap).",
    ["reason"],
)

class Timestamp(Protocol):
    seconds: int
    nanos: int

    def GetCurrentTime(self) -> None: ...  # noqa: N802 - protobuf's name


class IncomingEvent(Protocol):
    """An event as it arrives (the protobuf ``Event``); screening may set its id and timestamp in place."""

    event_id: str
    metric: str
    value: str
    unit: str

    @property
    def timestamp(self) -> Timestamp: ...

    @property
    def dimensions(self) -> MutableMapping[str, str]: ...

    def HasField(self, name: str) -> bool: ...  # noqa: N802 - protobuf's name


class EventLog(Protocol):
    """Where accepted events become durable (JetStream)."""

    async def append(
        self, organisation_id: str, project_id: str, events: Sequence[IncomingEvent]
    ) -> list[tuple[int, int, bool]]:
        """Write the events; returns (start, end, duplicate) spans covering them, duplicate when the log had
        already stored that exact span (an identical batch resent)."""
        ...

    def fits(self, encoded_size: int) -> bool:
        """Whether a batch of this many encoded bytes goes out as one message."""
        ...

    async def append_encoded(self, organisation_id: str, project_id: str, encoded: bytes, joined_ids: bytes) -> bool:
        """Write a clean batch exactly as the client encoded it; True if it was a duplicate of one stored."""
        ...


class Admitter(Protocol):
    """Counts a batch against its project's event rate (``service/rate_limits.EventRateLimiter``)."""

    async def admit(self, project: Project, events: int, max_wait_seconds: float = 0.0) -> None: ...


class CleanBatch(Protocol):
    events: int
    sequence: int
    joined_ids: bytes
    # Per distinct metric code, what the batch adds up to (None: too many codes to summarise).
    metrics: Sequence[MetricUsage] | None


class Scanner(Protocol):
    """Tells, without building Python objects, whether every event of an encoded batch is clean."""

    def clean(self, data: bytes, now: datetime, limits: rules.EventLimits) -> CleanBatch | None: ...


class EncodedBatch(Protocol):
    """A parsed batch message: StreamEventsRequest, or IngestEventsRequest (whose sequence is always 0)."""

    @property
    def events(self) -> Sequence[IncomingEvent]: ...


@dataclass
class Screening:
    """A batch after the rules: the events to write (with their positions) and what was said about the rest."""

    events: list[IncomingEvent] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    generated: set[int] = field(default_factory=set)


def screen(
    events: Sequence[IncomingEvent], now: datetime, limits: rules.EventLimits, new_event_id: Callable[[], str]
) -> Screening:
    """Apply every rule to every event. A missing id is generated; a missing timestamp becomes ``now``.

    The loop is ingest's hot path, so checks that cannot fail for a value seen before in the batch (a metric
    code) or for the commonest shape (an integer value) take a short cut.
    """
    out = Screening()
    outcome = out.outcome
    now_seconds = now.timestamp()
    seen: set[str] = set()
    good_metrics: set[str] = set()
    for index, event in enumerate(events):
        event_id = event.event_id
        rejection = None
        generated = not event_id
        if generated:
            event_id = event.event_id = new_event_id()
        else:
            rejection = rules.check_event_id(event_id)
        if rejection is None and event.metric not in good_metrics:
            rejection = rules.check_metric(event.metric)
            if rejection is None:
                good_metrics.add(event.metric)
        if rejection is None:
            value = event.value
            if not (value.isdigit() and len(value) < 30 and value.isascii()):
                rejection = rules.check_value(value)
        if rejection is None:
            if event.HasField("timestamp"):
                stamp = event.timestamp
                if not 0 <= stamp.nanos < 1_000_000_000:
                    rejection = rules.Rejection("timestamp", "nanos must be from 0 to 999,999,999")
                else:
                    rejection = rules.check_timestamp(stamp.seconds, now_seconds, limits)
            else:
                event.timestamp.FromDatetime(now)  # type: ignore[attr-defined]
        if rejection is None and event.dimensions:
            rejection = rules.check_dimensions(event.dimensions, limits)
        if rejection is None and event.unit:
            rejection = rules.check_unit(event.unit)
        if rejection is not None:
            outcome.rejected += 1
            REJECTED_BY_REASON.labels(rejection.field).inc()
            # A rejection never echoes unbounded input: an over-long id comes back cut to the longest valid one.
            echoed = event_id[:rules.MAX_EVENT_ID_LENGTH]
            outcome.results.append(EventResult(index, echoed, REJECTED, rejection.reason, rejection.field, generated))
        elif event_id in seen:
            outcome.duplicates += 1
            outcome.results.append(EventResult(index, event_id, DUPLICATE, "repeats an earlier event in this batch"))
        else:
            seen.add(event_id)
            out.events.append(event)
            out.positions.append(index)
            if generated:
                out.generated.add(index)
    return out


async def ingest_batch(
    log: EventLog,
    project: Project,
    events: Sequence[IncomingEvent],
    now: datetime,
    limits: rules.EventLimits,
    quotas: QuotaEnforcer | None = None,
) -> BatchOutcome:
    """Screen a batch, refuse what goes over an enforced hard cap, and make the rest durable; returns the outcome
    to report. Refused events are never written."""
    too_big = rules.check_batch_size(len(events), limits)
    if too_big is not None:
        raise InvalidArgument(too_big, field="events")
    screening = screen(events, now, limits, new_event_id)
    outcome = screening.outcome
    admission = None
    if quotas is not None and screening.events:
        admission = await quotas.admit(project.organisation_id, screening.events, now)
        if admission.refused:
            _refuse(screening, admission)
    if screening.events:
        try:
            spans = await log.append(project.organisation_id, project.id, screening.events)
        except BaseException:
            if quotas is not None:
                quotas.release(admission)
            raise
        for start, end, duplicate in spans:
            if duplicate:
                outcome.duplicates += end - start
                for offset in range(start, end):
                    outcome.results.append(
                        EventResult(
                            screening.positions[offset], screening.events[offset].event_id, DUPLICATE,
                            "already received in an identical batch",
                        )
                    )
            else:
                outcome.accepted += end - start
                outcome.results.extend(
                    EventResult(screening.positions[offset], screening.events[offset].event_id, ACCEPTED,
                                generated=True)
                    for offset in range(start, end)
                    if screening.positions[offset] in screening.generated
                )
    outcome.results.sort(key=lambda result: result.index)
    if admission is not None:
        outcome.quotas = admission.reports
        outcome.retry_after_seconds = admission.retry_after_seconds
    EVENTS.labels(ACCEPTED).inc(outcome.accepted)
    EVENTS.labels(DUPLICATE).inc(outcome.duplicates)
    EVENTS.labels(REJECTED).inc(outcome.rejected)
    return outcome


def _refuse(screening: Screening, admission: Admission) -> None:
    """Take the events refused for a quota out of the batch to write, reporting each as rejected."""
    keep_events: list[IncomingEvent] = []
    keep_positions: list[int] = []
    outcome = screening.outcome
    for offset, (event, position) in enumerate(zip(screening.events, screening.positions, strict=True)):
        reason = admission.refused.get(offset)
        if reason is None:
            keep_events.append(event)
            keep_positions.append(position)
        else:
            outcome.results.append(
                EventResult(position, event.event_id, REJECTED, reason, QUOTA_FIELD, position in screening.generated)
            )
    outcome.rejected += len(admission.refused)
    REJECTED_BY_REASON.labels("quota").inc(len(admission.refused))
    outcome.quota_refused = len(admission.refused)
    screening.events, screening.positions = keep_events, keep_positions


async def ingest_encoded(
    log: EventLog,
    scanner: Scanner | None,
    project: Project,
    data: bytes,
    parse: Callable[[bytes], EncodedBatch],
    now: datetime,
    limits: rules.EventLimits,
    quotas: QuotaEnforcer | None = None,
    rates: Admitter | None = None,
    max_wait_seconds: float = 0.0,
) -> tuple[int, BatchOutcome]:
    """A batch as it came off the wire; returns its sequence number and outcome.

    With ``rates``, the batch's events are first counted against its project's event rate (waiting up to
    ``max_wait_seconds`` for room); over it, ResourceExhausted and nothing is written.

    A clean batch (the scanner says every event passes, with its own id and timestamp, none repeated) is written
    as the client encoded it: no Python object per event. Anything else is parsed and screened event by event.
    With quotas enforced, a clean batch stays on that path when the scanner's per-metric totals fit under every
    cached cap; if some may not, it is parsed and its events are judged one by one.
    """
    clean = scanner.clean(data, now, limits) if scanner is not None else None
    batch = None
    if rates is not None:
        if clean is None:
            batch = parse(data)
            count = len(batch.events)
        else:
            count = clean.events
        if rules.check_batch_size(count, limits) is None:  # an oversized batch is refused below, uncharged
            await rates.admit(project, count, max_wait_seconds)
    admission = None
    if clean is not None and clean.events and quotas is not None and log.fits(len(data)):
        admission = await quotas.admit_clean(project.organisation_id, clean.metrics, now)
        if admission is None:
            clean = None
    if clean is None or not log.fits(len(data)):
        batch = batch or parse(data)
        return getattr(batch, "sequence", 0), await ingest_batch(log, project, batch.events, now, limits, quotas)
    if clean.events == 0:
        return clean.sequence, BatchOutcome()
    try:
        duplicate = await log.append_encoded(project.organisation_id, project.id, data, clean.joined_ids)
    except BaseException:
        if quotas is not None:
            quotas.release(admission)
        raise
    reports = admission.reports if admission is not None else []
    if not duplicate:
        EVENTS.labels(ACCEPTED).inc(clean.events)
        return clean.sequence, BatchOutcome(accepted=clean.events, quotas=reports)
    # An identical batch was stored moments ago (a client's resend): say so event by event.
    EVENTS.labels(DUPLICATE).inc(clean.events)
    events = parse(data).events
    results = [EventResult(i, e.event_id, DUPLICATE, "already received in an identical batch") for i, e in
               enumerate(events)]
    return clean.sequence, BatchOutcome(duplicates=clean.events, results=results, quotas=reports)


def new_event_id() -> str:
    """Ids the server generates when a client sends none: time-ordered, so they never collide with each other."""
    return f"gen_{new_ulid()}"


@dataclass(frozen=True)
class _CachedKey:
    expires_monotonic: float
    project: Project
    key: ApiKey


class ApiKeyCache:
    """Verified keys for a few seconds, so a stream of batches costs one database lookup, not one per batch.

    Keyed by the SHA-256 of the presented key (the secret itself is not kept). A key revoked through this
    process is forgotten at once; a revocation elsewhere takes effect within ``ttl_seconds``. Expiry is checked
    on every use. Unknown and refused keys are never cached.
    """

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, _CachedKey] = {}

    async def project_for(self, uow: Callable[[], IngestTransaction], secret: str, now: datetime) -> Project:
        """The project a presented key belongs to; raises Unauthenticated or PermissionDenied."""
        digest = hashlib.sha256(secret.encode()).digest()
        cached = self._entries.get(digest)
        if cached is not None and cached.expires_monotonic > self._clock():
            if cached.key.state(now) is ApiKeyState.EXPIRED:
                del self._entries[digest]
                raise PermissionDenied(f"API key {cached.key.prefix} expired")
            return cached.project
        project, key = await verify_api_key(uow(), secret, now)
        if self._ttl > 0:
            if len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = _CachedKey(self._clock() + self._ttl, project, key)
        return project

    def forget(self, key_id: str) -> None:
        """Drop a key (it was just revoked here)."""
        for digest in [d for d, cached in self._entries.items() if cached.key.id == key_id]:
            del self._entries[digest]
