"""Tables of the notification schema. No other service reads them."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from billing_runtime.outbox import outbox_table

metadata = sa.MetaData(schema="notification")
outbox = outbox_table(metadata)

# What notification keeps of each issued invoice (from invoice.issued), so mail about its payments needs no call.
invoices = sa.Table(
    "invoices",
    metadata,
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# One row per (event, recipient, kind): the intent is recorded before anything is sent.
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("cc", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("notice", JSONB, nullable=False),
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("message_id_header", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_reply", sa.Text, nullable=False, server_default=""),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    # While SENDING: when the sender's claim runs out (a sender that died leaves the message UNKNOWN after it).
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("event_id", "recipient", "kind", name="messages_once_key"),
    sa.Index("messages_queued_idx", "next_attempt_at", postgresql_where=sa.text("state = 'queued'")),
    sa.Index("messages_sending_idx", "lease_until", postgresql_where=sa.text("state = 'sending'")),
    sa.Index("messages_organisation_idx", "organisation_id", "id"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("message_id", sa.Text, sa.ForeignKey("notification.messages.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.Text, nullable=False, server_default=""),
    sa.Column("reply", sa.Text, nullable=False, server_default=""),
)

recipients = sa.Table(
    "recipients",
    metadata,
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("cc", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("opted_out", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
