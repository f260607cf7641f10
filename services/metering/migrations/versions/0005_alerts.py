"""Alert rules and the alerts they fired (each level once per rule and period).

Revision ID: 0005_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_alerts"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("project_id", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("metric_code", sa.Text, nullable=False, server_default=""),
        sa.Column("basis", sa.Text, nullable=False, server_default=""),
        sa.Column("levels", sa.ARRAY(sa.Text), nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("baseline_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("factor", sa.Text, nullable=False, server_default=""),
        sa.Column("min_volume", sa.Text, nullable=False, server_default=""),
        sa.Column("budget", sa.Text, nullable=False, server_default=""),
        sa.Column("currency", sa.Text, nullable=False, server_default=""),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        schema="metering",
    )
    op.create_index("alert_rules_organisation_idx", "alert_rules", ["organisation_id", "id"], schema="metering")
    op.create_index(
        "alert_rules_live_idx", "alert_rules", ["organisation_id", "metric_code"], schema="metering",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "fired_alerts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("rule_id", sa.Text, sa.ForeignKey("metering.alert_rules.id"), nullable=False),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("project_id", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("metric_code", sa.Text, nullable=False, server_default=""),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("threshold", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("baseline", sa.Text, nullable=False, server_default=""),
        sa.Column("currency", sa.Text, nullable=False, server_default=""),
        sa.Column("event_id", sa.Text, nullable=False, server_default=""),
        sa.Column("event_project_id", sa.Text, nullable=False, server_default=""),
        sa.Column("event_time", sa.DateTime(timezone=True)),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("rule_name", sa.Text, nullable=False),
        sa.UniqueConstraint("rule_id", "period_start", "level", name="fired_alerts_once_key"),
        schema="metering",
    )
    op.create_index("fired_alerts_organisation_idx", "fired_alerts", ["organisation_id", "id"], schema="metering")
