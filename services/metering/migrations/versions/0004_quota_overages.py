"""When usage of a metric first went over an organisation's quota (its limit) in a billing period: where a hard
cap's grace period starts. A plan change mid-period brings another limit, whose grace starts when it is gone over.

Every metering replica inserts the moment it first observes the overage (ON CONFLICT DO NOTHING) and reads back
what is stored, so the earliest recorded wins and the replicas agree.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "quota_overages",
        sa.Column("organisation_id", sa.Text, primary_key=True),
        sa.Column("metric_code", sa.Text, primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("quota_limit", sa.Numeric, primary_key=True),
        sa.Column("first_over_at", sa.DateTime(timezone=True), nullable=False),
        schema="metering",
    )


def downgrade() -> None:
    op.drop_table("quota_overages", schema="metering")
