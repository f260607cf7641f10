"""Reminders about invoices' due dates (one per invoice and offset), the invoices that are paid or void, and an
index to find an invoice's queued messages (its reminders are suppressed when it is paid or void).

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

S = "notification"
_NOW = sa.text("now()")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("offset_days", sa.Integer, primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("due_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", _TIME, nullable=False, server_default=_NOW),
        sa.Column("updated_at", _TIME, nullable=False, server_default=_NOW),
        schema=S,
    )
    op.create_index("reminders_scheduled_idx", "reminders", ["due_at"], schema=S,
                    postgresql_where=sa.text("state = 'scheduled'"))
    op.create_table(
        "invoice_closures",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("closed_at", _TIME, nullable=False),
        schema=S,
    )
    op.create_index("messages_queued_invoice_idx", "messages", ["invoice_id"], schema=S,
                    postgresql_where=sa.text("state = 'queued'"))
