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

# Months of events archived to a file and then deleted from events (docs/operations.md, "Event retention"): the
# file, its row count and checksum; exported_at when the verified file was recorded (deleting may start),
# deleted_at when every row of the month was deleted.
event_archives = sa.Table(
    "event_archives",
    metadata,
    sa.Column("month_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("month_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
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

# Alert rules. Decimal fields are kept as the normalised strings the rule states ("80", "1.5"); levels as a text
# array in ascending order. A deleted rule keeps its row (deleted_at) so what it fired stays explained.
alert_rules = sa.Table(
    "alert_rules",
    metadata,
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
    # Credit-balance rules: fire below this many minor units of the currency; 0 for other kinds.
    sa.Column("credit_threshold_minor", sa.BigInteger, nullable=False, server_default="0"),
    # Cost rules: "to_date" or "forecast" (what the budget is compared with); "" for other kinds.
    sa.Column("cost_basis", sa.Text, nullable=False, server_default=""),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.Index("alert_rules_organisation_idx", "organisation_id", "id"),
    sa.Index("alert_rules_live_idx", "organisation_id", "metric_code", postgresql_where=sa.text("deleted_at IS NULL")),
)

# Each level of a rule fires once per period: the unique key (rule_id, period_start, level) is what makes that
# hold across redeliveries, replicas and the sweep (inserts are ON CONFLICT DO NOTHING).
fired_alerts = sa.Table(
    "fired_alerts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("rule_id", sa.Text, sa.ForeignKey("alert_rules.id"), nullable=False),
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
    sa.Index("fired_alerts_organisation_idx", "organisation_id", "id"),
)

# Usage reconciliation reports (services/metering/service/usage_reconciliation.py). A scheduled run's window is
# unique: the replica that inserts it runs it.
usage_reconciliations = sa.Table(
    "usage_reconciliations",
    metadata,
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
    sa.Index(
        "usage_reconciliations_scheduled_window_key", "window_start", "window_end", unique=True,
        postgresql_where=sa.text("trigger = 'scheduled'"),
    ),
)

# The first 1,000 discrepancies of a report, in the order found (the report counts all of them).
usage_reconciliation_discrepancies = sa.Table(
    "usage_reconciliation_discrepancies",
    metadata,
    sa.Column("reconciliation_id", sa.Text, sa.ForeignKey("usage_reconciliations.id", ondelete="CASCADE"),
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
)
