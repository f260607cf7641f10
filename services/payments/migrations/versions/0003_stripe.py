"""Stripe beside Razorpay: each order's provider, each organisation's choice of provider, and the customers
made at a provider for an organisation.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

S = "payments"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    # Every order made so far is Razorpay's.
    op.add_column("orders", sa.Column("provider", sa.Text, nullable=False, server_default="razorpay"), schema=S)
    op.create_table(
        "organisation_providers",
        sa.Column("organisation_id", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        *_timestamps(),
        schema=S,
    )
    op.create_table(
        "provider_customers",
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("provider", "customer_id", name="provider_customers_customer_key"),
        schema=S,
    )

