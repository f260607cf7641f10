"""The dead-letter stream: messages metering could not process, with why, kept 30 days for inspection.

Each dead letter is the original payload, published on ``billing.dead_letter.metering.event_batch`` with
headers naming the reason and where it came from. ``Nats-Msg-Id`` is derived from the source stream and
sequence, so dead-lettering the same message twice (a replica racing another) stores it once.

What an operator did with a letter (replayed it, discarded it) is kept in the same stream, as a state message on
``billing.dead_letter.metering.state.<letter sequence>``: the last message on that subject is the letter's state
(none: pending). A state is written with ``Nats-Expected-Last-Subject-Sequence: 0``, so only the first decision is
stored and a replay racing a discard cannot both win. State messages age out with the letters, and need no table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from billing.ingest.v1 import events_pb2
from billing_runtime import messaging
from services.metering.domain.dead_letters import DeadLetterState, LetterState

STREAM = "BILLING_DEAD_LETTERS"
SUBJECTS = ["billing.dead_letter.>"]
SUBJECT = "billing.dead_letter.metering.event_batch"
STATE_SUBJECT_PREFIX = "billing.dead_letter.metering.state."
MAX_AGE_SECONDS = 30 * 24 * 3600.0
MAX_BYTES = 256 * 1024 * 1024
MAX_REASON_LENGTH = 1024
MAX_PAYLOAD_JSON_CHARACTERS = 64 * 1024

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
    state: LetterState = LetterState()


@dataclass(frozen=True)
class Replayed:
    stream_sequence: int
    duplicate: bool


def state_subject(sequence: int) -> str:
    return f"{STATE_SUBJECT_PREFIX}{sequence}"


def replay_message_id(sequence: int) -> str:
    """The same for every replay of one letter: JetStream stores repeats within its duplicate window once."""
    return f"metering-dead-letter-replay:{STREAM}:{sequence}"


class DeadLetters:
    def __init__(self, js: JetStreamContext, *, replicas: int = 1) -> None:
        self._js = js
        self._limits = messaging.StreamLimits(max_age_seconds=MAX_AGE_SECONDS, max_bytes=MAX_BYTES, replicas=replicas)

    async def ensure_stream(self) -> None:
        await messaging.ensure_stream(self._js, STREAM, SUBJECTS, self._limits)

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
                found.append(_dead_letter(message, await self.state(sequence)))
            sequence -= 1
        more = len(found) == limit and sequence >= max(first, 1)
        return found, (found[-1].sequence if more else None)

    async def get(self, sequence: int) -> tuple[DeadLetter, bytes] | None:
        """One letter and its original payload; None when there is no letter with that sequence (any more)."""
        try:
            message = await self._js.get_msg(STREAM, sequence)
        except NotFoundError:
            return None
        if message.subject != SUBJECT:
            return None
        return _dead_letter(message, await self.state(sequence)), message.data or b""

    async def state(self, sequence: int) -> LetterState:
        try:
            message = await self._js.get_last_msg(STREAM, state_subject(sequence))
        except NotFoundError:
            return LetterState()
        try:
            body = json.loads(message.data or b"{}")
            state = DeadLetterState(body["state"])
        except (ValueError, KeyError, TypeError):
            return LetterState()
        return LetterState(state, message.time, str(body.get("reason", "")))

    async def set_state(self, sequence: int, state: DeadLetterState, reason: str = "") -> bool:
        """Record the letter's state if it has none yet. False when another decision was stored first."""
        body = json.dumps({"state": state.value, "reason": reason}).encode()
        try:
            await self._js.publish(
                state_subject(sequence), body, headers={"Nats-Expected-Last-Subject-Sequence": "0"}, timeout=5
            )
        except APIError as error:
            if error.err_code == _WRONG_LAST_SEQUENCE:
                return False
            raise
        return True

    async def republish(self, sequence: int, subject: str, payload: bytes) -> Replayed:
        """Publish a letter's payload to its original subject again, deduplicated per letter."""
        ack = await self._js.publish(
            subject, payload, headers={"Nats-Msg-Id": replay_message_id(sequence), REPLAY_OF: str(sequence)},
            timeout=5,
        )
        return Replayed(ack.seq, bool(ack.duplicate))


_WRONG_LAST_SEQUENCE = 10071  # JetStream's "wrong last sequence" error code
REPLAY_OF = "Billing-Replay-Of-Dead-Letter"


def _dead_letter(message, state: LetterState) -> DeadLetter:  # noqa: ANN001 - nats' RawStreamMsg
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
        state=state,
    )


@dataclass(frozen=True)
class DecodedPayload:
    json: str
    truncated: bool
    error: str


def decode_payload(payload: bytes, limit: int = MAX_PAYLOAD_JSON_CHARACTERS) -> DecodedPayload:
    """An event batch as JSON (its organisation, project and events), cut at ``limit`` characters; or why not."""
    batch = events_pb2.EventBatchAccepted()
    try:
        batch.ParseFromString(payload)
    except DecodeError:
        return DecodedPayload("", False, "not an EventBatchAccepted protobuf")
    text = json_format.MessageToJson(batch, preserving_proto_field_name=True, indent=None)
    if len(text) > limit:
        return DecodedPayload(text[:limit], True, "")
    return DecodedPayload(text, False, "")
