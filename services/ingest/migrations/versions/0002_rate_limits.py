"""Per-project event rates shared by every ingest replica: one GCRA timestamp (theoretical arrival time) per
project, in the table every service's rate limits use (``billing_runtime/rate_limit_store.py``).

Revision ID: 0002
"""

from alembic import op

from billing_runtime.rate_limit_store import create_rate_limits_table

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    create_rate_limits_table(op, "ingest")
