"""Payments' in-memory store and the unit of work over it, for every unit test of payments' use cases."""

from __future__ import annotations

import pytest

from tests.unit.services.payments.service.fakes import FakeUnit, Store


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def uow(store: Store):
    return lambda: FakeUnit(store)
