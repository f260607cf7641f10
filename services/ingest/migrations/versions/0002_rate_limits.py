"""Per-project event rates shared by every ingest replica: one GCRA timestamp (theoretical arrival time) per
project. Unlogged: no WAL per check; a crash empties it, which only gives every project its whole burst back.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strikes", sa.Integer, nullable=False, server_default="0"),
        schema="ingest",
        prefixes=["UNLOGGED"],
    )
    op.create_index("rate_limits_tat_idx", "rate_limits", ["tat"], schema="ingest")
