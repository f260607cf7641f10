"""Payments' data migrations on real PostgreSQL: 0006 clears the error an earlier attempt left on payments that
went on to be authorized or captured, and leaves failed payments' errors alone."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from billing_runtime.database import create_engine
from billing_runtime.migrations import _alembic_config, migrate
from services.payments import __file__ as payments_package
from tests.conftest import create_database, drop_database

MIGRATIONS = Path(payments_package).parent / "migrations"
INSERT = sa.text(
    "INSERT INTO payments.payments (id, organisation_id, provider, provider_payment_id, status, currency, "
    "amount_minor, error_code, error_description, error_reason, failed_at) VALUES (:id, 'org_m', 'stripe', :id, "
    ":status, 'INR', 11800, :code, :code, :code, CASE WHEN :code = '' THEN NULL ELSE now() END)")


async def test_0006_clears_an_earlier_attempts_error_on_payments_that_went_through(infrastructure):
    url = await create_database(infrastructure.server_url, "payments_migration")
    engine = create_engine(url, application_name="tests")
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text('CREATE SCHEMA "payments"'))
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(MIGRATIONS, "payments", sync), "0005"))
            for payment_id, status, code in (("pmt_captured", "captured", "card_declined"),
                                             ("pmt_authorized", "authorized", "card_declined"),
                                             ("pmt_failed", "failed", "card_declined"),
                                             ("pmt_clean", "captured", "")):
                await conn.execute(INSERT, {"id": payment_id, "status": status, "code": code})
        assert await migrate(engine, MIGRATIONS, "payments") >= "0006"  # and any later ones
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT id, error_code, error_description, error_reason, failed_at IS NOT NULL "
                "FROM payments.payments ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [
            ("pmt_authorized", "", "", "", False), ("pmt_captured", "", "", "", False),
            ("pmt_clean", "", "", "", False),
            ("pmt_failed", "card_declined", "card_declined", "card_declined", True)]
    finally:
        await engine.dispose()
        await drop_database(infrastructure.server_url, url)
