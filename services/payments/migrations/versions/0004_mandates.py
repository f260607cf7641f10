"""Recurring auto-debit: organisations' mandates (Razorpay tokens) and the debit of each invoice on one.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

S = "payments"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "mandates",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False, index=True),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("max_amount_minor", sa.BigInteger, nullable=False),
        sa.Column("expire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False, server_default=""),
        sa.Column("auth_order_id", sa.Text, unique=True),
        sa.Column("token_id", sa.Text, unique=True),
        sa.Column("checkout_url", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("idempotency_key", sa.Text, unique=True),
        *_timestamps(),
        schema=S,
    )
    op.create_index("mandates_live_key", "mandates", ["organisation_id"], unique=True, schema=S,
                    postgresql_where=sa.text("state IN ('created', 'confirmed', 'paused')"))
    op.create_table(
        "debits",
        sa.Column("invoice_id", sa.Text, sa.ForeignKey(f"{S}.invoices.invoice_id"), primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("mandate_id", sa.Text, sa.ForeignKey(f"{S}.mandates.id"), nullable=False, index=True),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("cycle", sa.Text, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("debit_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt", sa.Text, nullable=False, unique=True),
        sa.Column("provider_order_id", sa.Text, nullable=False, server_default=""),
        sa.Column("provider_payment_id", sa.Text, nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(timezone=True)),
        sa.Column("notified_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("link_url", sa.Text, nullable=False, server_default=""),
        *_timestamps(),
        schema=S,
    )
    op.create_index("debits_due_idx", "debits", ["next_at"], schema=S,
                    postgresql_where=sa.text("state IN ('scheduled', 'ordered', 'requested')"))


def downgrade() -> None:
    op.drop_table("debits", schema=S)
    op.drop_table("mandates", schema=S)
