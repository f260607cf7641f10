"""Transactional outbox: an event row is written in the same transaction as the state change, and a relay
publishes it to JetStream with ``Nats-Msg-Id`` set to the event id, so a crash between publish and mark
re-publishes an event JetStream then drops as a duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from google.protobuf.message import Message
from nats.js import JetStreamContext
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing_runtime import metrics
from billing_runtime.database import UnitOfWork
from billing_runtime.logging import get_logger
from billing_runtime.tracing import inject_context, producer_span

log = get_logger(__name__)


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """The ``outbox`` table in the metadata's schema; every service declares one."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Index("outbox_unpublished_idx", "id", postgresql_where=sa.text("published_at IS NULL")),
    )


def create_outbox_table(op, schema: str) -> None:
    """Create the outbox table (and its index) in ``schema``; used by each service's first migration."""
    outbox_table(sa.MetaData(schema=schema)).create(op.get_bind())


class Outbox:
    """Records events inside a unit of work; wakes the relay once the transaction has committed."""

    def __init__(self, table: sa.Table, wake: asyncio.Event | None = None) -> None:
        self.table = table
        self._wake = wake

    def wake_on_commit(self, relay_wake: asyncio.Event) -> None:
        """Have every commit that recorded an event wake the relay at once, instead of at its next poll."""
        self._wake = relay_wake

    async def record(
        self, uow: UnitOfWork, subject: str, event_id: str, message: Message, headers: dict[str, str] | None = None
    ) -> None:
        await self.record_many(uow, subject, [(event_id, message)], headers)

    async def record_many(
        self,
        uow: UnitOfWork,
        subject: str,
        events: Sequence[tuple[str, Message]],
        headers: dict[str, str] | None = None,
    ) -> None:
        """Record several (event id, message) on one subject with one statement (an invoice run issues
        hundreds of invoices per transaction)."""
        if not events:
            return
        # The consumer continues the trace of the request that caused the events.
        traced = inject_context(dict(headers or {}))
        await uow.connection.execute(
            sa.insert(self.table),
            [
                {"event_id": event_id, "subject": subject, "payload": message.SerializeToString(), "headers": traced}
                for event_id, message in events
            ],
        )
        recorded, count = metrics.OUTBOX_RECORDED.labels(subject), len(events)
        uow.after_commit(lambda: recorded.inc(count))
        if self._wake is not None:
            uow.after_commit(self._wake.set)


class OutboxRelay:
    """Publishes unpublished outbox rows in id order. Replicas share the work with ``SKIP LOCKED``."""

    # Published rows are kept a week (to answer "was it sent?"), then pruned about once an hour.
    RETENTION = timedelta(days=7)
    PRUNE_EVERY_SECONDS = 3600.0

    def __init__(
        self, engine: AsyncEngine, js: JetStreamContext, table: sa.Table, *, poll_seconds: float = 1.0
    ) -> None:
        self._engine = engine
        self._js = js
        self._table = table
        self._poll_seconds = poll_seconds
        self._last_prune = 0.0
        self.wake = asyncio.Event()

    async def publish_pending(self, batch_size: int = 100) -> int:
        """Publish one batch; returns how many rows were published."""
        t = self._table
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(t.c.id, t.c.event_id, t.c.subject, t.c.payload, t.c.headers)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                headers = {**row.headers, "Nats-Msg-Id": row.event_id}
                # Continues the trace of the transaction that recorded the row (its traceparent), not the relay's.
                with producer_span(row.subject, headers):
                    await self._js.publish(row.subject, row.payload, headers=headers, timeout=5)
            if rows:
                await self._mark_published(conn, [row.id for row in rows])
        metrics.OUTBOX_PUBLISHED.inc(len(rows))
        return len(rows)

    async def prune(self, older_than: timedelta = RETENTION) -> int:
        """Delete rows published longer ago than ``older_than``; returns how many. Unpublished rows stay."""
        t = self._table
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.published_at < sa.func.now() - older_than))
        return result.rowcount

    async def _mark_published(self, conn: AsyncConnection, ids: list[int]) -> None:
        t = self._table
        await conn.execute(sa.update(t).where(t.c.id.in_(ids)).values(published_at=sa.func.now()))

    async def run(self) -> None:
        """Relay until cancelled; errors are logged and retried after a pause, never fatal."""
        while True:
            self.wake.clear()  # before publishing, so a commit during the batch wakes the next round
            try:
                while await self.publish_pending():
                    pass
                if time.monotonic() - self._last_prune >= self.PRUNE_EVERY_SECONDS:
                    self._last_prune = time.monotonic()
                    pruned = await self.prune()
                    if pruned:
                        log.info("outbox pruned", rows=pruned)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the relay must outlive NATS or DB blips
                metrics.OUTBOX_FAILURES.inc()
                log.warning("outbox relay failed, will retry", error=str(error))
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self._poll_seconds)
            except TimeoutError:
                pass
