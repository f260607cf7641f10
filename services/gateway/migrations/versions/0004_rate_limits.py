"""Rate limits shared by every gateway replica: one GCRA timestamp (theoretical arrival time) per key, and a
sign-in key's lockouts in a row. Unlogged: no WAL per check; a crash empties it, which only restores budgets.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strikes", sa.Integer, nullable=False, server_default="0"),
        schema="gateway",
        prefixes=["UNLOGGED"],
    )
    op.create_index("rate_limits_tat_idx", "rate_limits", ["tat"], schema="gateway")
