"""Low prepaid-credit alerts: a credit_balance rule's threshold, in minor units of the organisation's currency (0
for every other kind).

Revision ID: 0009_credit_balance_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_credit_balance_alerts"
down_revision = "0008_cost_basis"


def upgrade() -> None:
    op.add_column("alert_rules", sa.Column("credit_threshold_minor", sa.BigInteger, nullable=False,
                                           server_default="0"), schema="metering")


def downgrade() -> None:
    op.drop_column("alert_rules", "credit_threshold_minor", schema="metering")
