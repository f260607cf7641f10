from __future__ import annotations

from types import SimpleNamespace

import asyncpg
import pytest

from services.metering.config import MeteringSettings
from services.metering.domain.event_batch import EventColumns
from services.metering.entrypoints.consumer import (
    FetchSizing,
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
    settings = MeteringSettings(database_url="postgresql://x", consumer_ack_wait_seconds=30, consumer_max_deliver=6)
    config = consumer_config(settings)
    assert config.durable_name == "metering-events"
    assert config.filter_subject == "billing.ingest.v1.event_batch.accepted"
    assert config.ack_wait == 30 and config.max_deliver == 6
    # JetStream requires fewer backoff steps than deliveries; the first is the ack wait itself.
    assert config.backoff == [30, 60, 120, 240, 300]


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
