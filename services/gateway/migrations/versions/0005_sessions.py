"""People's browser sessions (only hashes of the session id and CSRF token are stored), and the last TOTP time
step a user's second factor accepted (a code cannot be used twice).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger), schema="gateway")
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, sa.ForeignKey("gateway.users.id"), nullable=False),
        sa.Column("csrf_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("source_ip", sa.Text, nullable=False, server_default=""),
        sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
        schema="gateway",
    )
    op.create_index("sessions_user_id_idx", "sessions", ["user_id"], schema="gateway")

