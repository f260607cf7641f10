"""The native decoder gives exactly the columns the protobuf decoder gives, or declines (None) and leaves the
message to it; it never gives different ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billing.ingest.v1 import events_pb2, ingest_pb2
from services.metering.adapters import native_columns
from services.metering.adapters.messages import _decode_with_protobuf, decode_event_batch
from services.metering.domain.event_batch import PoisonBatch


@pytest.fixture(scope="module")
def decoder() -> native_columns.ColumnDecoder:
    found = native_columns.load()
    assert found is not None, f"build the native decoder first (make protos): {native_columns.library_path()}"
    return found


def same_columns(native, reference) -> None:
    assert native.event_ids == reference.event_ids
    assert native.metrics == reference.metrics
    assert native.values == reference.values
    assert native.timestamps_us == reference.timestamps_us
    assert [json.loads(d) for d in native.dimensions] == [json.loads(d) for d in reference.dimensions]
    assert native.organisation_ids == reference.organisation_ids and native.project_ids == reference.project_ids


texts = st.text(max_size=40)
codes = st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True)


@st.composite
def batches(draw) -> bytes:
    batch = events_pb2.EventBatchAccepted(
        batch_id=draw(texts), organisation_id="org_" + draw(texts), project_id="prj_" + draw(texts),
        client_sequence=draw(st.integers(0, 2**64 - 1)),
    )
    for _ in range(draw(st.integers(0, 8))):
        event = batch.events.add(
            event_id=draw(texts), metric=draw(codes), value=draw(st.one_of(texts, st.decimals().map(str))),
            unit=draw(texts),
        )
        if draw(st.booleans()):
            event.timestamp.seconds = draw(st.integers(-(2**40), 2**40))
            event.timestamp.nanos = draw(st.integers(-(2**31), 2**31 - 1))
        event.dimensions.update(draw(st.dictionaries(texts, texts, max_size=4)))
    data = batch.SerializeToString()
    if draw(st.booleans()):  # a newer producer's unknown field, or a repeated field: protobuf merges
        data += draw(st.sampled_from([b"\x38\x05", b"\x12\x05\x0a\x03dup", b"\x2a\x00", b"\x22\x04late"]))
    return data


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
@example(events_pb2.EventBatchAccepted(organisation_id="o", project_id="p").SerializeToString())
def test_native_columns_equal_protobuf_columns_or_decline(decoder, data):
    agree(decoder, data)


def agree(decoder, data: bytes) -> None:
    """Both decoders store the same columns, or both call the message poison of the same kind."""

    def outcome(decode):
        try:
            return decode()
        except PoisonBatch as poison:
            return poison.kind

    native = outcome(lambda: decode_event_batch(data, decoder))
    reference = outcome(lambda: _decode_with_protobuf(data))
    if isinstance(reference, str) or isinstance(native, str):
        assert native == reference
    else:
        same_columns(native, reference)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_and_never_disagree(decoder, data):
    agree(decoder, data)


def test_ordinary_batches_are_decoded_natively_with_escapes(decoder):
    batch = events_pb2.EventBatchAccepted(organisation_id="org_1", project_id="prj_1")
    event = batch.events.add(event_id="e-1", metric="llm.tokens", value="12.5")
    event.timestamp.seconds, event.timestamp.nanos = 1_800_000_000, 999_999
    event.dimensions.update({"model": 'gpt "4o"', "path": "a\\b\tc", "city": "Bengaluru ಬೆಂಗಳೂರು"})
    batch.events.add(event_id="e-2", metric="llm.tokens", value="-1").timestamp.seconds = 5
    data = batch.SerializeToString()
    decoded = decoder.decode(data)
    assert decoded is not None
    assert decoded.timestamps_us == [1_800_000_000_000_999, 5_000_000]
    assert json.loads(decoded.dimensions[0]) == dict(event.dimensions) and decoded.dimensions[1] == "null"
    same_columns(decode_event_batch(data, decoder), _decode_with_protobuf(data))


@pytest.mark.parametrize(
    "event",
    [
        ingest_pb2.Event(event_id="a\x1fb", metric="m", value="1"),  # a separator in an id
        ingest_pb2.Event(event_id="a", metric="m", value="1\x00"),  # NUL
    ],
)
def test_what_it_cannot_carry_is_left_to_protobuf(decoder, event):
    data = events_pb2.EventBatchAccepted(organisation_id="o", project_id="p", events=[event]).SerializeToString()
    assert decoder.decode(data) is None
    assert decode_event_batch(data, decoder).event_ids == [event.event_id]  # and the protobuf path still decodes it


def test_a_batch_without_its_owner_is_still_poison(decoder):
    data = events_pb2.EventBatchAccepted(project_id="p", events=[ingest_pb2.Event(event_id="a")]).SerializeToString()
    with pytest.raises(PoisonBatch, match="no organisation_id"):
        decode_event_batch(data, decoder)


def test_a_field_sent_twice_in_one_event_merges_as_protobuf_does(decoder):
    first = ingest_pb2.Event(event_id="first", metric="m", value="1", dimensions={"k": "1", "a": "x"})
    first.timestamp.seconds, first.timestamp.nanos = 100, 5000
    second = ingest_pb2.Event(event_id="second", dimensions={"k": "2"})
    second.timestamp.seconds = 200
    merged = first.SerializeToString() + second.SerializeToString()  # one event whose fields repeat
    envelope = events_pb2.EventBatchAccepted(organisation_id="o", project_id="p").SerializeToString()
    data = envelope + b"\x12" + bytes([len(merged)]) + merged
    assert decoder.decode(data) is not None
    columns = decode_event_batch(data, decoder)
    assert columns.event_ids == ["second"] and columns.timestamps_us == [200_000_005]
    assert json.loads(columns.dimensions[0]) == {"k": "2", "a": "x"}
    agree(decoder, data)
