"""Coupons, their redemptions by organisations, and the billing periods each redemption was used for.

Invoices need no migration: discount lines are lines of the ``document`` JSON, and documents stored before coupons
existed read with no coupon on any line.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("code", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("discount_kind", sa.Text, nullable=False),
        sa.Column("percent_off", sa.Numeric),
        sa.Column("amount_off", sa.Numeric),
        sa.Column("currency", sa.CHAR(3)),
        sa.Column("duration", sa.Text, nullable=False),
        sa.Column("duration_periods", sa.Integer),
        sa.Column("plan_codes", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("max_redemptions", sa.Integer),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # The domain validates all of this; the table refuses a half-made coupon all the same.
        sa.CheckConstraint(
            "(discount_kind = 'percent' AND percent_off > 0 AND percent_off <= 100 AND amount_off IS NULL "
            "AND currency IS NULL) OR (discount_kind = 'fixed_amount' AND amount_off > 0 AND currency IS NOT NULL "
            "AND percent_off IS NULL)",
            name="coupons_discount_check",
        ),
        sa.CheckConstraint(
            "(duration = 'repeating' AND duration_periods >= 1) OR (duration IN ('once', 'forever') "
            "AND duration_periods IS NULL)",
            name="coupons_duration_check",
        ),
        schema="invoicing",
    )
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("coupon_id", sa.Text, sa.ForeignKey("invoicing.coupons.id"), nullable=False),
        sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
        sa.Column("start_period_key", sa.Text, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Index("coupon_redemptions_one_live_key", "coupon_id", "organisation_id", unique=True,
                 postgresql_where=sa.text("removed_at IS NULL")),
        sa.Index("coupon_redemptions_organisation_idx", "organisation_id", "applied_at"),
        schema="invoicing",
    )
    op.create_table(
        "coupon_redemption_periods",
        sa.Column("redemption_id", sa.Text, sa.ForeignKey("invoicing.coupon_redemptions.id"), primary_key=True),
        sa.Column("period_key", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="invoicing",
    )
