"""The outbox through which this service publishes its events.

Revision ID: 0001
"""

from alembic import op

from billing_runtime.outbox import create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_outbox_table(op, "metering")
