"""Organisation users: a user is staff (admin, operator, viewer; no organisation) or belongs to one organisation
(member, owner).

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    # The organisation is invoicing's (another service's database): checked when the user is created, no foreign key.
    op.add_column("users", sa.Column("organisation_id", sa.Text), schema="gateway")
    op.drop_constraint("users_role_check", "users", schema="gateway", type_="check")
    op.create_check_constraint(
        "users_role_check", "users", "role IN ('admin', 'operator', 'viewer', 'member', 'owner')", schema="gateway"
    )
    op.create_check_constraint(
        "users_organisation_check", "users",
        "(role IN ('admin', 'operator', 'viewer')) = (organisation_id IS NULL) AND organisation_id <> ''",
        schema="gateway",
    )
    op.create_index("users_organisation_id_idx", "users", ["organisation_id"], schema="gateway")
