"""A staff token may be limited to CIDR ranges of source addresses.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column(
        "staff_tokens",
        sa.Column("allowed_cidrs", ARRAY(sa.Text), nullable=False, server_default="{}"),
        schema="gateway",
    )
