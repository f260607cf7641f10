"""Metrics, deduplicated events and their 15-minute usage buckets.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("unit", sa.Text, nullable=False, server_default=""),
        sa.Column("aggregation", sa.Text, nullable=False),
        sa.Column("unique_dimension", sa.Text, nullable=False, server_default=""),
        sa.Column("filters", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        schema="metering",
    )
    op.create_index(
        "metrics_active_code_key",
        "metrics",
        ["organisation_id", "code"],
        unique=True,
        schema="metering",
        postgresql_where=sa.text("archived_at IS NULL"),
    )
    op.create_index("metrics_organisation_idx", "metrics", ["organisation_id", "id"], schema="metering")
    # The database holds the event contract too, so a batch that breaks it fails here (and is dead-lettered)
    # instead of being summed: NaN and infinities are numerics to PostgreSQL. (The metric's format is checked
    # in Python, once per distinct code of a batch: a regular expression per row costs a third of the insert.)
    op.create_table(
        "events",
        sa.Column("project_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("value", sa.Numeric, nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dimensions", JSONB),
        sa.CheckConstraint("value NOT IN ('NaN', 'Infinity', '-Infinity')", name="events_value_finite"),
        sa.CheckConstraint("length(event_id) BETWEEN 1 AND 128", name="events_event_id_length"),
        sa.CheckConstraint("organisation_id <> '' AND project_id <> ''", name="events_owner_present"),
        schema="metering",
    )
    # Events arrive roughly in time order, so a BRIN index finds a time range for almost no insert cost.
    op.execute("CREATE INDEX events_timestamp_brin ON metering.events USING brin (timestamp)")
    op.create_table(
        "usage_buckets",
        sa.Column("organisation_id", sa.Text, primary_key=True),
        sa.Column("metric", sa.Text, primary_key=True),
        sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("project_id", sa.Text, primary_key=True),
        sa.Column("event_count", sa.BigInteger, nullable=False),
        sa.Column("value_sum", sa.Numeric, nullable=False),
        sa.Column("value_min", sa.Numeric, nullable=False),
        sa.Column("value_max", sa.Numeric, nullable=False),
        sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latest_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latest_event_id", sa.Text, nullable=False),
        sa.Column("latest_value", sa.Numeric, nullable=False),
        schema="metering",
    )
