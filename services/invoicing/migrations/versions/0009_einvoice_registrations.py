"""E-invoice registrations with the IRP: one row per e-invoiced document (an invoice, or a credit note), its IRN
computed locally, its state (pending / registered / failed / cancelled) and what the IRP acknowledged; and the
organisations' billing address, whose PIN an e-invoice's buyer details need.

The row is written in the transaction that issues the document (the work queue a worker drains), so an issued
e-invoiced document is never without one. An IRN is unique: a cancelled one is never registered again.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    # The buyer's address lines (an e-invoice needs the buyer's PIN); existing organisations have none yet.
    op.add_column(
        "organisations",
        sa.Column("billing_address", sa.Text, nullable=False, server_default=""),
        schema="invoicing",
    )
    op.create_table(
        "einvoice_registrations",
        sa.Column("document_id", sa.Text, primary_key=True),  # the invoice's or credit note's id
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
        sa.Column("document_type", sa.Text, nullable=False),
        sa.Column("document_number", sa.Text, nullable=False),
        sa.Column("document_date", sa.Date, nullable=False),
        sa.Column("irn", sa.CHAR(64), nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("ack_no", sa.Text, nullable=False, server_default=""),
        sa.Column("ack_at", sa.DateTime(timezone=True)),
        sa.Column("signed_invoice", sa.Text, nullable=False, server_default=""),
        sa.Column("signed_qr_code", sa.Text, nullable=False, server_default=""),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column("cancel_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "status IN ('pending', 'registered', 'failed', 'cancelled')", name="einvoice_registrations_status_check"
        ),
        sa.CheckConstraint("document_type IN ('INV', 'CRN', 'DBN')", name="einvoice_registrations_type_check"),
        sa.CheckConstraint(
            "status <> 'registered' OR (ack_no <> '' AND ack_at IS NOT NULL)", name="einvoice_registrations_ack_check"
        ),
        sa.Index("einvoice_registrations_due_idx", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
        sa.Index("einvoice_registrations_status_idx", "status", "document_id"),
        sa.Index("einvoice_registrations_invoice_idx", "invoice_id"),
        schema="invoicing",
    )


def downgrade() -> None:
    op.drop_table("einvoice_registrations", schema="invoicing")
    op.drop_column("organisations", "billing_address", schema="invoicing")
