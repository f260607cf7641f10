"""Idempotent creation keyed by a client's idempotency key: same key and same request, same result."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.errors import Conflict, InvalidArgument

MAX_KEY_LENGTH = 255


async def insert_once(
    conn: AsyncConnection, table: sa.Table, values: dict[str, Any], *, idempotency_key: str, fingerprint: str
) -> tuple[sa.Row[Any], bool]:
    """Insert ``values`` unless a row with this idempotency key exists; returns (row, created).

    The table has nullable unique ``idempotency_key`` and ``request_fingerprint`` columns. Two concurrent
    requests with one key insert once: the second waits on the unique index and then reads the first's row.
    A key reused with a different request is a Conflict, never a silent second object.
    """
    if len(idempotency_key) > MAX_KEY_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_KEY_LENGTH} characters", field="idempotency_key")
    if not idempotency_key:
        row = (await conn.execute(sa.insert(table).values(**values).returning(table))).one()
        return row, True
    statement = (
        insert(table)
        .values(**values, idempotency_key=idempotency_key, request_fingerprint=fingerprint)
        .on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
        .returning(table)
    )
    row = (await conn.execute(statement)).one_or_none()
    if row is not None:
        return row, True
    existing = (
        await conn.execute(sa.select(table).where(table.c.idempotency_key == idempotency_key))
    ).one()
    if existing.request_fingerprint != fingerprint:
        raise Conflict("was already used for a different request", field="idempotency_key")
    return existing, False
