"""BatchBuffer: batches by count and bytes, sequence numbers, requeue order, and the pending count."""

from __future__ import annotations

import pytest

from billing.ingest.v1 import ingest_pb2
from billing_client.batching import BatchBuffer


def event(n: int, padding: int = 0) -> ingest_pb2.Event:
    return ingest_pb2.Event(event_id=f"e{n}", metric="api.requests", value="1", unit="x" * padding)


def test_a_batch_is_sealed_when_it_reaches_batch_size():
    buffer = BatchBuffer(batch_size=3, max_batch_bytes=1_000_000)
    assert [buffer.add(event(n)) for n in range(7)] == [False, False, True, False, False, True, False]
    assert [len(batch) for batch in buffer.ready] == [3, 3]
    assert [batch.sequence for batch in buffer.ready] == [1, 2]
    assert buffer.open_size == 1 and buffer.pending == 7 and buffer.last_sequence == 2


def test_a_batch_is_sealed_before_an_event_would_push_it_past_max_bytes():
    size = event(0, padding=100).ByteSize()
    buffer = BatchBuffer(batch_size=1000, max_batch_bytes=3 * size)
    sealed = [buffer.add(event(n, padding=100)) for n in range(5)]
    assert sealed == [False, False, True, False, True]  # three events and their framing exceed the limit
    assert [len(batch) for batch in buffer.ready] == [2, 2]
    assert buffer.open_size == 1


def test_an_event_larger_than_max_bytes_travels_alone():
    buffer = BatchBuffer(batch_size=1000, max_batch_bytes=50)
    buffer.add(event(0))
    assert buffer.add(event(1, padding=200)) is True
    assert [[e.event_id for e in batch.events] for batch in buffer.ready] == [["e0"], ["e1"]]
    assert buffer.open_size == 0


def test_seal_closes_a_partial_batch_and_not_an_empty_one():
    buffer = BatchBuffer(batch_size=10, max_batch_bytes=1_000_000)
    assert buffer.seal() is False
    buffer.add(event(0))
    assert buffer.seal() is True
    assert buffer.seal() is False
    assert [len(batch) for batch in buffer.ready] == [1]


def test_requeued_batches_go_back_in_front_oldest_first_with_their_sequence_and_request():
    buffer = BatchBuffer(batch_size=1, max_batch_bytes=1_000_000)
    for n in range(4):
        buffer.add(event(n))
    first, second = buffer.take(), buffer.take()
    request = first.request
    buffer.requeue([second, first])
    assert [batch.sequence for batch in buffer.ready] == [1, 2, 3, 4]
    again = buffer.take()
    assert again is first and again.request is request  # built once, resent unchanged
    assert [e.event_id for e in again.request.events] == ["e0"] and again.request.sequence == 1


def test_settling_frees_pending_once_and_moves_the_oldest_unsettled_mark():
    buffer = BatchBuffer(batch_size=2, max_batch_bytes=1_000_000)
    for n in range(5):
        buffer.add(event(n))
    one, two = buffer.take(), buffer.take()
    assert buffer.oldest_unsettled() == 1
    buffer.settle(two)  # acknowledgements arrive in completion order
    assert buffer.pending == 3 and buffer.oldest_unsettled() == 1
    buffer.settle(one)
    buffer.settle(one)  # a second acknowledgement of the same batch changes nothing
    assert buffer.pending == 1 and buffer.oldest_unsettled() is None
    buffer.seal()
    assert buffer.oldest_unsettled() == 3


def test_waiters_are_kept_by_position_in_their_batch():
    buffer = BatchBuffer(batch_size=3, max_batch_bytes=1_000_000)
    buffer.add(event(0))
    buffer.add(event(1), waiter="w1")
    buffer.add(event(2))
    buffer.add(event(3), waiter="w3")
    buffer.seal()
    first, second = buffer.take(), buffer.take()
    assert first.waiters == {1: "w1"} and second.waiters == {0: "w3"}


@pytest.mark.parametrize(("batch_size", "max_bytes"), [(0, 10), (10, 0)])
def test_limits_must_be_positive(batch_size, max_bytes):
    with pytest.raises(ValueError):
        BatchBuffer(batch_size, max_bytes)
