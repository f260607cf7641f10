"""What a mandate's authorisation order takes (amount and currency, as Razorpay made it), so the dashboard can open
Razorpay's Standard Checkout (Checkout.js) on it where there is no hosted page.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

S = "payments"


def upgrade() -> None:
    op.add_column("mandates", sa.Column("auth_amount_minor", sa.BigInteger, nullable=False, server_default="0"),
                  schema=S)
    op.add_column("mandates", sa.Column("auth_currency", sa.Text, nullable=False, server_default=""), schema=S)
    # The orders made so far, as the Razorpay adapter made them: eNACH for nothing, cards and UPI for INR 1.00.
    op.execute(f"UPDATE {S}.mandates SET auth_currency = 'INR', "
               "auth_amount_minor = CASE WHEN method = 'emandate' THEN 0 ELSE 100 END "
               "WHERE auth_order_id IS NOT NULL")


def downgrade() -> None:
    op.drop_column("mandates", "auth_currency", schema=S)
    op.drop_column("mandates", "auth_amount_minor", schema=S)
