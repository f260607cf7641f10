"""Events partitioned by UTC month, their deduplication key in a narrow table of its own, and the archive record.

``metering.events`` becomes PARTITIONED BY RANGE (timestamp), one partition per UTC month (``events_YYYY_MM``)
and a DEFAULT partition for anything outside the months created ahead (see adapters/event_partitions.py). A
partitioned table's unique keys must contain the partition key, so (project_id, event_id) moves to
``metering.event_keys``: the consumer's statement inserts there first and stores only the events whose key was
new. Old months can then be archived and dropped whole (adapters/event_retention.py, docs/operations.md).

Revision ID: 0006_event_partitions
"""

from alembic import op

revision = "0006_event_partitions"
down_revision = "0005_alerts"


def upgrade() -> None:
    op.execute("ALTER TABLE metering.events RENAME TO events_unpartitioned")
    op.execute("ALTER INDEX metering.events_timestamp_brin RENAME TO events_unpartitioned_timestamp_brin")
    op.execute("ALTER TABLE metering.events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey")
    for name in ("events_value_finite", "events_event_id_length", "events_owner_present"):
        op.execute(f"ALTER TABLE metering.events_unpartitioned RENAME CONSTRAINT {name} TO {name}_old")
    op.execute(
        """
        CREATE TABLE metering.events (
            project_id text NOT NULL,
            event_id text NOT NULL,
            organisation_id text NOT NULL,
            metric text NOT NULL,
            value numeric NOT NULL,
            timestamp timestamptz NOT NULL,
            dimensions jsonb,
            CONSTRAINT events_value_finite CHECK (value NOT IN ('NaN', 'Infinity', '-Infinity')),
            CONSTRAINT events_event_id_length CHECK (length(event_id) BETWEEN 1 AND 128),
            CONSTRAINT events_owner_present CHECK (organisation_id <> '' AND project_id <> '')
        ) PARTITION BY RANGE (timestamp)
        """
    )
    # Declared on the parent, so every partition (created later too) gets its own BRIN index.
    op.execute("CREATE INDEX events_timestamp_brin ON metering.events USING brin (timestamp)")
    op.execute("CREATE TABLE metering.events_default PARTITION OF metering.events DEFAULT")
    # One partition per month the existing events fall in, then the months around now (the service keeps
    # creating those ahead; creating them here means the first events after the upgrade find them).
    op.execute(
        """
        DO $$
        DECLARE m timestamptz;
        BEGIN
            FOR m IN
                SELECT DISTINCT date_trunc('month', timestamp, 'UTC') FROM metering.events_unpartitioned
                UNION
                SELECT generate_series(date_trunc('month', now() - interval '2 months', 'UTC'),
                                       date_trunc('month', now() + interval '2 months', 'UTC'), interval '1 month')
            LOOP
                EXECUTE format(
                    'CREATE TABLE metering.%I PARTITION OF metering.events FOR VALUES FROM (%L) TO (%L)',
                    'events_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM'), m,
                    ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
                );
            END LOOP;
        END $$
        """
    )
    op.execute(
        """
        CREATE TABLE metering.event_keys (
            project_id text NOT NULL,
            event_id text NOT NULL,
            timestamp timestamptz NOT NULL,
            CONSTRAINT event_keys_pkey PRIMARY KEY (project_id, event_id)
        )
        """
    )
    op.execute("CREATE INDEX event_keys_timestamp_brin ON metering.event_keys USING brin (timestamp)")
    op.execute(
        """
        INSERT INTO metering.events (project_id, event_id, organisation_id, metric, value, timestamp, dimensions)
        SELECT project_id, event_id, organisation_id, metric, value, timestamp, dimensions
        FROM metering.events_unpartitioned ORDER BY timestamp
        """
    )
    op.execute(
        """
        INSERT INTO metering.event_keys (project_id, event_id, timestamp)
        SELECT project_id, event_id, timestamp FROM metering.events_unpartitioned ORDER BY timestamp
        """
    )
    op.execute("DROP TABLE metering.events_unpartitioned")
    # Months archived and dropped: which file holds them, how many rows, its checksum. A month with a row here
    # and no partition is gone from the database; queries that need its raw events answer FAILED_PRECONDITION.
    op.execute(
        """
        CREATE TABLE metering.event_archives (
            month_start timestamptz PRIMARY KEY,
            month_end timestamptz NOT NULL,
            file_name text NOT NULL,
            row_count bigint NOT NULL,
            sha256 text NOT NULL,
            exported_at timestamptz NOT NULL DEFAULT now(),
            dropped_at timestamptz,
            keys_trimmed_at timestamptz
        )
        """
    )


def downgrade() -> None:
    raise NotImplementedError("restore the archived months (docs/operations.md) and a backup instead")
