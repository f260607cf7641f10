"""Tables of the metering schema. No other service reads them."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from billing_runtime.outbox import outbox_table

metadata = sa.MetaData(schema="metering")

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit", sa.Text, nullable=False, server_default=""),
    sa.Column("aggregation", sa.Text, nullable=False),
    sa.Column("unique_dimension", sa.Text, nullable=False, server_default=""),
    # {"dimension": ["allowed", "values"]}
    sa.Column("filters", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("archived_at", sa.DateTime(timezone=True)),
    # Codes are unique among an organisation's active metrics; archiving frees the code.
    sa.Index(
        "metrics_active_code_key",
        "organisation_id",
        "code",
        unique=True,
        postgresql_where=sa.text("archived_at IS NULL"),
    ),
    sa.Index("metrics_organisation_idx", "organisation_id", "id"),
)

# Every event metering has stored, once: (project_id, event_id) is the deduplication key. Only the primary key
# and a BRIN index on timestamp, because every index costs on the insert path (see docs/metering.md).
events = sa.Table(
    "events",
    metadata,
    sa.Column("project_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("value", sa.Numeric, nullable=False),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
    sa.Column("dimensions", JSONB),
)

# Aggregates of the stored events per 15-minute UTC bucket, independent of metric definitions (a metric
# defined later counts what is already here). Maintained in the transaction that stores the events.
usage_buckets = sa.Table(
    "usage_buckets",
    metadata,
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("metric", sa.Text, primary_key=True),
    sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("project_id", sa.Text, primary_key=True),
    sa.Column("event_count", sa.BigInteger, nullable=False),
    sa.Column("value_sum", sa.Numeric, nullable=False),
    sa.Column("value_min", sa.Numeric, nullable=False),
    sa.Column("value_max", sa.Numeric, nullable=False),
    sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
    # The latest event of the bucket: greatest (timestamp, event_id).
    sa.Column("latest_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latest_event_id", sa.Text, nullable=False),
    sa.Column("latest_value", sa.Numeric, nullable=False),
)

# The same aggregates per UTC day (midnight to midnight), folded in the same statement as the buckets from the
# same new events, so the two always agree. Totals over long ranges read whole days here and buckets only for
# the partial days at their ends (see docs/metering.md).
usage_days = sa.Table(
    "usage_days",
    metadata,
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("metric", sa.Text, primary_key=True),
    sa.Column("day_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("project_id", sa.Text, primary_key=True),
    sa.Column("event_count", sa.BigInteger, nullable=False),
    sa.Column("value_sum", sa.Numeric, nullable=False),
    sa.Column("value_min", sa.Numeric, nullable=False),
    sa.Column("value_max", sa.Numeric, nullable=False),
    sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latest_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latest_event_id", sa.Text, nullable=False),
    sa.Column("latest_value", sa.Numeric, nullable=False),
)

# When usage of a metric first went over the organisation's quota in a billing period (where a hard cap's grace
# starts). Replicas insert what they observe, ON CONFLICT DO NOTHING: the first stored wins.
quota_overages = sa.Table(
    "quota_overages",
    metadata,
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("metric_code", sa.Text, primary_key=True),
    sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
    # The limit gone over: after a plan change mid-period, grace of the new limit starts when it is gone over.
    sa.Column("quota_limit", sa.Numeric, primary_key=True),
    sa.Column("first_over_at", sa.DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
