from __future__ import annotations

import asyncio
from types import SimpleNamespace

import asyncpg
import pytest

from services.metering.config import MeteringSettings
from services.metering.domain.event_batch import EventColumns
from services.metering.entrypoints.consumer import (
    FetchSizing,
    KeepAlive,
    consumer_config,
    is_data_error,
    is_transient,
)


def deliveries(*sizes: int) -> list:
    return [SimpleNamespace(columns=EventColumns(event_ids=["e"] * size)) for size in sizes]


def test_fetches_aim_at_one_transaction_of_events() -> None:
    sizing = FetchSizing(max_messages=256, events_per_fetch=5000)
    assert sizing.messages == 8  # cautious before the first fetch
    for _ in range(20):
        sizing.observe(deliveries(1000, 1000))
    assert sizing.messages == 5
    for _ in range(20):
        sizing.observe(deliveries(1, 1, 1))
    assert sizing.messages == 256  # tiny messages: as many as allowed
    for _ in range(20):
        sizing.observe(deliveries(50_000))
    assert sizing.messages == 1


def test_a_fetch_of_poison_only_changes_nothing() -> None:
    sizing = FetchSizing(max_messages=256, events_per_fetch=5000)
    sizing.observe([SimpleNamespace(columns=None)])
    assert sizing.messages == 8


def test_the_consumer_redelivers_with_backoff_within_max_deliver() -> None:
    settings = MeteringSettings(database_url="postgresql://x", consumer_ack_wait_seconds=30, consumer_max_deliver=7)
    config = consumer_config(settings)
    assert config.durable_name == "metering-events"
    assert config.filter_subject == "billing.ingest.v1.event_batch.accepted"
    assert config.ack_wait == 30 and config.max_deliver == 7
    # JetStream requires fewer backoff steps than deliveries; the first is the ack wait itself. The first three
    # redeliveries come after one ack wait (a killed process's work comes back soon), then twice as long each time.
    assert config.backoff == [30, 30, 30, 60, 120, 240]


def test_the_default_ack_wait_is_short_and_backs_off_after_three_quick_redeliveries() -> None:
    config = consumer_config(MeteringSettings(database_url="postgresql://x"))
    assert config.ack_wait == 3 and config.max_deliver == 10
    assert config.backoff == [3, 3, 3, 6, 12, 24, 48, 96, 192]


class FakeMsg:
    """Records in-progress acknowledgements; ``ack`` settles it like nats' Msg."""

    def __init__(self) -> None:
        self.in_progress_calls = 0
        self.is_acked = False

    async def in_progress(self) -> None:
        self.in_progress_calls += 1

    async def ack(self) -> None:
        self.is_acked = True


async def beats(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_held_messages_are_kept_alive_until_released_or_settled() -> None:
    alive = KeepAlive(interval=0)
    held, settled, released = FakeMsg(), FakeMsg(), FakeMsg()
    alive.hold([held, settled, released])
    await beats(5)
    assert min(m.in_progress_calls for m in (held, settled, released)) >= 1

    await settled.ack()
    alive.release([released])
    counts = settled.in_progress_calls, released.in_progress_calls
    await beats(5)
    assert (settled.in_progress_calls, released.in_progress_calls) == counts  # neither touched again
    assert alive.held == 1
    before = held.in_progress_calls
    await beats(5)
    assert held.in_progress_calls > before
    await alive.close()
    assert alive.held == 0


async def test_the_keep_alive_task_ends_when_nothing_is_held_and_starts_again_on_hold() -> None:
    alive = KeepAlive(interval=0)
    first = FakeMsg()
    alive.hold([first])
    alive.release([first])
    await beats(5)
    assert first.in_progress_calls == 0
    second = FakeMsg()
    alive.hold([second])
    await beats(5)
    assert second.in_progress_calls >= 1
    await alive.close()


@pytest.mark.parametrize(
    ("error", "transient", "data"),
    [
        (ConnectionRefusedError(), True, False),
        (asyncpg.CannotConnectNowError("starting up"), True, False),
        (asyncpg.DeadlockDetectedError("deadlock"), True, False),
        (asyncpg.NumericValueOutOfRangeError("overflow"), False, True),
        (asyncpg.CheckViolationError("check"), False, True),
        (asyncpg.UndefinedTableError("no table"), False, False),  # a bug: retried later, then dead-lettered
    ],
)
def test_errors_are_classified(error: BaseException, transient: bool, data: bool) -> None:
    assert is_transient(error) is transient
    assert is_data_error(error) is data


async def test_when_nats_is_away_a_round_of_keep_alive_stops_at_the_first_failure() -> None:
    class Unreachable(FakeMsg):
        async def in_progress(self) -> None:
            self.in_progress_calls += 1
            raise ConnectionError("nats away")

    alive = KeepAlive(interval=0)
    messages = [Unreachable() for _ in range(3)]
    alive.hold(messages)
    await beats(3)
    # Each round tries one message and gives up: no warning per held message; they stay held for the next round.
    assert messages[0].in_progress_calls >= 1 and messages[1].in_progress_calls == 0
    assert alive.held == 3
    await alive.close()
