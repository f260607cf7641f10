"""Invoices to collect, orders, payments, refunds, payment links, the webhook log, dunning and
reconciliation.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"

S = "payments"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False, index=True),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("issue_date", sa.Date),
        sa.Column("due_date", sa.Date),
        sa.Column("customer_name", sa.Text, nullable=False, server_default=""),
        sa.Column("customer_email", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("captured_minor", sa.BigInteger, nullable=False, server_default="0"),
        *_timestamps(),
        schema=S,
    )
    op.create_table(
        "orders",
        sa.Column("invoice_id", sa.Text, sa.ForeignKey(f"{S}.invoices.invoice_id"), primary_key=True),
        sa.Column("provider_order_id", sa.Text, unique=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("receipt", sa.Text, nullable=False),
        sa.Column("error", JSONB),
        sa.Column("create_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        schema=S,
    )
    op.create_index("orders_pending_idx", "orders", ["next_attempt_at"], schema=S,
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "payments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey(f"{S}.invoices.invoice_id")),
        sa.Column("organisation_id", sa.Text, nullable=False, server_default=""),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("provider_payment_id", sa.Text),
        sa.Column("provider_order_id", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        *(sa.Column(name, sa.Text, nullable=False, server_default="") for name in (
            "method", "email", "contact", "error_code", "error_description", "error_reason", "reference", "note")),
        sa.Column("authorized_at", sa.DateTime(timezone=True)),
        sa.Column("captured_at", sa.DateTime(timezone=True)),
        sa.Column("failed_at", sa.DateTime(timezone=True)),
        sa.Column("check_due_at", sa.DateTime(timezone=True)),
        sa.Column("check_attempts", sa.Integer, nullable=False, server_default="0"),
        *_timestamps(),
        sa.UniqueConstraint("provider", "provider_payment_id", name="payments_provider_payment_key"),
        schema=S,
    )
    op.create_index("payments_invoice_idx", "payments", ["invoice_id"], schema=S)
    op.create_index("payments_check_due_idx", "payments", ["check_due_at"], schema=S,
                    postgresql_where=sa.text("status IN ('created', 'authorized')"))
    op.create_index("payments_offline_reference_key", "payments", ["invoice_id", "reference"], unique=True,
                    schema=S, postgresql_where=sa.text("provider = 'offline'"))
    op.create_table(
        "refunds",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payment_id", sa.Text, sa.ForeignKey(f"{S}.payments.id"), nullable=False, index=True),
        sa.Column("invoice_id", sa.Text, nullable=False, server_default=""),
        sa.Column("organisation_id", sa.Text, nullable=False, server_default=""),
        sa.Column("provider_refund_id", sa.Text, unique=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("request_fingerprint", sa.Text),
        sa.Column("error", JSONB),
        sa.Column("send_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        schema=S,
    )
    op.create_index("refunds_requested_idx", "refunds", ["next_attempt_at"], schema=S,
                    postgresql_where=sa.text("status = 'requested'"))
    op.create_table(
        "payment_links",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("invoice_id", sa.Text, sa.ForeignKey(f"{S}.invoices.invoice_id"), nullable=False, index=True),
        sa.Column("provider_link_id", sa.Text, unique=True),
        sa.Column("reference_id", sa.Text, nullable=False, unique=True),
        sa.Column("short_url", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("expire_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        schema=S,
    )
    op.create_table(
        "webhook_events",
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        schema=S,
    )
    op.create_table(
        "dunning",
        sa.Column("invoice_id", sa.Text, sa.ForeignKey(f"{S}.invoices.invoice_id"), primary_key=True),
        sa.Column("policy", JSONB, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
        *_timestamps(),
        schema=S,
    )
    op.create_index("dunning_due_idx", "dunning", ["next_at"], schema=S,
                    postgresql_where=sa.text("state IN ('scheduled', 'retrying')"))
    op.create_table(
        "dunning_policies",
        sa.Column("organisation_id", sa.Text, primary_key=True),
        sa.Column("policy", JSONB, nullable=False),
        *_timestamps(),
        schema=S,
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False, server_default="0")
          for name in ("payments_checked", "refunds_checked", "discrepancies")),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("reconciliation_runs_scheduled_key", "reconciliation_runs", ["start_at", "end_at"], unique=True,
                    schema=S, postgresql_where=sa.text("trigger = 'scheduled'"))
    op.create_table(
        "discrepancies",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Text, sa.ForeignKey(f"{S}.reconciliation_runs.id"), nullable=False),
        sa.Column("last_run_id", sa.Text, nullable=False, index=True),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("kind", "object_type", "provider_id")),
        sa.Column("our_id", sa.Text, nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False),
        *(sa.Column(name, sa.Text, nullable=False, server_default="") for name in ("ours", "theirs", "resolution")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("discrepancies_open_key", "discrepancies", ["kind", "object_type", "provider_id"], unique=True,
                    schema=S, postgresql_where=sa.text("resolved_at IS NULL"))
