"""Poison messages go to the dead-letter stream with the reason, and never block the messages after them."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from billing.metering.v1 import metering_pb2
from billing_runtime import messaging
from billing_runtime.service import Runtime
from services.metering.adapters.dead_letters import STREAM as DEAD_LETTER_STREAM
from services.metering.adapters.dead_letters import DeadLetters
from services.metering.adapters.event_store import EventStore
from services.metering.adapters.messages import decode_event_batch
from services.metering.config import MeteringSettings
from services.metering.domain.dead_letters import DeadLetterState
from services.metering.entrypoints.consumer import Delivery, EventConsumer
from services.metering.entrypoints.max_deliveries import MaxDeliveriesWatcher
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.metering.conftest import (
    SUBJECT,
    E,
    batch,
    define,
    eventually,
    project_id,
    publish,
    whole_usage,
)

pytestmark = pytest.mark.usefixtures("metering")

NOW = datetime.now(UTC).replace(microsecond=0)
START, END = NOW - timedelta(days=1), NOW + timedelta(hours=1)


async def dead_letters_by_source(stub) -> dict[int, metering_pb2.DeadLetter]:
    letters, token = {}, ""
    while True:
        page = await stub.ListDeadLetters(metering_pb2.ListDeadLettersRequest(page_size=2, page_token=token))
        for letter in page.dead_letters:
            letters[letter.source_sequence] = letter
        token = page.next_page_token
        if not token:
            return letters


async def test_poison_messages_are_dead_lettered_with_the_reason_and_later_ones_still_count(
    metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "api.calls", metering_pb2.AGGREGATION_SUM)
    project, t = project_id(), NOW - timedelta(hours=1)

    async def send(*events: E, organisation: str = organisation_id, project: str = project) -> int:
        return await publish(jetstream, batch(organisation, project, events))

    poison = {
        await publish(jetstream, b"\xff\xfe not a protobuf"): "not an EventBatchAccepted protobuf",
        await send(E("p1", "1", t), project=""): "no project_id",
        await send(E("p2", "1", t), organisation=""): "no organisation_id",
        await send(E("p3", "NaN", t)): "events_value_finite",
        await send(E("p4", "12abc", t)): "numeric",
        await send(E("", "1", t)): "events_event_id_length",
        await send(E("p5", "1", t, "Bad Metric")): "not a lowercase metric code",
        await send(E("p6\x00", "1", t)): "0x00",
        await send(E("p7", "1", t, dimensions={"k": "\x00"})): "\\u0000",
    }
    good = await publish(jetstream, batch(organisation_id, project, [E("g1", "2.5", t), E("g2", "0.5", t)]))

    assert await eventually(
        lambda: whole_usage(metering_stub, organisation_id, "api.calls", START, END), lambda r: r[1] >= 2
    ) == ("3", 2)
    letters = await eventually(lambda: dead_letters_by_source(metering_stub), lambda found: set(poison) <= set(found))
    assert good not in letters
    for sequence, reason in poison.items():
        letter = letters[sequence]
        assert reason in letter.reason, letter.reason
        assert letter.source_stream == "BILLING_INGEST" and letter.subject == SUBJECT
        assert letter.delivery_count == 1 and letter.payload_size > 0 and letter.HasField("dead_letter_time")
    # Newest first.
    sequences = [letter.sequence for letter in (await metering_stub.ListDeadLetters(
        metering_pb2.ListDeadLettersRequest(page_size=50))).dead_letters]
    assert sequences == sorted(sequences, reverse=True)


async def test_a_bad_message_among_good_ones_in_one_transaction_is_isolated(
    metering: Runtime, metering_stub, jetstream, organisation_id
) -> None:
    """Fetched together, stored in one transaction that fails: retried one by one, only the bad one is lost."""
    await define(metering_stub, organisation_id, "tokens", metering_pb2.AGGREGATION_SUM)
    durable = f"test-isolation-{organisation_id[-8:].lower()}"
    await jetstream.add_consumer(
        "BILLING_INGEST",
        ConsumerConfig(durable_name=durable, filter_subject=SUBJECT, ack_policy=AckPolicy.EXPLICIT,
                       deliver_policy="new"),
    )
    subscription = await jetstream.pull_subscribe_bind(durable=durable, stream="BILLING_INGEST")
    try:
        project, t = project_id(), NOW - timedelta(minutes=10)
        sequences = [
            await publish(jetstream, batch(organisation_id, project, [E("i1", "1", t, "tokens")])),
            await publish(jetstream, batch(organisation_id, project, [E("i2", "1e999999", t, "tokens")])),
            await publish(jetstream, batch(organisation_id, project, [E("i3", "2", t, "tokens")])),
        ]
        messages = []
        while len(messages) < 3:
            messages += [m for m in await subscription.fetch(3, timeout=5) if m.metadata.sequence.stream in sequences]
        settings = MeteringSettings(database_url="postgresql://unused", consumer_durable=durable)
        consumer = EventConsumer(jetstream, EventStore(metering.engine), DeadLetters(jetstream), settings)
        await consumer.process([Delivery(m, decode_event_batch(m.data)) for m in messages])
        assert await whole_usage(metering_stub, organisation_id, "tokens", START, END) == ("3", 2)
        letters = await eventually(lambda: dead_letters_by_source(metering_stub), lambda f: sequences[1] in f)
        assert "out of range" in letters[sequences[1]].reason or "overflow" in letters[sequences[1]].reason
        assert sequences[0] not in letters and sequences[2] not in letters
        info = await jetstream.consumer_info("BILLING_INGEST", durable)
        assert info.num_ack_pending == 0  # acked or terminated, every one
    finally:
        await jetstream.delete_consumer("BILLING_INGEST", durable)


async def test_the_dead_letter_stream_keeps_thirty_days(metering_stub, jetstream) -> None:
    await DeadLetters(jetstream).ensure_stream()
    info = await jetstream.stream_info(DEAD_LETTER_STREAM)
    assert info.config.subjects == ["billing.dead_letter.>"] and info.config.max_age == 30 * 24 * 3600


async def test_a_bad_page_token_is_refused(metering_stub) -> None:
    error = await expect_rpc_error(
        metering_stub.ListDeadLetters(metering_pb2.ListDeadLettersRequest(page_token="abc")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_field(error) == "page_token"


async def test_a_message_jetstream_gives_up_on_is_dead_lettered_too(metering_stub, jetstream, nats_url) -> None:
    """A message that is never acknowledged (it stalls or crashes every consumer) reaches max_deliver: the
    advisory JetStream then sends becomes a dead letter instead of a silent loss."""
    durable = f"test-max-deliver-{secrets.token_hex(4)}"
    await jetstream.add_consumer(
        "BILLING_INGEST",
        ConsumerConfig(durable_name=durable, filter_subject=SUBJECT, ack_policy=AckPolicy.EXPLICIT, ack_wait=0.5,
                       max_deliver=2, deliver_policy="new"),
    )
    nc = await messaging.connect(nats_url, name="max-deliver-test")
    watcher = MaxDeliveriesWatcher(nc, jetstream, DeadLetters(jetstream), "BILLING_INGEST", durable)
    watching = await watcher.start()
    subscription = await jetstream.pull_subscribe_bind(durable=durable, stream="BILLING_INGEST")
    try:
        sequence = await publish(jetstream, batch("org_x", project_id(), [E("m1", "1", NOW)]))
        deliveries = 0
        for _ in range(20):  # take it, never ack it, until JetStream stops offering it
            try:
                deliveries += sum(m.metadata.sequence.stream == sequence for m in await subscription.fetch(5, 1.0))
            except TimeoutError:
                if deliveries >= 2:
                    break
        assert deliveries == 2
        letters = await eventually(lambda: dead_letters_by_source(metering_stub), lambda f: sequence in f)
        assert "max_deliver" in letters[sequence].reason and letters[sequence].delivery_count == 2
    finally:
        await watching.unsubscribe()
        await nc.close()
        await jetstream.delete_consumer("BILLING_INGEST", durable)


# --- Inspect, replay, discard ---------------------------------------------------------------------------------


async def hand_made_letter(jetstream, payload: bytes, reason: str = "failed for a transient reason") -> int:
    """Dead-letter ``payload`` as the consumer would (its cause, say, since fixed); the letter's sequence."""
    source_sequence = 10**12 + secrets.randbelow(10**9)  # never a real BILLING_INGEST sequence
    dead_letters = DeadLetters(jetstream)
    await dead_letters.ensure_stream()
    await dead_letters.publish(payload, reason=reason, source_stream="BILLING_INGEST",
                               source_sequence=source_sequence, source_subject=SUBJECT, delivery_count=50)
    info = await jetstream.stream_info(DEAD_LETTER_STREAM)
    letter = await jetstream.get_msg(DEAD_LETTER_STREAM, info.state.last_seq)
    assert letter.headers["Billing-Source-Sequence"] == str(source_sequence)
    return letter.seq


async def test_a_dead_letter_is_inspected_replayed_and_counted_once_however_often_it_is_replayed(
    metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "replays", metering_pb2.AGGREGATION_SUM)
    project, t = project_id(), NOW - timedelta(minutes=5)
    sequence = await hand_made_letter(
        jetstream, batch(organisation_id, project, [E("r1", "2", t, "replays"), E("r2", "3", t, "replays")])
    )

    shown = await metering_stub.GetDeadLetter(metering_pb2.GetDeadLetterRequest(sequence=sequence))
    assert shown.dead_letter.state == metering_pb2.DEAD_LETTER_STATE_PENDING
    assert shown.dead_letter.reason == "failed for a transient reason" and shown.dead_letter.subject == SUBJECT
    payload = json.loads(shown.payload_json)
    assert payload["organisation_id"] == organisation_id and payload["project_id"] == project
    assert [e["event_id"] for e in payload["events"]] == ["r1", "r2"]
    assert not shown.payload_truncated and not shown.payload_error

    first = await metering_stub.ReplayDeadLetter(metering_pb2.ReplayDeadLetterRequest(sequence=sequence))
    assert first.dead_letter.state == metering_pb2.DEAD_LETTER_STATE_REPLAYED and first.dead_letter.HasField(
        "state_time")
    assert not first.duplicate and first.replay_sequence > 0
    second = await metering_stub.ReplayDeadLetter(metering_pb2.ReplayDeadLetterRequest(sequence=sequence))
    assert second.duplicate and second.replay_sequence == first.replay_sequence  # one publish

    # Even a replay JetStream no longer recognises (past its duplicate window) counts nothing twice.
    await publish(jetstream, batch(organisation_id, project, [E("r1", "2", t, "replays")]))
    await publish(jetstream, batch(organisation_id, project, [E("r3", "10", t, "replays")]))  # the last one
    assert await eventually(
        lambda: whole_usage(metering_stub, organisation_id, "replays", START, END), lambda r: r[1] >= 3
    ) == ("15", 3)

    listed = await dead_letters_by_source(metering_stub)
    assert {letter.sequence: letter.state for letter in listed.values()}[sequence] == (
        metering_pb2.DEAD_LETTER_STATE_REPLAYED)
    error = await expect_rpc_error(
        metering_stub.DiscardDeadLetter(metering_pb2.DiscardDeadLetterRequest(sequence=sequence, reason="late")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "replayed" in error.details()


async def test_a_poison_batch_is_shown_decoded_and_a_replay_of_it_is_dead_lettered_again(
    metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "poisoned", metering_pb2.AGGREGATION_SUM)
    t = NOW - timedelta(minutes=5)
    source = await publish(jetstream, batch(organisation_id, project_id(), [E("x1", "NaN", t, "poisoned")]))
    letters = await eventually(lambda: dead_letters_by_source(metering_stub), lambda f: source in f)
    sequence = letters[source].sequence
    shown = await metering_stub.GetDeadLetter(metering_pb2.GetDeadLetterRequest(sequence=sequence))
    assert json.loads(shown.payload_json)["events"][0]["event_id"] == "x1"

    replay = await metering_stub.ReplayDeadLetter(metering_pb2.ReplayDeadLetterRequest(sequence=sequence))
    # Its cause is not fixed: the replayed message is dead-lettered again, as a new letter, and counts nothing.
    letters = await eventually(lambda: dead_letters_by_source(metering_stub), lambda f: replay.replay_sequence in f)
    assert letters[replay.replay_sequence].state == metering_pb2.DEAD_LETTER_STATE_PENDING
    assert (await whole_usage(metering_stub, organisation_id, "poisoned", START, END))[1] == 0


async def test_a_payload_that_does_not_decode_is_shown_with_why(metering_stub, jetstream) -> None:
    sequence = await hand_made_letter(jetstream, b"\xff\xfe not a protobuf", reason="garbage")
    shown = await metering_stub.GetDeadLetter(metering_pb2.GetDeadLetterRequest(sequence=sequence))
    assert shown.payload_json == "" and shown.payload_error == "not an EventBatchAccepted protobuf"
    assert shown.dead_letter.payload_size == len(b"\xff\xfe not a protobuf")


async def test_a_discarded_letter_keeps_its_reason_and_is_not_replayable(
    metering_stub, jetstream, organisation_id
) -> None:
    await define(metering_stub, organisation_id, "discards", metering_pb2.AGGREGATION_SUM)
    t = NOW - timedelta(minutes=5)
    sequence = await hand_made_letter(jetstream, batch(organisation_id, project_id(), [E("d1", "7", t, "discards")]))

    for reason, field in (("", "reason"), ("   ", "reason"), ("x" * 501, "reason")):
        error = await expect_rpc_error(
            metering_stub.DiscardDeadLetter(metering_pb2.DiscardDeadLetterRequest(sequence=sequence, reason=reason)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert error_field(error) == field and "xxxxxxxxxx" not in error.details()

    discarded = await metering_stub.DiscardDeadLetter(
        metering_pb2.DiscardDeadLetterRequest(sequence=sequence, reason="customer\nwithdrew the batch")
    )
    letter = discarded.dead_letter
    assert letter.state == metering_pb2.DEAD_LETTER_STATE_DISCARDED
    assert letter.discard_reason == "customer withdrew the batch" and letter.HasField("state_time")
    again = await metering_stub.DiscardDeadLetter(
        metering_pb2.DiscardDeadLetterRequest(sequence=sequence, reason="another reason")
    )
    assert again.dead_letter.discard_reason == "customer withdrew the batch"  # the first decision stands

    error = await expect_rpc_error(
        metering_stub.ReplayDeadLetter(metering_pb2.ReplayDeadLetterRequest(sequence=sequence)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "discarded" in error.details()
    shown = await metering_stub.GetDeadLetter(metering_pb2.GetDeadLetterRequest(sequence=sequence))
    assert shown.dead_letter.state == metering_pb2.DEAD_LETTER_STATE_DISCARDED and shown.payload_json
    assert (await whole_usage(metering_stub, organisation_id, "discards", START, END))[1] == 0


async def test_a_sequence_that_is_no_letter_is_not_found(metering_stub, jetstream) -> None:
    sequence = await hand_made_letter(jetstream, b"x")
    await DeadLetters(jetstream).set_state(sequence, DeadLetterState.DISCARDED, "made for this test")
    state_message = (await jetstream.stream_info(DEAD_LETTER_STREAM)).state.last_seq  # a state message, no letter
    for missing in (state_message, 10**15):
        for call in (
            metering_stub.GetDeadLetter(metering_pb2.GetDeadLetterRequest(sequence=missing)),
            metering_stub.ReplayDeadLetter(metering_pb2.ReplayDeadLetterRequest(sequence=missing)),
            metering_stub.DiscardDeadLetter(metering_pb2.DiscardDeadLetterRequest(sequence=missing, reason="r")),
        ):
            await expect_rpc_error(call, grpc.StatusCode.NOT_FOUND)
    error = await expect_rpc_error(
        metering_stub.GetDeadLetter(metering_pb2.GetDeadLetterRequest(sequence=0)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert error_field(error) == "sequence"
