"""Price overrides: an organisation's own prices on a plan, one row per version (``domain/price_override.py``).

Invoices need no migration: a line's override id and version are fields of the ``document`` JSON, and documents
stored before overrides existed read with none.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "price_overrides",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
        sa.Column("plan_id", sa.Text, sa.ForeignKey("invoicing.plans.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        # {"currency", "base_fee": "1500" | null, "charges": [{"metric_code", "charge"}]}; no prices: a clearing
        sa.Column("terms", JSONB, nullable=False),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("organisation_id", "plan_id", "version", name="price_overrides_version_key"),
        sa.CheckConstraint("version > 0", name="price_overrides_version_check"),
        schema="invoicing",
    )

