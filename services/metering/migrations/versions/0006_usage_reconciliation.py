"""Usage reconciliation reports: accepted events against stored ones, aggregates against stored events.

Revision ID: 0006_usage_reconciliation
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_usage_reconciliation"
down_revision = "0005_alerts"


def upgrade() -> None:
    op.create_table(
        "usage_reconciliations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("messages_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("accepted_events", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("stored_events", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("missing_events", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("aggregate_mismatches", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("discrepancy_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        schema="metering",
    )
    # One scheduled run per window across replicas: the first to insert it runs it.
    op.create_index(
        "usage_reconciliations_scheduled_window_key", "usage_reconciliations", ["window_start", "window_end"],
        unique=True, schema="metering", postgresql_where=sa.text("trigger = 'scheduled'"),
    )
    op.create_table(
        "usage_reconciliation_discrepancies",
        sa.Column("reconciliation_id", sa.Text, sa.ForeignKey("metering.usage_reconciliations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("project_id", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected", sa.Text, nullable=False),
        sa.Column("found", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        schema="metering",
    )


def downgrade() -> None:
    op.drop_table("usage_reconciliation_discrepancies", schema="metering")
    op.drop_table("usage_reconciliations", schema="metering")
