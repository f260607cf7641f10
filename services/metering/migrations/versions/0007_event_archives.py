"""The record of months of stored events archived to a file and deleted (docs/operations.md, "Event retention").

``metering.events`` itself is unchanged: unpartitioned, its primary key the deduplication key, a BRIN index on
timestamp (which is what finds a month's rows to export and delete).

Revision ID: 0007_event_archives
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_event_archives"
down_revision = "0006_usage_reconciliation"


def upgrade() -> None:
    # A month with a row here has been exported to a verified file (exported_at) and its rows may be (partly)
    # deleted; deleted_at once all are. Queries that need its raw events answer FAILED_PRECONDITION.
    op.create_table(
        "event_archives",
        sa.Column("month_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("month_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        schema="metering",
    )


def downgrade() -> None:
    op.drop_table("event_archives", schema="metering")
