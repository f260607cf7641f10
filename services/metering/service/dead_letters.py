"""The event batches metering could not process: read them back, replay them once their cause is fixed, or
discard them with a reason."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from billing_runtime import paging
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.metering.adapters.dead_letters import DeadLetter, Replayed
from services.metering.adapters.messages import EVENT_BATCH_ACCEPTED
from services.metering.domain import dead_letters as rules
from services.metering.domain.dead_letters import DeadLetterState, LetterState

# What a replay may publish to: the subjects metering consumes (and so dead-letters) and nothing else.
REPLAYABLE_SUBJECTS = frozenset({EVENT_BATCH_ACCEPTED})


class DeadLetterArchive(Protocol):
    async def list(self, limit: int, before: int | None) -> tuple[list[DeadLetter], int | None]: ...

    async def get(self, sequence: int) -> tuple[DeadLetter, bytes] | None: ...

    async def state(self, sequence: int) -> LetterState: ...

    async def set_state(self, sequence: int, state: DeadLetterState, reason: str = "") -> bool: ...

    async def republish(self, sequence: int, subject: str, payload: bytes) -> Replayed: ...


@dataclass(frozen=True)
class Replay:
    letter: DeadLetter
    replayed: Replayed


async def list_dead_letters(
    archive: DeadLetterArchive, page_size: int, page_token: str
) -> tuple[list[DeadLetter], str]:
    """Newest first. The page token is the dead-letter sequence the next page continues below."""
    size = paging.page_size(page_size)
    before = None
    if page_token:
        if not page_token.isdigit() or int(page_token) <= 0:
            raise InvalidArgument("is not a token returned by a previous page", field="page_token")
        before = int(page_token)
    letters, next_before = await archive.list(size, before)
    return letters, str(next_before) if next_before else ""


async def get_dead_letter(archive: DeadLetterArchive, sequence: int) -> tuple[DeadLetter, bytes]:
    if sequence <= 0:
        raise InvalidArgument("must be a dead letter's sequence (a positive number)", field="sequence")
    found = await archive.get(sequence)
    if found is None:
        raise NotFound(f"no dead letter with sequence {sequence} (it may have aged out)")
    return found


async def replay_dead_letter(archive: DeadLetterArchive, sequence: int) -> Replay:
    """Mark the letter replayed (unless it was discarded), then publish its payload to its original subject.

    Marking first means a discard racing this replay cannot also win; if the publish then fails, the caller's
    retry finds it replayed and publishes again (under the same message id, so still once)."""
    letter, payload = await get_dead_letter(archive, sequence)
    if letter.subject not in REPLAYABLE_SUBJECTS:
        raise FailedPrecondition(f"a dead letter from {letter.subject!r} cannot be replayed", field="sequence")
    rules.check_replayable(letter.state.state)
    if letter.state.state is DeadLetterState.PENDING and not await archive.set_state(
        sequence, DeadLetterState.REPLAYED
    ):
        rules.check_replayable((await archive.state(sequence)).state)
    replayed = await archive.republish(sequence, letter.subject, payload)
    return Replay(await _reread(archive, letter), replayed)


async def discard_dead_letter(archive: DeadLetterArchive, sequence: int, reason: str) -> DeadLetter:
    """Mark the letter discarded with the reason. Discarding a discarded letter returns it unchanged."""
    reason = rules.discard_reason(reason)
    letter, _ = await get_dead_letter(archive, sequence)
    rules.check_discardable(letter.state.state)
    if letter.state.state is DeadLetterState.PENDING and not await archive.set_state(
        sequence, DeadLetterState.DISCARDED, reason
    ):
        rules.check_discardable((await archive.state(sequence)).state)
    return await _reread(archive, letter)


async def _reread(archive: DeadLetterArchive, letter: DeadLetter) -> DeadLetter:
    return replace(letter, state=await archive.state(letter.sequence))
