"""The dead-letter stream: messages metering could not process, with why, kept 30 days for inspection.

Each dead letter is the original payload, published on ``billing.dead_letter.metering.event_batch`` with
headers naming the reason and where it came from. ``Nats-Msg-Id`` is derived from the source stream and
sequence, so dead-lettering the same message twice (a replica racing another) stores it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from billing_runtime import messaging

STREAM = "BILLING_DEAD_LETTERS"
SUBJECTS = ["billing.dead_letter.>"]
SUBJECT = "billing.dead_letter.metering.event_batch"
MAX_AGE_SECONDS = 30 * 24 * 3600.0
MAX_REASON_LENGTH = 1024

REASON = "Billing-Dead-Letter-Reason"
SOURCE_STREAM = "Billing-Source-Stream"
SOURCE_SEQUENCE = "Billing-Source-Sequence"
SOURCE_SUBJECT = "Billing-Source-Subject"
DELIVERY_COUNT = "Billing-Delivery-Count"


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    source_stream: str
    source_sequence: int
    subject: str
    reason: str
    delivery_count: int
    dead_letter_time: datetime | None
    payload_size: int


class DeadLetters:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def ensure_stream(self) -> None:
        await messaging.ensure_stream(self._js, STREAM, SUBJECTS, max_age_seconds=MAX_AGE_SECONDS)

    async def publish(
        self,
        payload: bytes,
        *,
        reason: str,
        source_stream: str,
        source_sequence: int,
        source_subject: str,
        delivery_count: int,
    ) -> None:
        """Store the payload with its reason; returns once JetStream has it (so the original may be dropped)."""
        # Header values are one line each.
        reason = " ".join(reason.split())[:MAX_REASON_LENGTH] or "unknown"
        headers = {
            "Nats-Msg-Id": f"metering:{source_stream}:{source_sequence}",
            REASON: reason,
            SOURCE_STREAM: source_stream,
            SOURCE_SEQUENCE: str(source_sequence),
            SOURCE_SUBJECT: source_subject,
            DELIVERY_COUNT: str(delivery_count),
        }
        await self._js.publish(SUBJECT, payload, headers=headers, timeout=5)

    async def list(self, limit: int, before: int | None) -> tuple[list[DeadLetter], int | None]:
        """Metering's dead letters, newest first: up to ``limit`` with a sequence below ``before``.

        Returns them and the sequence to continue below (None when there are no more)."""
        try:
            info = await self._js.stream_info(STREAM)
        except NotFoundError:
            return [], None
        first, last = info.state.first_seq, info.state.last_seq
        sequence = last if before is None else min(before - 1, last)
        found: list[DeadLetter] = []
        while sequence >= first and sequence > 0 and len(found) < limit:
            try:
                message = await self._js.get_msg(STREAM, sequence)
            except NotFoundError:  # deleted, or aged out while we read
                sequence -= 1
                continue
            if message.subject == SUBJECT:
                found.append(_dead_letter(message))
            sequence -= 1
        more = len(found) == limit and sequence >= max(first, 1)
        return found, (found[-1].sequence if more else None)


def _dead_letter(message) -> DeadLetter:  # noqa: ANN001 - nats' RawStreamMsg
    headers = message.headers or {}

    def number(name: str) -> int:
        try:
            return int(headers.get(name, "0"))
        except ValueError:
            return 0

    return DeadLetter(
        sequence=message.seq or 0,
        source_stream=headers.get(SOURCE_STREAM, ""),
        source_sequence=number(SOURCE_SEQUENCE),
        subject=headers.get(SOURCE_SUBJECT, ""),
        reason=headers.get(REASON, ""),
        delivery_count=number(DELIVERY_COUNT),
        dead_letter_time=message.time,
        payload_size=len(message.data or b""),
    )
