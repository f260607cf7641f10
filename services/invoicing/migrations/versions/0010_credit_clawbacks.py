"""Credit claw-backs: the credit ledger (``credit_consumptions``) gets entries of a second kind. ``invoice`` (every
existing row): what an invoice consumed from a grant. ``clawback``: what a refund of a top-up invoice's payment took
back from the grant that top-up bought, one per (grant, refund id), so a redelivered refund takes nothing twice. A
claw-back may be of 0 (everything it would take was already spent: the refund's id is still recorded once).

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.add_column("credit_consumptions", sa.Column("kind", sa.Text, nullable=False, server_default="invoice"),
                  schema="invoicing")
    op.add_column("credit_consumptions", sa.Column("refund_id", sa.Text, nullable=False, server_default=""),
                  schema="invoicing")
    # The key was (grant, invoice): a top-up refunded in parts takes back once per refund.
    op.drop_constraint("credit_consumptions_pkey", "credit_consumptions", schema="invoicing")
    op.create_primary_key("credit_consumptions_pkey", "credit_consumptions", ["grant_id", "invoice_id", "refund_id"],
                          schema="invoicing")
    op.create_check_constraint("credit_consumptions_kind_check", "credit_consumptions",
                               "(kind = 'invoice' AND refund_id = '') OR (kind = 'clawback' AND refund_id <> '')",
                               schema="invoicing")
    op.drop_constraint("credit_consumptions_amount_check", "credit_consumptions", schema="invoicing")
    op.create_check_constraint("credit_consumptions_amount_check", "credit_consumptions",
                               "amount_minor > 0 OR (kind = 'clawback' AND amount_minor = 0)", schema="invoicing")


def downgrade() -> None:
    op.execute("DELETE FROM invoicing.credit_consumptions WHERE kind = 'clawback'")
    op.drop_constraint("credit_consumptions_amount_check", "credit_consumptions", schema="invoicing")
    op.create_check_constraint("credit_consumptions_amount_check", "credit_consumptions", "amount_minor > 0",
                               schema="invoicing")
    op.drop_constraint("credit_consumptions_kind_check", "credit_consumptions", schema="invoicing")
    op.drop_constraint("credit_consumptions_pkey", "credit_consumptions", schema="invoicing")
    op.create_primary_key("credit_consumptions_pkey", "credit_consumptions", ["grant_id", "invoice_id"],
                          schema="invoicing")
    op.drop_column("credit_consumptions", "refund_id", schema="invoicing")
    op.drop_column("credit_consumptions", "kind", schema="invoicing")
