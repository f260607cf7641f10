"""Entitlement overrides: features granted to one organisation over its plan's.

Plan versions need no migration: their terms are JSON, and terms stored without a quota grace, the ingest
enforcement flag or entitlements read with the defaults (no grace, not enforced, none).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "entitlement_overrides",
        sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), primary_key=True),
        sa.Column("feature", sa.Text, primary_key=True),
        # {"bool_value": true}, {"number_value": "10"} or {"string_value": "priority"}
        sa.Column("value", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="invoicing",
    )

