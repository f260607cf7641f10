"""Screening a batch and the key cache, without I/O (events are the real protobuf messages)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from billing.ingest.v1 import ingest_pb2
from billing_runtime.errors import InvalidArgument, PermissionDenied
from billing_runtime.timestamps import to_timestamp
from services.ingest.domain.api_key import ApiKey
from services.ingest.domain.event import ACCEPTED, DUPLICATE, REJECTED, EventLimits
from services.ingest.domain.project import Project
from services.ingest.service import events

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LIMITS = EventLimits()
PROJECT = Project(id="prj_1", organisation_id="org_1", name="p", created_at=NOW)


def make(event_id="", metric="api_calls", value="1", when=NOW, **more) -> ingest_pb2.Event:
    message = ingest_pb2.Event(event_id=event_id, metric=metric, value=value, **more)
    if when is not None:
        message.timestamp.CopyFrom(to_timestamp(when))
    return message


def ids():
    counter = itertools.count(1)
    return lambda: f"gen_{next(counter)}"


def test_screening_keeps_good_events_in_order_and_explains_the_rest():
    batch = [make("a"), make("b", value="x"), make("a"), make("", when=None), make("c", metric="Bad")]
    screening = events.screen(batch, NOW, LIMITS, ids())
    assert [e.event_id for e in screening.events] == ["a", "gen_1"]
    assert screening.positions == [0, 3]
    assert screening.generated == {3}
    assert screening.events[1].timestamp.seconds == int(NOW.timestamp())  # a missing time is the time of receipt
    outcome = screening.outcome
    assert (outcome.rejected, outcome.duplicates) == (2, 1)
    assert [(r.index, r.status, r.field) for r in outcome.results] == [
        (1, REJECTED, "value"), (2, DUPLICATE, ""), (4, REJECTED, "metric")
    ]


def test_rejections_are_counted_by_the_field_that_failed():
    def count(reason: str) -> float:
        return REGISTRY.get_sample_value("billing_ingest_events_rejected_total", {"reason": reason}) or 0.0

    before = {reason: count(reason) for reason in ("value", "metric", "timestamp")}
    events.screen([make("a", value="x"), make("b", value="y"), make("c", metric="Bad"), make("d")], NOW, LIMITS,
                  ids())
    assert {reason: count(reason) - before[reason] for reason in before} == {"value": 2, "metric": 1, "timestamp": 0}


def test_a_rejected_first_copy_does_not_make_a_later_good_copy_a_duplicate():
    screening = events.screen([make("a", value="bad"), make("a")], NOW, LIMITS, ids())
    assert [e.event_id for e in screening.events] == ["a"] and screening.positions == [1]


def test_bad_timestamp_nanos_are_rejected():
    bad = make("a")
    bad.timestamp.nanos = -1
    [result] = events.screen([bad], NOW, LIMITS, ids()).outcome.results
    assert result.field == "timestamp"


class Log:
    """An event log that remembers spans it stored, as JetStream's duplicate window does."""

    def __init__(self, split: int = 0):
        self.stored: list[list[str]] = []
        self.split = split

    async def append(self, organisation_id, project_id, batch):
        size = self.split or len(batch)
        spans = []
        for start in range(0, len(batch), size):
            ids_ = [e.event_id for e in batch[start : start + size]]
            duplicate = ids_ in self.stored
            if not duplicate:
                self.stored.append(ids_)
            spans.append((start, start + len(ids_), duplicate))
        return spans


async def test_ingest_reports_accepted_duplicates_from_the_log_and_generated_ids():
    log = Log(split=2)
    await events.ingest_batch(log, PROJECT, [make("a"), make("b")], NOW, LIMITS)
    outcome = await events.ingest_batch(log, PROJECT, [make("a"), make("b"), make("x", value="?"), make("")],
                                        NOW, LIMITS)
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (1, 2, 1)
    assert [(r.index, r.status) for r in outcome.results] == [
        (0, DUPLICATE), (1, DUPLICATE), (2, REJECTED), (3, ACCEPTED)
    ]
    assert outcome.results[3].generated and outcome.results[3].event_id.startswith("gen_")


async def test_an_oversized_batch_is_refused_before_anything_is_written():
    log = Log()
    with pytest.raises(InvalidArgument, match="at most 2 events"):
        await events.ingest_batch(log, PROJECT, [make("a"), make("b"), make("c")], NOW, EventLimits(max_batch_events=2))
    assert log.stored == []


def key(expires_at=None) -> ApiKey:
    return ApiKey(id="key_1", project_id="prj_1", name="", prefix="AAAAAAAA", secret_hash="h", created_at=NOW,
                  expires_at=expires_at, revoked_at=None)


async def test_the_key_cache_looks_a_key_up_once_per_ttl(monkeypatch):
    lookups = []

    async def verify(uow, secret, now):
        lookups.append(secret)
        return PROJECT, key(expires_at=NOW + timedelta(minutes=1))

    monkeypatch.setattr(events, "verify_api_key", verify)
    clock = [0.0]
    cache = events.ApiKeyCache(ttl_seconds=10, clock=lambda: clock[0])
    assert await cache.project_for(lambda: None, "s", NOW) is PROJECT
    assert await cache.project_for(lambda: None, "s", NOW) is PROJECT
    assert lookups == ["s"]
    clock[0] = 11
    await cache.project_for(lambda: None, "s", NOW)
    assert lookups == ["s", "s"]
    cache.forget("key_1")
    await cache.project_for(lambda: None, "s", NOW)
    assert len(lookups) == 3
    with pytest.raises(PermissionDenied, match="expired"):  # expiry is checked on every use, cached or not
        await cache.project_for(lambda: None, "s", NOW + timedelta(minutes=2))
