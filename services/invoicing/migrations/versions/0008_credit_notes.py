"""Credit notes: adjustments of issued invoices, numbered in their own series, and the sum credited on each invoice
(settlement owes the invoice's total less it).

Their numbers come from ``invoice_number_series`` under the key "credit_note:<series>" (an invoice series is
letters, digits and '-', so the keys never meet). Invoices issued before read as credited by nothing.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.add_column(
        "invoices",
        sa.Column("amount_credited_minor", sa.BigInteger, nullable=False, server_default="0"),
        schema="invoicing",
    )
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
        sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
        sa.Column("number", sa.Text, nullable=False, unique=True),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("reason_code", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger, nullable=False),
        sa.Column("tax_minor", sa.BigInteger, nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("applied_to_due_minor", sa.BigInteger, nullable=False),
        sa.Column("refund_minor", sa.BigInteger, nullable=False),
        sa.Column("credit_minor", sa.BigInteger, nullable=False),
        sa.Column("refund_state", sa.Text, nullable=False),
        sa.Column("refund_ids", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("refund_error", sa.Text, nullable=False, server_default=""),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # The domain keeps these; the table refuses a credit note that does not add up all the same.
        sa.CheckConstraint(
            "total_minor > 0 AND tax_minor >= 0 AND total_minor = subtotal_minor + tax_minor "
            "AND applied_to_due_minor + refund_minor + credit_minor = total_minor",
            name="credit_notes_amounts_check",
        ),
        sa.CheckConstraint("outcome IN ('refund', 'credit')", name="credit_notes_outcome_check"),
        sa.Index("credit_notes_invoice_idx", "invoice_id", "id"),
        sa.Index("credit_notes_organisation_idx", "organisation_id", "id"),
        schema="invoicing",
    )
    op.create_check_constraint(
        "invoices_credited_check", "invoices", "amount_credited_minor >= 0 AND amount_credited_minor <= total_minor",
        schema="invoicing",
    )

