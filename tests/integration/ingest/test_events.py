"""IngestEvents and StreamEvents over real gRPC, with keys in real PostgreSQL and events landing in real JetStream."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from billing.ingest.v1 import ingest_pb2
from billing_runtime.timestamps import to_timestamp
from tests.integration.helpers import error_field, expect_rpc_error, organisation_request, stored_batches, stored_events

ACCEPTED = ingest_pb2.EVENT_STATUS_ACCEPTED
DUPLICATE = ingest_pb2.EVENT_STATUS_DUPLICATE
REJECTED = ingest_pb2.EVENT_STATUS_REJECTED


@pytest.fixture
async def project(invoicing_stub, ingest_stub) -> ingest_pb2.Project:
    organisation = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation
    reply = await ingest_stub.CreateProject(
        ingest_pb2.CreateProjectRequest(organisation_id=organisation.id, name=f"p{secrets.token_hex(4)}")
    )
    return reply.project


@pytest.fixture
async def api_key(ingest_stub, project) -> str:
    return (await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id))).secret


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def event(event_id: str = "", metric: str = "api_calls", value: str = "1", **overrides) -> ingest_pb2.Event:
    fields = {"event_id": event_id, "metric": metric, "value": value, **overrides}
    if "timestamp" not in fields:
        fields["timestamp"] = to_timestamp(datetime.now(UTC))
    return ingest_pb2.Event(**fields)


async def test_a_batch_is_accepted_and_durable_in_jetstream(ingest, ingest_stub, project, api_key):
    sent = [event(f"e{i}", value=str(i)) for i in range(50)]
    reply = await ingest_stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=sent), metadata=auth(api_key))
    assert (reply.outcome.accepted_count, reply.outcome.duplicate_count, reply.outcome.rejected_count) == (50, 0, 0)
    assert list(reply.outcome.results) == []  # plainly accepted events are not listed
    stored = await stored_events(ingest, project.id)
    assert [(e.event_id, e.value) for e in stored] == [(f"e{i}", str(i)) for i in range(50)]


async def test_the_message_carries_the_project_and_organisation(ingest, ingest_stub, project, api_key):
    await ingest_stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=[event("one")]), metadata=auth(api_key))
    mine = await stored_batches(ingest, project.id)
    assert len(mine) == 1
    assert mine[0].organisation_id == project.organisation_id
    assert mine[0].accept_time.seconds > 0 and mine[0].batch_id


async def test_missing_ids_and_timestamps_are_filled_in_and_reported(ingest, ingest_stub, project, api_key):
    sent = [ingest_pb2.Event(metric="api_calls", value="1"), event("mine"), ingest_pb2.Event(metric="x", value="2")]
    reply = await ingest_stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=sent), metadata=auth(api_key))
    assert reply.outcome.accepted_count == 3
    generated = {r.index: r for r in reply.outcome.results}
    assert set(generated) == {0, 2}
    assert all(r.status == ACCEPTED and r.event_id_generated and r.event_id for r in generated.values())
    assert generated[0].event_id != generated[2].event_id
    stored = {e.event_id: e for e in await stored_events(ingest, project.id)}
    assert set(stored) == {generated[0].event_id, "mine", generated[2].event_id}
    now = datetime.now(UTC).timestamp()
    assert abs(stored[generated[0].event_id].timestamp.seconds - now) < 60


async def test_duplicates_in_a_batch_and_an_identical_resend_are_reported(ingest, ingest_stub, project, api_key):
    batch = [event("a"), event("b"), event("a", value="7")]
    first = await ingest_stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=batch), metadata=auth(api_key))
    assert (first.outcome.accepted_count, first.outcome.duplicate_count) == (2, 1)
    assert [(r.index, r.event_id, r.status) for r in first.outcome.results] == [(2, "a", DUPLICATE)]
    again = await ingest_stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=batch), metadata=auth(api_key))
    assert (again.outcome.accepted_count, again.outcome.duplicate_count) == (0, 3)
    assert [e.event_id for e in await stored_events(ingest, project.id)] == ["a", "b"]
    # A different batch with an id already seen is accepted: metering counts (project, event_id) once.
    overlap = await ingest_stub.IngestEvents(
        ingest_pb2.IngestEventsRequest(events=[event("b"), event("c")]), metadata=auth(api_key)
    )
    assert overlap.outcome.accepted_count == 2


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({"metric": "API Calls"}, "metric", "not a metric code"),
        ({"metric": ""}, "metric", "required"),
        ({"value": "NaN"}, "value", "finite decimal"),
        ({"value": "Infinity"}, "value", "finite decimal"),
        ({"value": "1,5"}, "value", "finite decimal"),
        ({"value": ""}, "value", "required"),
        ({"value": "1e40"}, "value", "too large"),
        ({"event_id": "has space"}, "event_id", "spaces"),
        ({"event_id": "x" * 129}, "event_id", "at most 128"),
        # Offsets from now, turned into timestamps when the test runs (not when it is collected).
        ({"timestamp": timedelta(days=-36)}, "timestamp", "35 days"),
        ({"timestamp": timedelta(minutes=6)}, "timestamp", "5 minutes"),
        ({"dimensions": {f"k{i}": "v" for i in range(33)}}, "dimensions", "at most 32"),
        ({"dimensions": {"k": "v" * 257}}, "dimensions", "at most 256"),
        ({"dimensions": {"k" * 65: "v"}}, "dimensions", "1 to 64"),
        ({"dimensions": {"k": "a\x00b"}}, "dimensions", "NUL"),
        ({"unit": "u" * 33}, "unit", "at most 32"),
    ],
)
async def test_a_bad_event_rejects_that_event_only(ingest, ingest_stub, project, api_key, bad, field, words):
    fields = {"event_id": "bad", "metric": "api_calls", "value": "1", **bad}
    if isinstance(fields.get("timestamp"), timedelta):
        fields["timestamp"] = to_timestamp(datetime.now(UTC) + fields["timestamp"])
    batch = [event("good-1"), event(**fields), event("good-2")]
    reply = await ingest_stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=batch), metadata=auth(api_key))
    assert (reply.outcome.accepted_count, reply.outcome.rejected_count) == (2, 1)
    [result] = reply.outcome.results
    assert (result.index, result.status, result.field) == (1, REJECTED, field)
    assert words in result.reason
    assert [e.event_id for e in await stored_events(ingest, project.id)] == ["good-1", "good-2"]


async def test_an_oversized_batch_is_refused_whole_and_says_the_limit(ingest, ingest_stub, project, api_key):
    batch = [event(f"e{i}") for i in range(10_001)]
    error = await expect_rpc_error(
        ingest_stub.IngestEvents(ingest_pb2.IngestEventsRequest(events=batch), metadata=auth(api_key)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "at most 10000 events" in error.details() and error_field(error) == "events"
    assert await stored_events(ingest, project.id) == []


async def test_unknown_missing_revoked_and_expired_keys_are_refused(ingest, ingest_stub, project, api_key):
    request = ingest_pb2.IngestEventsRequest(events=[event("x")])
    await expect_rpc_error(ingest_stub.IngestEvents(request), grpc.StatusCode.UNAUTHENTICATED)
    unknown = "bk_AAAAAAAA_" + "B" * 32
    await expect_rpc_error(ingest_stub.IngestEvents(request, metadata=auth(unknown)), grpc.StatusCode.UNAUTHENTICATED)
    await expect_rpc_error(
        ingest_stub.IngestEvents(request, metadata=auth("not-a-key")), grpc.StatusCode.UNAUTHENTICATED
    )
    # x-api-key works too, and the key is now cached ...
    assert (await ingest_stub.IngestEvents(request, metadata=(("x-api-key", api_key),))).outcome.accepted_count == 1
    key_id = (await ingest_stub.ListApiKeys(ingest_pb2.ListApiKeysRequest(project_id=project.id))).api_keys[0].id
    await ingest_stub.RevokeApiKey(ingest_pb2.RevokeApiKeyRequest(api_key_id=key_id))
    # ... yet revocation through this service takes effect at once.
    error = await expect_rpc_error(
        ingest_stub.IngestEvents(request, metadata=auth(api_key)), grpc.StatusCode.PERMISSION_DENIED
    )
    assert "revoked" in error.details()
    soon = to_timestamp(datetime.now(UTC) + timedelta(seconds=1))
    expiring = await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id, expire_time=soon))
    fresh = ingest_pb2.IngestEventsRequest(events=[event("y")])
    assert (await ingest_stub.IngestEvents(fresh, metadata=auth(expiring.secret))).outcome.accepted_count == 1
    await asyncio.sleep(1.2)
    error = await expect_rpc_error(
        ingest_stub.IngestEvents(request, metadata=auth(expiring.secret)), grpc.StatusCode.PERMISSION_DENIED
    )
    assert "expired" in error.details()


async def test_a_stream_acknowledges_every_batch_by_sequence(ingest, ingest_stub, project, api_key):
    async def batches():
        for sequence in range(1, 21):
            yield ingest_pb2.StreamEventsRequest(
                sequence=sequence, events=[event(f"s{sequence}-{i}") for i in range(100)]
            )

    call = ingest_stub.StreamEvents(batches(), metadata=auth(api_key))
    acks = [ack async for ack in call]
    assert sorted(a.sequence for a in acks) == list(range(1, 21))
    assert all(a.outcome.accepted_count == 100 for a in acks)
    stored = await stored_events(ingest, project.id)
    assert len(stored) == 2000 and len({e.event_id for e in stored}) == 2000


async def test_a_stream_reports_bad_events_and_resent_batches(ingest, ingest_stub, project, api_key):
    batch = [event("k1"), event("k2", value="oops"), event("k1")]

    async def batches():
        yield ingest_pb2.StreamEventsRequest(sequence=1, events=batch)
        await asyncio.sleep(0.2)  # let the first become durable, then resend it as a client would after a break
        yield ingest_pb2.StreamEventsRequest(sequence=2, events=batch)

    acks = {a.sequence: a.outcome async for a in ingest_stub.StreamEvents(batches(), metadata=auth(api_key))}
    assert Counter(r.status for r in acks[1].results) == {REJECTED: 1, DUPLICATE: 1}
    assert (acks[1].accepted_count, acks[2].accepted_count, acks[2].duplicate_count) == (1, 0, 2)
    assert [e.event_id for e in await stored_events(ingest, project.id)] == ["k1"]


async def test_a_stream_with_a_bad_key_fails_before_reading(ingest, ingest_stub):
    async def batches():
        yield ingest_pb2.StreamEventsRequest(sequence=1, events=[event("x")])

    call = ingest_stub.StreamEvents(batches(), metadata=auth("bk_AAAAAAAA_" + "C" * 32))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_oversized_stream_batch_ends_the_stream_naming_the_batch(ingest, ingest_stub, api_key):
    async def batches():
        yield ingest_pb2.StreamEventsRequest(sequence=7, events=[event(f"o{i}") for i in range(10_001)])

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in ingest_stub.StreamEvents(batches(), metadata=auth(api_key)):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch 7" in caught.value.details()


async def test_a_batch_larger_than_one_message_is_split_and_kept_whole(ingest, ingest_stub, project, api_key):
    # 10,000 events with fat dimensions are several MB: more than NATS's 1 MB message limit.
    dims = {f"d{i}": "v" * 40 for i in range(8)}
    batch = [event(f"big-{i}", dimensions=dims) for i in range(10_000)]
    request = ingest_pb2.IngestEventsRequest(events=batch)
    assert request.ByteSize() > 3 * 1024 * 1024
    reply = await ingest_stub.IngestEvents(request, metadata=auth(api_key))
    assert reply.outcome.accepted_count == 10_000
    again = await ingest_stub.IngestEvents(request, metadata=auth(api_key))
    assert again.outcome.duplicate_count == 10_000  # the split is deterministic, so the resend digests the same
    stored = await stored_events(ingest, project.id)
    assert [e.event_id for e in stored] == [f"big-{i}" for i in range(10_000)]
