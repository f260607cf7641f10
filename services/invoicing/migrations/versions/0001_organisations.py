"""Organisations and the outbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from billing_runtime.outbox import create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("billing_email", sa.Text, nullable=False),
        sa.Column("billing_currency", sa.CHAR(3), nullable=False),
        sa.Column("country", sa.CHAR(2), nullable=False),
        sa.Column("state_code", sa.Text, nullable=False, server_default=""),
        sa.Column("gstin", sa.Text, nullable=False, server_default=""),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="invoicing",
    )
    create_outbox_table(op, "invoicing")
