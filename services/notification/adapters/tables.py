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
    # An invoice paid or void suppresses its queued reminders: found without reading every message.
    sa.Index("messages_queued_invoice_idx", "invoice_id", postgresql_where=sa.text("state = 'queued'")),
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

# An organisation's webhook endpoints. The secret is kept as issued: the receiver verifies with the same secret,
# so a hash would not do; it leaves this service only in the replies that create or rotate it.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("event_types", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("disabled_reason", sa.Text, nullable=False, server_default=""),
    # After a rotation the previous secret signs alongside the new one until then.
    sa.Column("previous_secret", sa.Text, nullable=False, server_default=""),
    sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("disabled_at", sa.DateTime(timezone=True)),
    sa.Index("webhook_endpoints_organisation_idx", "organisation_id", "id"),
)

# One webhook message per (event, endpoint), and its attempt chain; a replay is another row with the same
# webhook_id and payload.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("endpoint_id", sa.Text, sa.ForeignKey("notification.webhook_endpoints.id"), nullable=False),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("webhook_id", sa.Text, nullable=False),
    # Text, not JSONB: the bytes posted (and signed) must be the same on every attempt.
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_status_code", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("event_id", "endpoint_id", name="webhook_deliveries_once_key"),
    sa.Index("webhook_deliveries_pending_idx", "next_attempt_at", postgresql_where=sa.text("state = 'pending'")),
    sa.Index("webhook_deliveries_sending_idx", "lease_until", postgresql_where=sa.text("state = 'sending'")),
    sa.Index("webhook_deliveries_endpoint_idx", "endpoint_id", "id"),
    sa.Index("webhook_deliveries_organisation_idx", "organisation_id", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("delivery_id", sa.Text, sa.ForeignKey("notification.webhook_deliveries.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("status_code", sa.Integer, nullable=False, server_default="0"),
    # At most 1 KiB of the answer: enough to see an error page, never a receiver's whole reply.
    sa.Column("response_body", sa.Text, nullable=False, server_default=""),
    sa.Column("duration_ms", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
)

# One reminder per (invoice, offset in days from its due date), scheduled when the invoice is issued.
reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("offset_days", sa.Integer, primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False),
    # The start of the reminder's day in the supplier's zone, and of the next: it is good for that day only.
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    # Why it was cancelled: the invoice was paid or void, or its day was missed.
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("reminders_scheduled_idx", "due_at", postgresql_where=sa.text("state = 'scheduled'")),
)

# Invoices that are paid or void, remembered even when no reminder was scheduled yet: an invoice.issued
# redelivered after its invoice.paid must not schedule reminders for a paid invoice.
invoice_closures = sa.Table(
    "invoice_closures",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
)
