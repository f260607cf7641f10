"""A partial credit note lowers what payments collects: the credit notes payments has applied, what they took
off each invoice, the orders a lower amount replaced (kept, so a payment on one is still its invoice's), and the
payment links waiting to be cancelled or made at the provider.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"

S = "payments"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.add_column("invoices", sa.Column("credited_minor", sa.BigInteger, nullable=False, server_default="0"),
                  schema=S)
    op.add_column("invoices", sa.Column("reported_due_minor", sa.BigInteger), schema=S)
    # Every order made so far is its invoice's first.
    op.add_column("orders", sa.Column("revision", sa.Integer, nullable=False, server_default="1"), schema=S)
    op.add_column("payment_links", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"), schema=S)
    op.add_column("payment_links", sa.Column("next_attempt_at", sa.DateTime(timezone=True)), schema=S)
    op.create_index("payment_links_due_idx", "payment_links", ["next_attempt_at"], schema=S,
                    postgresql_where=sa.text("status IN ('creating', 'cancelling')"))
    op.create_table(
        "credit_notes",
        sa.Column("credit_note_id", sa.Text, primary_key=True),
        # No foreign key: a credit note delivered before its invoice's invoice.issued is kept for it.
        sa.Column("invoice_id", sa.Text, nullable=False, index=True),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("applied_to_due_minor", sa.BigInteger, nullable=False),
        sa.Column("invoice_amount_due_minor", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "superseded_orders",
        sa.Column("provider_order_id", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("payments.invoices.invoice_id"), nullable=False, index=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("receipt", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("cancel_state", sa.Text, nullable=False),
        sa.Column("cancel_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("cancel_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("error", JSONB),
        *_timestamps(),
        sa.Index("superseded_orders_cancel_idx", "next_attempt_at",
             postgresql_where=sa.text("cancel_state = 'pending'")),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("superseded_orders", schema=S)
    op.drop_table("credit_notes", schema=S)
    op.drop_index("payment_links_due_idx", table_name="payment_links", schema=S)
    op.drop_column("payment_links", "next_attempt_at", schema=S)
    op.drop_column("payment_links", "attempts", schema=S)
    op.drop_column("orders", "revision", schema=S)
    op.drop_column("invoices", "reported_due_minor", schema=S)
    op.drop_column("invoices", "credited_minor", schema=S)
