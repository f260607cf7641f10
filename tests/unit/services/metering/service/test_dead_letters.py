"""Replaying and discarding dead letters, against an in-memory archive: the first decision stands, a replay may be
repeated, a discard may be repeated, and a replay never publishes anywhere but to the subject metering consumes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.metering.adapters.dead_letters import DeadLetter, Replayed
from services.metering.domain.dead_letters import DeadLetterState, LetterState
from services.metering.service import dead_letters

SUBJECT = "billing.ingest.v1.event_batch.accepted"


class Archive:
    def __init__(self, *letters: DeadLetter) -> None:
        self.letters = {letter.sequence: letter for letter in letters}
        self.states: dict[int, LetterState] = {}
        self.published: list[tuple[int, str, bytes]] = []
        self.race: LetterState | None = None  # a decision another replica stores just before ours

    async def list(self, limit, before):  # noqa: ANN001, ANN201
        raise NotImplementedError

    async def get(self, sequence: int):  # noqa: ANN201
        letter = self.letters.get(sequence)
        return None if letter is None else (replace(letter, state=await self.state(sequence)), b"payload")

    async def state(self, sequence: int) -> LetterState:
        return self.states.get(sequence, LetterState())

    async def set_state(self, sequence: int, state: DeadLetterState, reason: str = "") -> bool:
        if self.race is not None:
            self.states[sequence], self.race = self.race, None
        if sequence in self.states:
            return False
        self.states[sequence] = LetterState(state, None, reason)
        return True

    async def republish(self, sequence: int, subject: str, payload: bytes) -> Replayed:
        self.published.append((sequence, subject, payload))
        return Replayed(100, len(self.published) > 1)


def letter(sequence: int = 1, subject: str = SUBJECT) -> DeadLetter:
    return DeadLetter(sequence, "BILLING_INGEST", 7, subject, "why", 1, None, 7)


async def test_replay_marks_then_publishes_and_may_be_repeated() -> None:
    archive = Archive(letter())
    first = await dead_letters.replay_dead_letter(archive, 1)
    second = await dead_letters.replay_dead_letter(archive, 1)
    assert first.letter.state.state is DeadLetterState.REPLAYED and not first.replayed.duplicate
    assert second.replayed.duplicate and archive.published == [(1, SUBJECT, b"payload")] * 2


async def test_a_discarded_letter_is_not_replayed_even_when_the_discard_wins_a_race() -> None:
    archive = Archive(letter(1), letter(2))
    await dead_letters.discard_dead_letter(archive, 1, "no")
    with pytest.raises(FailedPrecondition):
        await dead_letters.replay_dead_letter(archive, 1)
    archive.race = LetterState(DeadLetterState.DISCARDED, None, "other replica")
    with pytest.raises(FailedPrecondition):
        await dead_letters.replay_dead_letter(archive, 2)
    assert archive.published == []


async def test_discard_keeps_the_first_reason_and_refuses_a_replayed_letter() -> None:
    archive = Archive(letter(1), letter(2))
    assert (await dead_letters.discard_dead_letter(archive, 1, " first\treason ")).state.reason == "first reason"
    assert (await dead_letters.discard_dead_letter(archive, 1, "second")).state.reason == "first reason"
    await dead_letters.replay_dead_letter(archive, 2)
    with pytest.raises(FailedPrecondition):
        await dead_letters.discard_dead_letter(archive, 2, "too late")


@pytest.mark.parametrize("reason", ["", "  \n ", "x" * 501])
async def test_a_discard_needs_a_bounded_reason(reason: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        await dead_letters.discard_dead_letter(Archive(letter()), 1, reason)
    assert error.value.field == "reason" and "xxx" not in error.value.message


async def test_unknown_sequences_and_foreign_subjects() -> None:
    archive = Archive(letter(1, subject="billing.payments.v1.something"))
    with pytest.raises(NotFound):
        await dead_letters.get_dead_letter(archive, 2)
    with pytest.raises(InvalidArgument):
        await dead_letters.get_dead_letter(archive, 0)
    with pytest.raises(FailedPrecondition):
        await dead_letters.replay_dead_letter(archive, 1)
    assert archive.published == [] and archive.states == {}
