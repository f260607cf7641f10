"""Prepaid credit: grants of credit to organisations, and what each invoice consumed from each grant.

Invoices need no migration: credit lines are part of the ``document`` JSON (``credit_lines``), and documents
stored before credits existed read with none.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "credit_grants",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        # A top-up's invoice: the grant becomes available when it is paid.
        sa.Column("purchase_invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), unique=True),
        sa.Column("voided_at", sa.DateTime(timezone=True)),
        sa.Column("void_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_minor > 0", name="credit_grants_amount_check"),
        sa.CheckConstraint("source IN ('granted', 'purchased', 'credit_note')", name="credit_grants_source_check"),
        sa.CheckConstraint("status IN ('pending', 'available', 'voided')", name="credit_grants_status_check"),
        # One grant per credit note (or other named source): a retry by the caller finds it.
        sa.Index("credit_grants_one_per_source_key", "source", "source_id", unique=True,
                 postgresql_where=sa.text("source_id <> ''")),
        sa.Index("credit_grants_organisation_idx", "organisation_id", "created_at"),
        schema="invoicing",
    )
    op.create_table(
        "credit_consumptions",
        sa.Column("grant_id", sa.Text, sa.ForeignKey("invoicing.credit_grants.id"), primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), primary_key=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
        # Set when the invoice is voided: the credit goes back to the grant.
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("amount_minor > 0", name="credit_consumptions_amount_check"),
        sa.Index("credit_consumptions_invoice_idx", "invoice_id"),
        schema="invoicing",
    )


def downgrade() -> None:
    op.drop_table("credit_consumptions", schema="invoicing")
    op.drop_table("credit_grants", schema="invoicing")
