"""Usage per UTC day beside the 15-minute buckets, backfilled from the buckets.

A month of continuous traffic is 2,976 buckets per metric; totals over long ranges read the ~30 day rows instead,
plus the buckets of the partial days at the ends. From this revision on, the statement that folds new events into
the buckets folds them into the days too (services/metering/adapters/event_store.py).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

# The day of a bucket is its start binned to UTC midnights; the latest of a day is its bucket with the greatest
# (latest_time, latest_event_id), as the buckets themselves keep it. (The metering tests also compare the days the
# consumer keeps with this.)
DAYS_FROM_BUCKETS = """
    SELECT organisation_id, metric,
        date_bin('1 day', bucket_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS day_start, project_id,
        sum(event_count) AS event_count, sum(value_sum) AS value_sum, min(value_min) AS value_min,
        max(value_max) AS value_max, min(first_time) AS first_time,
        (array_agg(latest_time ORDER BY latest_time DESC, latest_event_id DESC))[1] AS latest_time,
        (array_agg(latest_event_id ORDER BY latest_time DESC, latest_event_id DESC))[1] AS latest_event_id,
        (array_agg(latest_value ORDER BY latest_time DESC, latest_event_id DESC))[1] AS latest_value
    FROM metering.usage_buckets
    GROUP BY organisation_id, metric, 3, project_id
"""


def upgrade() -> None:
    op.create_table(
        "usage_days",
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
        schema="metering",
    )
    # No bucket may change while the days are computed from them: a consumer still running the previous
    # statement (buckets only) waits here, and one running the new statement cannot start before the table exists.
    op.execute("LOCK TABLE metering.usage_buckets IN SHARE MODE")
    op.execute(f"INSERT INTO metering.usage_days {DAYS_FROM_BUCKETS}")
