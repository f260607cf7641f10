"""The sender's bookkeeping, free of I/O: events gathered into numbered batches, batches kept until acknowledged.

An event belongs to exactly one batch for its whole life; a batch is built once (its request serialised once)
and, when a stream breaks before its acknowledgement, written again unchanged, with the same sequence number and
the same event ids. ``pending`` counts every event added and not yet settled, which is what backpressure bounds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from billing.ingest.v1 import ingest_pb2

# Bytes a repeated message field adds to each element: a tag byte and a length of up to three bytes.
_FIELD_OVERHEAD = 4


@dataclass(eq=False)
class Batch:
    """Events sent together as one ``StreamEventsRequest`` and acknowledged together."""

    sequence: int
    events: list[ingest_pb2.Event]
    # Opaque per-event waiters (index -> whatever the sender resolves when the acknowledgement arrives).
    waiters: dict[int, Any] | None = None
    # How many times the batch was written to a stream; more than once means it was resent.
    writes: int = 0
    # When it was last written (the sender's clock), to notice acknowledgements that never come.
    written_at: float = 0.0
    _request: ingest_pb2.StreamEventsRequest | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def request(self) -> ingest_pb2.StreamEventsRequest:
        """The request, built on first use and reused for every resend."""
        if self._request is None:
            self._request = ingest_pb2.StreamEventsRequest(sequence=self.sequence, events=self.events)
        return self._request


class BatchBuffer:
    """Gathers events into batches of at most ``batch_size`` events and about ``max_batch_bytes`` bytes.

    ``add`` fills the open batch and seals it when full; ``seal`` closes a partial one (linger expired, flush).
    Sealed batches wait in ``ready`` in sequence order; ``take`` hands the next one to a stream, ``requeue``
    puts batches whose stream broke back at the front, and ``settle`` forgets an acknowledged batch.
    """

    def __init__(self, batch_size: int, max_batch_bytes: int, first_sequence: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_batch_bytes < 1:
            raise ValueError(f"max_batch_bytes must be at least 1, got {max_batch_bytes}")
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.ready: deque[Batch] = deque()
        # Sealed batches not yet acknowledged, oldest first (dicts keep insertion order, and sequences grow).
        self.unsettled: dict[int, Batch] = {}
        self.pending = 0
        self._next_sequence = first_sequence
        self._open: list[ingest_pb2.Event] = []
        self._open_bytes = 0
        self._open_waiters: dict[int, Any] | None = None

    @property
    def open_size(self) -> int:
        """Events in the batch still being filled."""
        return len(self._open)

    @property
    def last_sequence(self) -> int:
        """The sequence number of the last sealed batch (0 before the first)."""
        return self._next_sequence - 1

    def oldest_unsettled(self) -> int | None:
        """The sequence number of the oldest sealed batch not yet acknowledged, or None."""
        return next(iter(self.unsettled), None)

    def add(self, event: ingest_pb2.Event, waiter: Any = None) -> bool:
        """Add one event (with an optional waiter for its result); True if that sealed a batch."""
        size = event.ByteSize() + _FIELD_OVERHEAD
        # An event that would push a non-empty batch past the byte limit starts the next batch instead.
        sealed = bool(self._open) and self._open_bytes + size > self.max_batch_bytes and self.seal()
        if waiter is not None:
            if self._open_waiters is None:
                self._open_waiters = {}
            self._open_waiters[len(self._open)] = waiter
        self._open.append(event)
        self._open_bytes += size
        self.pending += 1
        if len(self._open) >= self.batch_size or self._open_bytes >= self.max_batch_bytes:
            return self.seal() or sealed
        return sealed

    def seal(self) -> bool:
        """Close the open batch if it has events; True if a batch was sealed."""
        if not self._open:
            return False
        batch = Batch(self._next_sequence, self._open, self._open_waiters)
        self.ready.append(batch)
        self.unsettled[batch.sequence] = batch
        self._next_sequence += 1
        self._open, self._open_bytes, self._open_waiters = [], 0, None
        return True

    def take(self) -> Batch | None:
        """The next sealed batch to write, or None."""
        return self.ready.popleft() if self.ready else None

    def requeue(self, batches: Iterable[Batch]) -> None:
        """Put batches that were written but not acknowledged back in front, oldest first."""
        self.ready.extendleft(sorted(batches, key=lambda batch: batch.sequence, reverse=True))

    def settle(self, batch: Batch) -> None:
        """Forget an acknowledged batch: its events no longer count as pending."""
        if self.unsettled.pop(batch.sequence, None) is not None:
            self.pending -= len(batch.events)
