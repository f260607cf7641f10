"""Settlement: paid, refunded and due amounts on invoices, the payments events recorded against them, their status
history, the review list, and past-due subscriptions.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    for column in ("amount_paid_minor", "amount_refunded_minor", "amount_due_minor"):
        op.add_column("invoices", sa.Column(column, sa.BigInteger, nullable=False, server_default="0"),
                      schema="invoicing")
    # Before settlement existed, a live invoice owed its total and a paid one nothing (nothing could mark one paid,
    # but an operator may have, by hand); a void one owes nothing.
    op.execute(
        "UPDATE invoicing.invoices SET amount_due_minor = total_minor WHERE status IN ('draft', 'issued')"
    )
    op.execute("UPDATE invoicing.invoices SET amount_paid_minor = total_minor WHERE status = 'paid'")
    op.add_column("subscriptions", sa.Column("past_due_at", sa.DateTime(timezone=True)), schema="invoicing")
    op.create_table(
        "settlements",
        # The payments event id: a redelivered event is the same row.
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("payment_id", sa.Text, nullable=False, server_default=""),
        sa.Column("refund_id", sa.Text, nullable=False, server_default=""),
        sa.Column("provider", sa.Text, nullable=False, server_default=""),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False, server_default=""),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("applied", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Index("settlements_invoice_idx", "invoice_id", "occurred_at"),
        schema="invoicing",
    )
    op.create_table(
        "invoice_status_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
        sa.Column("from_status", sa.Text, nullable=False),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Index("invoice_status_changes_invoice_idx", "invoice_id", "id"),
        schema="invoicing",
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id")),
        sa.Column("organisation_id", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("currency", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolution", sa.Text, nullable=False, server_default=""),
        sa.Column("resolved_by", sa.Text, nullable=False, server_default=""),
        # A redelivered event finds its item instead of adding a second one.
        sa.UniqueConstraint("kind", "event_id", name="review_items_kind_event_key"),
        sa.Index("review_items_open_idx", "id", postgresql_where=sa.text("resolved_at IS NULL")),
        sa.Index("review_items_organisation_idx", "organisation_id", "id"),
        sa.Index("review_items_invoice_idx", "invoice_id"),
        schema="invoicing",
    )
