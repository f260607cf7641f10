"""Per-service Alembic migrations, each service in its own PostgreSQL schema.

A service's ``migrations/env.py`` is two lines: import its metadata and call :func:`run_alembic_env`.
:func:`migrate` runs ``upgrade head`` under a PostgreSQL advisory lock, so replicas starting together
migrate once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime import metrics


def _alembic_config(script_location: Path, schema: str, connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def _upgrade(connection: Connection, script_location: Path, schema: str) -> None:
    command.upgrade(_alembic_config(script_location, schema, connection), "head")


def _current(connection: Connection, script_location: Path, schema: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    return ctx.get_current_revision()


async def migrate(engine: AsyncEngine, script_location: Path, schema: str) -> str | None:
    """Create the schema if needed and upgrade it to head. Returns the revision now applied."""
    async with engine.begin() as conn:
        try:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"migrate:{schema}"})
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_upgrade, script_location, schema)
            return await conn.run_sync(_current, script_location, schema)
        except Exception:
            # Connected, so not "the database is not up yet": what the migration-failure alert watches.
            metrics.MIGRATION_FAILURES.labels(schema).inc()
            raise


def run_alembic_env(target_metadata: MetaData) -> None:
    """Body of every service's ``env.py``: run online migrations on the connection :func:`migrate` passed."""
    config = context.config
    connection = config.attributes.get("connection")
    schema = config.attributes.get("schema")
    if connection is None or schema is None:
        raise RuntimeError("run migrations with `python -m services.<name> migrate`, not the alembic CLI")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()
