"""The native scanner may be stricter than the Python rules, never looser: whenever it calls a batch clean, the
Python screen accepts every event as sent. And for the batches well-behaved clients send, it does call them clean
(or the fast path would never run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billing.ingest.v1 import ingest_pb2
from services.ingest.adapters import native_scan
from services.ingest.domain.event import EventLimits
from services.ingest.service import events

NOW = datetime(2026, 11, 21, 12, 0, 0, 500_000, tzinfo=UTC)
LIMITS = EventLimits(max_batch_events=6, max_dimensions=3)


@pytest.fixture(scope="module")
def scanner() -> native_scan.EventScanner:
    found = native_scan.load()
    assert found is not None, f"build the native scanner first (make protos): {native_scan.library_path()}"
    return found


def python_verdict(data: bytes) -> bool:
    """True when the Python path would forward every event unchanged."""
    try:
        request = ingest_pb2.StreamEventsRequest.FromString(data)
    except DecodeError:
        return False
    if len(request.events) > LIMITS.max_batch_events:
        return False
    had_time = [e.HasField("timestamp") for e in request.events]
    screening = events.screen(request.events, NOW, LIMITS, lambda: "generated")
    outcome = screening.outcome
    return not outcome.results and not screening.generated and all(had_time)


ascii_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128)
any_text = st.text(max_size=140)
no_nul = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
metric_codes = st.from_regex(r"[a-z][a-z0-9_.-]{0,63}", fullmatch=True)
plain_values = st.from_regex(r"[+-]?[0-9]{1,29}(\.[0-9]{0,18})?", fullmatch=True)
odd_values = ["", "NaN", "1e3", "1e40", ".5", "1_0", "٣", " 1", "1.0000000000000000000", "1.0000000000000000001",
              "1" * 30, "-", "1.2.3", "+-1"]
any_values = st.one_of(plain_values, st.sampled_from(odd_values))
window = st.integers(
    int(NOW.timestamp() - LIMITS.past_window.total_seconds()) - 2,
    int(NOW.timestamp() + LIMITS.future_window.total_seconds()) + 2,
)


@st.composite
def event(draw, clean: bool):
    message = ingest_pb2.Event()
    if clean or draw(st.booleans()):
        message.event_id = draw(ascii_ids if clean else st.one_of(ascii_ids, any_text))
    if clean or draw(st.booleans()):
        message.metric = draw(metric_codes if clean else st.one_of(metric_codes, any_text))
    message.value = draw(plain_values if clean else any_values)
    if clean or draw(st.integers(0, 4)):
        seconds = draw(st.integers(int(NOW.timestamp()) - 86_400, int(NOW.timestamp())) if clean else window)
        message.timestamp.seconds = seconds
        message.timestamp.nanos = draw(st.integers(0, 999_999_999) if clean else st.integers(-2, 1_000_000_001))
    keys = st.text(no_nul, min_size=1, max_size=64) if clean else st.text(max_size=70)
    values = st.text(no_nul, max_size=256) if clean else st.text(max_size=260)
    most = LIMITS.max_dimensions if clean else LIMITS.max_dimensions + 1
    message.dimensions.update(draw(st.dictionaries(keys, values, max_size=most)))
    if draw(st.booleans()):
        message.unit = draw(st.text(no_nul, max_size=32) if clean else st.text(max_size=34))
    return message


@st.composite
def batch(draw, clean: bool):
    size = draw(st.integers(0, LIMITS.max_batch_events if clean else LIMITS.max_batch_events + 2))
    items = draw(st.lists(event(clean), min_size=size, max_size=size))
    if clean:
        unique = {e.event_id: e for e in items}
        items = list(unique.values())
    elif items and draw(st.booleans()):
        items.append(items[0])  # a repeated id
    return ingest_pb2.StreamEventsRequest(sequence=draw(st.integers(0, 2**64 - 1)), events=items).SerializeToString()


def _spoil(draw, request: ingest_pb2.StreamEventsRequest) -> None:
    """Change one thing about one event (or the batch), in a way that may or may not break a rule."""
    target = request.events[draw(st.integers(0, len(request.events) - 1))]
    how = draw(st.sampled_from(
        ["id", "metric", "value", "time", "nanos", "no-time", "dims", "key", "dim-value", "unit", "repeat", "clear"]
    ))
    if how == "id":
        target.event_id = draw(st.one_of(any_text, st.sampled_from(["a b", "é", "x" * 128, "x" * 129, "\x7f"])))
    elif how == "metric":
        target.metric = draw(st.one_of(any_text, st.sampled_from(["A", "a" * 64, "a" * 65, "1a", "a b"])))
    elif how == "value":
        target.value = draw(any_values)
    elif how == "time":
        target.timestamp.seconds = draw(window)
    elif how == "nanos":
        target.timestamp.nanos = draw(st.integers(-(2**31), 2**31 - 1))
    elif how == "no-time":
        target.ClearField("timestamp")
    elif how == "dims":
        target.dimensions.update({f"extra{i}": "v" for i in range(draw(st.integers(1, 4)))})
    elif how == "key":
        target.dimensions[draw(st.one_of(st.just(""), st.text(min_size=60, max_size=70)))] = "v"
    elif how == "dim-value":
        target.dimensions["k"] = draw(st.text(min_size=250, max_size=260))
    elif how == "unit":
        target.unit = draw(st.text(min_size=30, max_size=34))
    elif how == "repeat":
        request.events.add().CopyFrom(target)
    else:
        target.ClearField(draw(st.sampled_from(["event_id", "metric", "value"])))


@st.composite
def nearly_clean_batch(draw):
    request = ingest_pb2.StreamEventsRequest.FromString(draw(batch(clean=True)))
    if request.events:
        _spoil(draw, request)
    return request.SerializeToString()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(nearly_clean_batch(), batch(clean=False)))
def test_clean_by_the_scanner_means_clean_by_the_rules(scanner, data):
    if scanner.clean(data, NOW, LIMITS) is not None:
        assert python_verdict(data)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch(clean=True))
def test_batches_of_well_formed_events_are_clean(scanner, data):
    request = ingest_pb2.StreamEventsRequest.FromString(data)
    assert python_verdict(data)
    found = scanner.clean(data, NOW, LIMITS)
    assert found is not None
    assert (found.events, found.sequence) == (len(request.events), request.sequence)


@settings(max_examples=500)
@given(st.binary(max_size=400))
@example(b"\x12\x05\x0a\x03abc")  # an event with only an id
@example(b"\x12\xff\xff\xff\xff\x0f")  # a length far past the end
def test_arbitrary_bytes_never_crash_and_are_never_wrongly_clean(scanner, data):
    if scanner.clean(data, NOW, LIMITS) is not None:
        assert python_verdict(data)


def test_the_window_edges_match_the_python_rules_to_the_second(scanner):
    oldest = NOW - LIMITS.past_window
    for seconds, expected in [
        (int(oldest.timestamp()), False),  # half a second too old
        (int(oldest.timestamp()) + 1, True),
        (int((NOW + LIMITS.future_window).timestamp()), True),
        (int((NOW + LIMITS.future_window).timestamp()) + 1, False),
    ]:
        request = ingest_pb2.StreamEventsRequest(events=[ingest_pb2.Event(event_id="a", metric="m", value="1")])
        request.events[0].timestamp.seconds = seconds
        data = request.SerializeToString()
        assert (scanner.clean(data, NOW, LIMITS) is not None) is expected
        assert python_verdict(data) is expected


def test_a_clean_batch_gives_its_ids_as_the_python_path_digests_them(scanner):
    events = [ingest_pb2.Event(event_id=f"id-{i}", metric="m", value="1") for i in range(3)]
    for one in events:
        one.timestamp.seconds = int((NOW - timedelta(minutes=1)).timestamp())
    found = scanner.clean(ingest_pb2.StreamEventsRequest(sequence=300, events=events).SerializeToString(), NOW, LIMITS)
    assert found is not None and found.sequence == 300
    assert found.joined_ids == "\x00".join(e.event_id for e in events).encode()  # what _message_id digests


def test_unary_requests_have_their_events_at_the_same_field(scanner):
    request = ingest_pb2.IngestEventsRequest(events=[ingest_pb2.Event(event_id="a", metric="m", value="1")])
    request.events[0].timestamp.seconds = int(NOW.timestamp())
    found = scanner.clean(request.SerializeToString(), NOW, LIMITS)
    assert found is not None and (found.events, found.sequence, found.joined_ids) == (1, 0, b"a")


def _one(**fields) -> ingest_pb2.StreamEventsRequest:
    base = {"event_id": "evt-1", "metric": "api_calls", "value": "1"}
    dimensions = fields.pop("dimensions", {})
    message = ingest_pb2.Event(**{**base, **fields})
    message.dimensions.update(dimensions)
    if "no_time" not in fields:
        message.timestamp.seconds = int(NOW.timestamp())
    return ingest_pb2.StreamEventsRequest(sequence=1, events=[message])


EDGES = {
    # (event fields) -> whether the rules accept the event as sent
    "19 places": ({"value": "1.0000000000000000001"}, False),
    "19 places, all zeros": ({"value": "1.0000000000000000000"}, True),
    "18 places": ({"value": "0.000000000000000001"}, True),
    "sign only": ({"value": "-"}, False),
    "point only": ({"value": "."}, False),
    "30 digits": ({"value": "1" * 30}, True),  # below 1e30: valid, though the scanner stops at 29 digits
    "31 digits": ({"value": "1" * 31}, False),
    "29 digits": ({"value": "9" * 29}, True),
    "exponent": ({"value": "1e3"}, True),  # valid, but the scanner leaves exponents to Python
    "empty key": ({"dimensions": {"": "v"}}, False),
    "NUL in a key": ({"dimensions": {"a\x00b": "v"}}, False),
    "NUL in a value": ({"dimensions": {"k": "\x00"}}, False),
    "64-char key": ({"dimensions": {"k" * 64: "v"}}, True),
    "65-char key": ({"dimensions": {"k" * 65: "v"}}, False),
    "256-char value": ({"dimensions": {"k": "é" * 256}}, True),
    "257-char value": ({"dimensions": {"k": "é" * 257}}, False),
    "4 dimensions": ({"dimensions": {f"k{i}": "v" for i in range(4)}}, False),
    "3 dimensions": ({"dimensions": {f"k{i}": "v" for i in range(3)}}, True),
    "32-char unit": ({"unit": "u" * 32}, True),
    "33-char unit": ({"unit": "ü" * 33}, False),
    "space in id": ({"event_id": "a b"}, False),
    "DEL in id": ({"event_id": "a\x7f"}, False),
    "128-char id": ({"event_id": "x" * 128}, True),
    "129-char id": ({"event_id": "x" * 129}, False),
    "upper-case metric": ({"metric": "Api"}, False),
    "65-char metric": ({"metric": "a" * 65}, False),
}


@pytest.mark.parametrize("case", EDGES)
def test_edges(scanner, case):
    fields, valid = EDGES[case]
    data = _one(**fields).SerializeToString()
    assert python_verdict(data) is valid
    if not valid:
        assert scanner.clean(data, NOW, LIMITS) is None


@pytest.mark.parametrize("nanos", [-1, 1_000_000_000, -(2**31)])
def test_bad_nanos(scanner, nanos):
    request = _one()
    request.events[0].timestamp.nanos = nanos
    data = request.SerializeToString()
    assert not python_verdict(data) and scanner.clean(data, NOW, LIMITS) is None


@pytest.mark.parametrize("field", ["event_id", "metric", "value", "timestamp"])
def test_a_missing_field_is_never_clean(scanner, field):
    request = _one()
    request.events[0].ClearField(field)
    assert scanner.clean(request.SerializeToString(), NOW, LIMITS) is None


def test_a_repeated_id_is_never_clean(scanner):
    request = _one()
    request.events.add().CopyFrom(request.events[0])
    request.events[1].value = "2"
    data = request.SerializeToString()
    assert not python_verdict(data) and scanner.clean(data, NOW, LIMITS) is None


def test_more_events_than_the_limit_is_never_clean(scanner):
    request = ingest_pb2.StreamEventsRequest()
    for i in range(LIMITS.max_batch_events + 1):
        request.events.add().CopyFrom(_one(event_id=f"e{i}").events[0])
    assert scanner.clean(request.SerializeToString(), NOW, LIMITS) is None


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch(clean=True))
def test_the_per_metric_totals_of_a_clean_batch_are_what_its_events_add_up_to(scanner, data):
    clean = scanner.clean(data, NOW, LIMITS)
    assert clean is not None and clean.metrics is not None
    request = ingest_pb2.StreamEventsRequest.FromString(data)
    by_metric: dict[str, list[ingest_pb2.Event]] = {}
    for item in request.events:
        by_metric.setdefault(item.metric, []).append(item)
    assert [usage.metric for usage in clean.metrics] == list(by_metric)
    for usage in clean.metrics:
        items = by_metric[usage.metric]
        assert usage.events == len(items)
        assert usage.min_seconds == min(e.timestamp.seconds for e in items)
        assert usage.max_seconds == max(e.timestamp.seconds for e in items)
        exact = all("." not in e.value and len(e.value.lstrip("+-")) <= 18 for e in items)
        if exact:
            assert usage.total == sum(int(e.value) for e in items)
            assert usage.peak == max(int(e.value) for e in items)
        else:
            assert usage.total is None and usage.peak is None


def test_more_distinct_metrics_than_summarised_leave_the_totals_out(scanner):
    request = ingest_pb2.StreamEventsRequest()
    for number in range(native_scan.MAX_SUMMARISED_METRICS + 1):
        item = request.events.add(event_id=f"e{number}", metric=f"m{number}", value="1")
        item.timestamp.seconds = int(NOW.timestamp())
    clean = scanner.clean(request.SerializeToString(), NOW, EventLimits(max_batch_events=100))
    assert clean is not None and clean.metrics is None
