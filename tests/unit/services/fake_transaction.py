"""The transaction part of the services' in-memory units of work: commit keeps the changes, an exception rolls
them back (events recorded in the transaction included), and repositories are refused outside the block."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from google.protobuf.message import Message


class FakeTransaction:
    """Works on ``tables`` (any object whose attributes are the stored data); counts commits and rollbacks, so a
    test can say that a use case opened no transaction, or that it rolled back."""

    def __init__(self, tables: Any) -> None:
        self.tables = tables
        self.commits = 0
        self.rollbacks = 0
        self.open = False
        self._before: Any = None

    def inside(self) -> Any:
        """The tables, for a repository: only while the transaction is open."""
        assert self.open, "repositories are used only inside 'async with uow'"
        return self.tables

    async def __aenter__(self) -> Self:
        assert not self.open, "a unit of work is one transaction, not re-entered"
        self._before = copy.deepcopy(self.tables)
        self.open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.open = False
        if exc_type is None:
            self.commits += 1
        else:
            self.tables.__dict__.update(self._before.__dict__)
            self.rollbacks += 1


class FakeOutbox:
    """Writes events into the transaction's ``tables.outbox``, so they survive exactly when it commits."""

    async def record(self, uow: FakeTransaction, subject: str, event_id: str, message: Message) -> None:
        uow.inside().outbox.append((subject, event_id, message))

    async def record_many(self, uow: FakeTransaction, subject: str, events: Sequence[tuple[str, Message]]) -> None:
        uow.inside().outbox.extend((subject, event_id, message) for event_id, message in events)
