"""What a sender reports back: counters, rejected events with their reasons, per-event results, and errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc


class EventStatus(enum.Enum):
    """What ingest did with one event."""

    ACCEPTED = "accepted"  # durable in JetStream; it will be counted once
    DUPLICATE = "duplicate"  # its id was already received; counted once, not again
    REJECTED = "rejected"  # not valid; nothing was stored for it


@dataclass(frozen=True)
class EventResult:
    """The outcome of one event, as :meth:`EventSender.send_and_wait` returns it."""

    event_id: str
    status: EventStatus
    reason: str = ""
    field: str = ""


@dataclass(frozen=True)
class RejectedEvent:
    """An event ingest refused, with the reason and the field at fault. Resending it unchanged cannot help."""

    event_id: str
    metric: str
    value: str
    reason: str
    field: str
    # Where it was: the batch's sequence number and its position in the batch.
    sequence: int
    index: int


@dataclass(frozen=True)
class SenderStats:
    """A snapshot of a sender's counters since it started."""

    # Events handed to send() and queued.
    queued: int
    # Outcomes reported by ingest.
    accepted: int
    duplicate: int
    rejected: int
    # Queued and not yet acknowledged (bounded by max_pending_events).
    pending: int
    batches_written: int
    batches_acknowledged: int
    # Batches written again on a new stream after the previous one broke before acknowledging them.
    batches_resent: int
    # Streams opened after the first.
    reconnects: int


class EventSenderError(Exception):
    """Base class of the client's errors."""


class SenderClosed(EventSenderError):
    """send() after close(): the event was not queued."""


class SenderFailed(EventSenderError):
    """The sender stopped on an error retrying cannot fix (a bad API key, a refused batch) or gave up retrying.

    ``code`` is the gRPC status code, ``details`` the server's message, and ``unacknowledged`` the number of
    queued events whose fate is unknown (they may or may not have been stored: sending them again with the same
    event ids through a new sender is safe).
    """

    def __init__(self, code: grpc.StatusCode, details: str, unacknowledged: int, *, gave_up: bool = False) -> None:
        self.code = code
        self.details = details
        self.unacknowledged = unacknowledged
        self.gave_up = gave_up
        what = "gave up retrying" if gave_up else "stopped"
        super().__init__(
            f"event sender {what}: {code.name}: {details} ({unacknowledged} event(s) not acknowledged)"
        )
