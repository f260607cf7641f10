"""Invoices notification mails about, messages (one per event, recipient and kind), attempts, recipients.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"

S = "notification"
_NOW = sa.text("now()")
_EMPTY = sa.text("'[]'::jsonb")


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("organisation_id", sa.Text, nullable=False),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("billing_email", sa.Text, nullable=False),
        sa.Column("customer_name", sa.Text, nullable=False, server_default=""),
        sa.Column("issue_date", sa.Date),
        sa.Column("due_date", sa.Date),
        sa.Column("period_key", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        schema=S,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("event_id", "recipient", "kind", "organisation_id",
                                                                  "invoice_id")),
        sa.Column("cc", JSONB, nullable=False, server_default=_EMPTY),
        sa.Column("notice", JSONB, nullable=False),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("message_id_header", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_reply", sa.Text, nullable=False, server_default=""),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("event_id", "recipient", "kind", name="messages_once_key"),
        schema=S,
    )
    op.create_index("messages_queued_idx", "messages", ["next_attempt_at"], schema=S,
                    postgresql_where=sa.text("state = 'queued'"))
    op.create_index("messages_sending_idx", "messages", ["lease_until"], schema=S,
                    postgresql_where=sa.text("state = 'sending'"))
    op.create_index("messages_organisation_idx", "messages", ["organisation_id", "id"], schema=S)
    op.create_table(
        "attempts",
        sa.Column("message_id", sa.Text, sa.ForeignKey(f"{S}.messages.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text, nullable=False, server_default=""),
        sa.Column("reply", sa.Text, nullable=False, server_default=""),
        schema=S,
    )
    op.create_table(
        "recipients",
        sa.Column("organisation_id", sa.Text, primary_key=True),
        sa.Column("cc", JSONB, nullable=False, server_default=_EMPTY),
        sa.Column("opted_out", JSONB, nullable=False, server_default=_EMPTY),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        schema=S,
    )
