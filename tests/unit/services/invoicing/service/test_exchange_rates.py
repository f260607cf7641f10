"""Exchange-rate use cases against in-memory repositories: a stored rate is never rewritten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing_runtime.errors import AlreadyExists, InvalidArgument
from services.invoicing.service import exchange_rates
from tests.unit.services.invoicing.service.fakes import FakeUnitOfWork, Tables

AT = datetime(2026, 11, 1, tzinfo=UTC)


async def add(tables: Tables, base="USD", quote="INR", rate="83.25", source="RBI", at=AT):
    return await exchange_rates.create_exchange_rate(
        FakeUnitOfWork(tables), base_currency=base, quote_currency=quote, rate=rate, source=source, effective_at=at
    )


async def test_a_rate_is_recorded_once_per_pair_and_effective_time():
    tables = Tables()
    row, created = await add(tables)
    assert created and row.rate == Decimal("83.25") and row.id.startswith("fx_")
    again, created_again = await add(tables)
    assert (again, created_again) == (row, False)
    with pytest.raises(AlreadyExists) as raised:
        await add(tables, rate="84")
    assert raised.value.field == "effective_time" and list(tables.rates.values()) == [row]


async def test_bad_rates_are_refused_without_a_transaction():
    tables = Tables()
    with pytest.raises(InvalidArgument):
        await add(tables, rate="-1")
    assert tables.rates == {}


async def test_rates_are_listed_newest_first_and_filtered():
    tables = Tables()
    await add(tables, at=AT)
    await add(tables, at=AT + timedelta(days=1), rate="83.5")
    await add(tables, base="EUR", at=AT, rate="90")
    listed = await exchange_rates.list_exchange_rates(FakeUnitOfWork(tables))
    assert [(r.base_currency, r.effective_at) for r in listed] == [
        ("USD", AT + timedelta(days=1)), ("EUR", AT), ("USD", AT)
    ]
    usd = await exchange_rates.list_exchange_rates(FakeUnitOfWork(tables), base_currency=" usd ")
    assert [r.rate for r in usd] == [Decimal("83.5"), Decimal("83.25")]
