"""What a cost alert rule compares with its budget: the projected invoice so far ("to_date", what every cost rule
did before) or the forecast of the period's end ("forecast").

Revision ID: 0008_cost_basis
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_cost_basis"
down_revision = "0007_event_archives"


def upgrade() -> None:
    op.add_column("alert_rules", sa.Column("cost_basis", sa.Text, nullable=False, server_default=""),
                  schema="metering")
    op.execute("UPDATE metering.alert_rules SET cost_basis = 'to_date' WHERE kind = 'cost'")


def downgrade() -> None:
    op.drop_column("alert_rules", "cost_basis", schema="metering")
