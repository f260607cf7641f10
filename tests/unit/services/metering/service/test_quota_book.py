"""The QuotaBook with in-memory fakes and a hand-moved clock: refresh, the lag bound, idle pairs, period change,
shared reads and the first overage."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.metering.service.quota_book import QuotaBook, UsageKey

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
APRIL = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
KEY = UsageKey("org_1", "api.calls", *MARCH)
OTHER = UsageKey("org_2", "api.calls", *MARCH)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeUsage:
    """Usage per key as metering would answer it; records each batched read."""

    def __init__(self) -> None:
        self.values: dict[UsageKey, Decimal] = {}
        self.reads: list[list[UsageKey]] = []
        self.gate: asyncio.Event | None = None

    async def read(self, keys: Sequence[UsageKey]) -> list[Decimal]:
        self.reads.append(list(keys))
        if self.gate is not None:
            await self.gate.wait()
        return [self.values.get(key, Decimal(0)) for key in keys]


class FakeOverages:
    def __init__(self) -> None:
        self.stored: dict[tuple[UsageKey, Decimal], datetime] = {}
        self.calls = 0

    async def record(self, observed):
        self.calls += 1
        for key, limit, moment in observed:
            self.stored.setdefault((key, limit), moment)
        return {key: self.stored[(key, limit)] for key, limit, _ in observed}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def usage() -> FakeUsage:
    return FakeUsage()


@pytest.fixture
def overages() -> FakeOverages:
    return FakeOverages()


@pytest.fixture
def book(usage: FakeUsage, overages: FakeOverages, clock: Clock) -> QuotaBook:
    return QuotaBook(usage, overages, max_lag=0.5, refresh_interval=0.2, idle_seconds=300, clock=clock,
                     wall=lambda: datetime(2026, 3, 10, tzinfo=UTC))


async def test_the_first_check_of_a_pair_reads_it_and_later_ones_answer_from_memory(book, usage, clock):
    usage.values[KEY] = Decimal(7)
    assert book.fresh(KEY) is None
    [entry] = await book.usage([KEY])
    assert entry.used == Decimal(7)
    usage.values[KEY] = Decimal(8)
    clock.now += 0.4
    assert book.fresh(KEY).used == Decimal(7)  # within the bound: memory, no read
    assert usage.reads == [[KEY]]


async def test_a_value_older_than_the_lag_bound_is_never_served(book, usage, clock):
    usage.values[KEY] = Decimal(7)
    await book.usage([KEY])
    usage.values[KEY] = Decimal(9)
    clock.now += 0.5001  # the refresher fell behind
    assert book.fresh(KEY) is None
    [entry] = await book.usage([KEY])
    assert entry.used == Decimal(9)
    assert len(usage.reads) == 2


async def test_a_refresh_rereads_every_tracked_pair_in_one_batch(book, usage, clock):
    await book.usage([KEY])
    await book.usage([OTHER])
    usage.values[KEY], usage.values[OTHER] = Decimal(3), Decimal(4)
    clock.now += 0.2
    await book.refresh()
    assert sorted(usage.reads[-1]) == sorted([KEY, OTHER])
    clock.now += 0.45  # 0.45 s after the refresh started: still within the bound
    assert (book.fresh(KEY).used, book.fresh(OTHER).used) == (Decimal(3), Decimal(4))


async def test_pairs_nobody_checks_are_dropped_after_the_idle_time(book, usage, clock):
    await book.usage([KEY])
    await book.usage([OTHER])
    clock.now += 200
    await book.usage([KEY])  # KEY is checked again; OTHER is not
    clock.now += 200
    await book.refresh()
    assert usage.reads[-1] == [KEY]
    assert len(book) == 1


async def test_a_new_period_is_a_new_pair_read_on_its_own(book, usage, clock):
    april = UsageKey("org_1", "api.calls", *APRIL)
    usage.values[KEY], usage.values[april] = Decimal(900), Decimal(0)
    [march_entry] = await book.usage([KEY])
    [april_entry] = await book.usage([april])
    assert (march_entry.used, april_entry.used) == (Decimal(900), Decimal(0))
    assert usage.reads == [[KEY], [april]]


async def test_concurrent_checks_of_an_unread_pair_share_one_read(book, usage):
    usage.gate = asyncio.Event()
    waiting = [asyncio.create_task(book.usage([KEY])) for _ in range(5)]
    await asyncio.sleep(0)
    usage.gate.set()
    entries = await asyncio.gather(*waiting)
    assert len(usage.reads) == 1
    assert len({id(entry[0]) for entry in entries}) == 1


async def test_a_batch_reads_what_is_missing_in_one_read(book, usage):
    await book.usage([KEY])
    third = UsageKey("org_3", "api.calls", *MARCH)
    await book.usage([KEY, OTHER, third, OTHER])
    assert usage.reads == [[KEY], [OTHER, third]]


async def test_a_failed_read_fails_the_check_and_is_not_remembered(book, usage):
    async def broken(keys):
        raise ConnectionError("database down")

    usage.read = broken
    with pytest.raises(ConnectionError):
        await book.usage([KEY])
    assert book.fresh(KEY) is None


async def test_the_first_overage_is_recorded_once_and_the_stored_moment_wins(book, usage, overages):
    earlier = datetime(2026, 3, 2, tzinfo=UTC)
    overages.stored[(KEY, Decimal(100))] = earlier  # another replica saw it first
    usage.values[KEY] = Decimal(101)
    [entry] = await book.usage([KEY])
    assert await book.first_over(KEY, entry, Decimal(100)) == earlier
    assert await book.first_over(KEY, entry, Decimal(100)) == earlier
    assert overages.calls == 1


async def test_under_the_limit_nothing_is_recorded(book, usage, overages):
    usage.values[KEY] = Decimal(100)
    [entry] = await book.usage([KEY])
    assert await book.first_over(KEY, entry, Decimal(100)) is None
    assert overages.calls == 0


async def test_a_refresh_records_an_overage_of_a_known_limit(book, usage, overages, clock):
    usage.values[KEY] = Decimal(50)
    [entry] = await book.usage([KEY])
    await book.first_over(KEY, entry, Decimal(100))  # the check told the book the limit
    usage.values[KEY] = Decimal(150)
    clock.now += 0.2
    await book.refresh()
    assert entry.first_over == datetime(2026, 3, 10, tzinfo=UTC)
    assert overages.stored == {(KEY, Decimal(100)): datetime(2026, 3, 10, tzinfo=UTC)}


async def test_another_limit_forgets_the_overage_of_the_old_one(book, usage, overages):
    usage.values[KEY] = Decimal(150)
    [entry] = await book.usage([KEY])
    assert await book.first_over(KEY, entry, Decimal(100)) is not None
    assert await book.first_over(KEY, entry, Decimal(1000)) is None  # upgraded: not over the new limit


def test_the_refresh_interval_must_be_shorter_than_the_lag_bound(usage, overages):
    with pytest.raises(ValueError, match="shorter than the lag bound"):
        QuotaBook(usage, overages, max_lag=0.2, refresh_interval=0.2)
