"""The REST event body: the three shapes, exact decimals, per-event shape errors, and results for every event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.ingest.v1 import ingest_pb2
from billing_runtime.errors import InvalidArgument
from services.gateway.entrypoints.http.events_json import (
    EventShapeError,
    merge_results,
    parse_events,
    parse_timestamp,
)

RECEIVED = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
EVENT = {
    "metricName": "api_calls",
    "metricValue": 1,
    "unit": "requests",
    "timestamp": "2025-03-01T11:59:00Z",
    "metadata": {"endpoint": "/v1/search"},
    "idempotencyKey": "req-1",
}


def parse(body: object | bytes):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_events(raw, RECEIVED)


def rejection(parsed, index: int) -> tuple[str, str]:
    _, field, reason = parsed.rejected[index]
    return field, reason


@pytest.mark.parametrize("body", [EVENT, [EVENT], {"events": [EVENT]}], ids=["object", "list", "events"])
def test_each_body_shape_gives_the_same_event(body):
    parsed = parse(body)
    assert parsed.total == 1 and not parsed.rejected
    (event,) = parsed.request.events
    assert event.metric == "api_calls" and event.value == "1" and event.unit == "requests"
    assert event.event_id == "req-1" and dict(event.dimensions) == {"endpoint": "/v1/search"}
    assert event.timestamp.ToDatetime(tzinfo=UTC) == datetime(2025, 3, 1, 11, 59, tzinfo=UTC)


def test_event_id_is_accepted_for_idempotency_key():
    body = {**EVENT, "eventId": "evt-9"}
    del body["idempotencyKey"]
    assert parse(body).request.events[0].event_id == "evt-9"
    assert parse({**EVENT, "eventId": "req-1"}).request.events[0].event_id == "req-1"  # both, agreeing
    clash = parse({**EVENT, "eventId": "other"})
    assert rejection(clash, 0)[0] == "eventId"


def test_a_missing_id_is_left_for_ingest_to_generate_and_a_missing_timestamp_is_the_receipt_time():
    parsed = parse({"metricName": "api_calls", "metricValue": 2})
    (event,) = parsed.request.events
    assert event.event_id == ""
    assert event.timestamp.ToDatetime(tzinfo=UTC) == RECEIVED


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"0.1", "0.1"),
        (b"1e-7", "1E-7"),
        (b"0.10", "0.10"),
        (b"123456789012345678901234567", "123456789012345678901234567"),
        (b"-3", "-3"),
        (b'"0.3"', "0.3"),
        (b'"12.500"', "12.500"),
    ],
)
def test_values_are_exact_decimals_never_floats(raw: bytes, value: str):
    body = b'{"metricName": "m", "metricValue": ' + raw + b', "idempotencyKey": "a"}'
    assert parse(body).request.events[0].value == value


def test_sum_of_many_tenths_is_exact():
    body = json.dumps([{"metricName": "m", "metricValue": 0.1, "idempotencyKey": str(i)} for i in range(10)])
    values = [Decimal(e.value) for e in parse(body.encode()).request.events]
    assert sum(values) == Decimal("1.0")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b"NaN", "metricValue"),
        (b"Infinity", "metricValue"),
        (b"-Infinity", "metricValue"),
        (b'{"amount": 1}', "metricValue"),
        (b"[1]", "metricValue"),
        (b"true", "metricValue"),
    ],
)
def test_non_finite_and_non_scalar_values_reject_their_event_only(value: bytes, field: str):
    body = (
        b'[{"metricName": "m", "metricValue": 1, "idempotencyKey": "a"},'
        b' {"metricName": "m", "metricValue": ' + value + b', "idempotencyKey": "b"},'
        b' {"metricName": "m", "metricValue": 3, "idempotencyKey": "c"}]'
    )
    parsed = parse(body)
    assert parsed.total == 3
    assert [e.event_id for e in parsed.request.events] == ["a", "c"]
    assert parsed.sent_indexes == [0, 2]
    assert parsed.rejected[1][0] == "b"
    assert rejection(parsed, 1)[0] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metricName": 7}, "metricName"),
        ({"unit": ["x"]}, "unit"),
        ({"idempotencyKey": {"id": 1}}, "idempotencyKey"),
        ({"metadata": "region=eu"}, "metadata"),
        ({"metadata": {"region": {"name": "eu"}}}, "metadata.region"),
        ({"metadata": {"tags": ["a"]}}, "metadata.tags"),
        ({"metadata": {"x": None}}, "metadata.x"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"timestamp": 1_700_000_000_000}, "timestamp"),  # milliseconds
        ({"metricNmae": "typo"}, "metricNmae"),
    ],
)
def test_wrong_json_shapes_are_rejected_naming_the_field(change, field):
    parsed = parse([{**EVENT, **change}])
    assert not parsed.request.events
    assert rejection(parsed, 0)[0] == field


def test_items_that_are_not_objects_are_rejected_with_their_index():
    parsed = parse([EVENT, "api_calls", None, 3])
    assert sorted(parsed.rejected) == [1, 2, 3] and len(parsed.request.events) == 1
    assert "must be an event object" in rejection(parsed, 1)[1]


def test_metadata_scalars_become_strings():
    parsed = parse({**EVENT, "metadata": {"cached": True, "tokens": 12, "ratio": 0.5, "model": "gpt"}})
    assert dict(parsed.request.events[0].dimensions) == {
        "cached": "true", "tokens": "12", "ratio": "0.5", "model": "gpt"
    }


def test_integer_ids_are_taken_as_strings():
    assert parse({**EVENT, "idempotencyKey": 42}).request.events[0].event_id == "42"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T12:00:00Z", (1740830400, 0)),
        ("2025-03-01T17:30:00+05:30", (1740830400, 0)),
        ("2025-03-01T12:00:00.123456Z", (1740830400, 123_456_000)),
        ("2025-03-01T12:00:00", (1740830400, 0)),  # no offset: UTC
        (1740830400, (1740830400, 0)),
        (json.loads("1740830400.5", parse_float=Decimal), (1740830400, 500_000_000)),
        (json.loads("1740830400.000000001", parse_float=Decimal), (1740830400, 1)),
        (json.loads("-0.5", parse_float=Decimal), (-1, 500_000_000)),
    ],
)
def test_timestamps(value, expected):
    assert parse_timestamp(value) == expected


def test_timestamp_in_milliseconds_gets_a_hint():
    with pytest.raises(EventShapeError, match="milliseconds"):
        parse_timestamp(1_740_830_400_000)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'"api_calls"', b"42", b"null", b'{"events": {"metricName": "m"}}',
     b'{"events": [], "extra": 1}', b"NaN", b"\xff\xfe"],
)
def test_bodies_that_are_not_one_of_the_shapes_are_a_400(body: bytes):
    with pytest.raises(InvalidArgument):
        parse(body)


def test_empty_list_is_no_events():
    parsed = parse([])
    assert parsed.total == 0 and not parsed.request.events


def _outcome(accepted=0, duplicates=0, rejected=0, results=()):
    return ingest_pb2.BatchOutcome(accepted_count=accepted, duplicate_count=duplicates, rejected_count=rejected,
                                   results=list(results))


def test_results_cover_every_event_with_ingest_indexes_mapped_back():
    body = [
        {**EVENT, "idempotencyKey": "a"},
        {**EVENT, "metricValue": {"x": 1}, "idempotencyKey": "bad"},  # gateway rejects: not sent
        {**EVENT, "idempotencyKey": "a"},  # ingest: duplicate (sent index 1)
        {"metricName": "api_calls", "metricValue": 1},  # ingest generates an id (sent index 2)
        {**EVENT, "metricName": "Bad Name", "idempotencyKey": "c"},  # ingest rejects (sent index 3)
        {**EVENT, "idempotencyKey": "d"},
    ]
    parsed = parse(body)
    assert parsed.sent_indexes == [0, 2, 3, 4, 5]
    outcome = _outcome(accepted=3, duplicates=1, rejected=1, results=[
        ingest_pb2.EventResult(index=1, event_id="a", status=ingest_pb2.EVENT_STATUS_DUPLICATE, reason="repeat"),
        ingest_pb2.EventResult(index=2, event_id="gen-1", status=ingest_pb2.EVENT_STATUS_ACCEPTED,
                               event_id_generated=True),
        ingest_pb2.EventResult(index=3, event_id="c", status=ingest_pb2.EVENT_STATUS_REJECTED, reason="bad name",
                               field="metric"),
    ])
    result = merge_results(parsed, outcome)
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (3, 1, 2)
    rows = result["results"]
    assert [r["index"] for r in rows] == list(range(6))
    assert [(r["eventId"], r["status"]) for r in rows] == [
        ("a", "accepted"), ("bad", "rejected"), ("a", "duplicate"), ("gen-1", "accepted"), ("c", "rejected"),
        ("d", "accepted"),
    ]
    assert rows[1]["field"] == "metricValue"
    assert rows[3]["eventIdGenerated"] is True and "eventIdGenerated" not in rows[0]
    assert rows[4] == {"index": 4, "eventId": "c", "status": "rejected", "reason": "bad name", "field": "metricName"}
    assert rows[2] == {"index": 2, "eventId": "a", "status": "duplicate", "reason": "repeat"}


def test_ingest_field_names_are_given_back_in_the_clients_terms():
    parsed = parse([EVENT])
    outcome = _outcome(rejected=1, results=[ingest_pb2.EventResult(
        index=0, event_id="req-1", status=ingest_pb2.EVENT_STATUS_REJECTED, reason="too long",
        field="dimensions.endpoint")])
    assert merge_results(parsed, outcome)["results"][0]["field"] == "metadata.endpoint"


@given(st.lists(st.booleans(), max_size=40))
def test_merge_places_every_event_once_whatever_the_gateway_rejects(bad: list[bool]):
    body = [{**EVENT, "idempotencyKey": f"e{i}", **({"metricValue": [1]} if is_bad else {})}
            for i, is_bad in enumerate(bad)]
    parsed = parse(body)
    sent = len(parsed.request.events)
    result = merge_results(parsed, _outcome(accepted=sent))
    assert [r["index"] for r in result["results"]] == list(range(len(bad)))
    assert [r["eventId"] for r in result["results"]] == [f"e{i}" for i in range(len(bad))]
    assert [r["status"] == "rejected" for r in result["results"]] == bad
    assert result["accepted"] + result["rejected"] == len(bad)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"metricName": "m\\ud800", "metricValue": 1, "idempotencyKey": "x"}',
        b'{"metricName": "m", "metricValue": 1, "metadata": {"k": "\\udc00"}, "idempotencyKey": "x"}',
        b'{"metricName": "m", "metricValue": 1, "idempotencyKey": "x\\ud800"}',
    ],
)
def test_a_lone_surrogate_escape_rejects_its_event_only(raw: bytes):
    body = b"[" + raw + b', {"metricName": "m", "metricValue": 2, "idempotencyKey": "ok"}]'
    parsed = parse(body)
    assert [e.event_id for e in parsed.request.events] == ["ok"]
    assert parsed.sent_indexes == [1]
    assert "surrogate" in rejection(parsed, 0)[1]
    json.dumps(merge_results(parsed, _outcome(accepted=1)))  # the answer itself is encodable
