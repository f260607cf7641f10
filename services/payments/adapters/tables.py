"""Tables of the payments schema. No other service reads them.

``invoices`` is payments' own copy of what it must collect (from invoicing's ``invoice.issued`` events), so
collecting never has to ask invoicing. Provider ids are unique, which is what makes every webhook and API
answer idempotent: a report about a payment we already hold updates that row, never adds a second.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from billing_runtime.outbox import outbox_table

metadata = sa.MetaData(schema="payments")
outbox = outbox_table(metadata)

_NOW = sa.func.now()


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    ]


invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False, index=True),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("issue_date", sa.Date),
    sa.Column("due_date", sa.Date),
    sa.Column("customer_name", sa.Text, nullable=False, server_default=""),
    sa.Column("customer_email", sa.Text, nullable=False, server_default=""),
    # open -> settled (captured >= total) or void.
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("captured_minor", sa.BigInteger, nullable=False, server_default="0"),
    # What credit notes took off what it owes (the sum of their applied_to_due, each once), and the lowest amount
    # due invoicing reported with one (NULL: none yet). What payments collects is Invoice.due_minor.
    sa.Column("credited_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("reported_due_minor", sa.BigInteger),
    *_timestamps(),
)

# One provider order per invoice: receipt = the invoice number, so a retry after a lost answer finds the order
# the provider already made (GET /v1/orders?receipt=) instead of making a second. A credit note lowering what is
# due remakes it (revision 2, receipt "<number>#O2", ...); the order it replaced is kept in superseded_orders.
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("payments.invoices.invoice_id"), primary_key=True),
    # razorpay (an order) or stripe (a PaymentIntent): the organisation's provider when the invoice was issued.
    sa.Column("provider", sa.Text, nullable=False, server_default="razorpay"),
    sa.Column("provider_order_id", sa.Text, unique=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("receipt", sa.Text, nullable=False),
    sa.Column("error", JSONB),
    sa.Column("create_attempts", sa.Integer, nullable=False, server_default="0"),
    # When the order creator next tries a pending order (after a provider error, with backoff).
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
    *_timestamps(),
    sa.Index("orders_pending_idx", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
)

# The provider orders an invoice's order replaced when a credit note lowered what it owes. A payment that still
# arrives on one is its invoice's (found by provider order id, here as in orders). Each is cancelled at the
# provider where that is possible (Stripe's PaymentIntents); Razorpay's orders cannot be, and are only no longer
# offered (cancel_state "kept").
superseded_orders = sa.Table(
    "superseded_orders",
    metadata,
    sa.Column("provider_order_id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("payments.invoices.invoice_id"), nullable=False, index=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("receipt", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    # pending -> cancelled, or kept (cannot be cancelled, or was paid first: cancel_reason says which).
    sa.Column("cancel_state", sa.Text, nullable=False),
    sa.Column("cancel_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("cancel_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("error", JSONB),
    *_timestamps(),
    sa.Index("superseded_orders_cancel_idx", "next_attempt_at",
             postgresql_where=sa.text("cancel_state = 'pending'")),
)

# invoicing's credit notes payments has applied, once each (by id), whatever order they arrive in. No foreign key:
# one delivered before its invoice's invoice.issued waits here and is applied when the invoice is.
credit_notes = sa.Table(
    "credit_notes",
    metadata,
    sa.Column("credit_note_id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, nullable=False, index=True),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("applied_to_due_minor", sa.BigInteger, nullable=False),
    sa.Column("invoice_amount_due_minor", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("payments.invoices.invoice_id")),
    sa.Column("organisation_id", sa.Text, nullable=False, server_default=""),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("provider_payment_id", sa.Text),
    sa.Column("provider_order_id", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("method", sa.Text, nullable=False, server_default=""),
    sa.Column("email", sa.Text, nullable=False, server_default=""),
    sa.Column("contact", sa.Text, nullable=False, server_default=""),
    sa.Column("error_code", sa.Text, nullable=False, server_default=""),
    sa.Column("error_description", sa.Text, nullable=False, server_default=""),
    sa.Column("error_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("reference", sa.Text, nullable=False, server_default=""),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("authorized_at", sa.DateTime(timezone=True)),
    sa.Column("captured_at", sa.DateTime(timezone=True)),
    sa.Column("failed_at", sa.DateTime(timezone=True)),
    # Payments we know of but the provider has not settled (created: Checkout's callback came, no webhook yet;
    # authorized: not captured) are fetched from the provider, and captured, once this time has passed.
    sa.Column("check_due_at", sa.DateTime(timezone=True)),
    sa.Column("check_attempts", sa.Integer, nullable=False, server_default="0"),
    *_timestamps(),
    sa.UniqueConstraint("provider", "provider_payment_id", name="payments_provider_payment_key"),
    sa.Index("payments_invoice_idx", "invoice_id"),
    sa.Index("payments_check_due_idx", "check_due_at", postgresql_where=sa.text("status IN ('created', 'authorized')")),
    # An offline payment's reference (the bank's UTR, a cheque number) is recorded once per invoice.
    sa.Index("payments_offline_reference_key", "invoice_id", "reference", unique=True,
             postgresql_where=sa.text("provider = 'offline'")),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("payment_id", sa.Text, sa.ForeignKey("payments.payments.id"), nullable=False, index=True),
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
    sa.Index("refunds_requested_idx", "next_attempt_at", postgresql_where=sa.text("status = 'requested'")),
)

payment_links = sa.Table(
    "payment_links",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("payments.invoices.invoice_id"), nullable=False, index=True),
    sa.Column("provider_link_id", sa.Text, unique=True),
    # Razorpay's reference_id: "<invoice number>#<attempt>", unique among a merchant's links.
    sa.Column("reference_id", sa.Text, nullable=False, unique=True),
    sa.Column("short_url", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("expire_at", sa.DateTime(timezone=True)),
    # Work the worker does at the provider (a link a credit note outdated to cancel, its replacement to make):
    # when it next tries, and how often it has.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index("payment_links_due_idx", "next_attempt_at",
             postgresql_where=sa.text("status IN ('creating', 'cancelling')")),
)

# Every genuine webhook delivery, once per (provider, event id), with what processing it did.
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    sa.Column("outcome", sa.Text, nullable=False),
    # Keyset pages, newest first.
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)

# One row per invoice being collected: where its dunning stands and when its next step is due.
dunning = sa.Table(
    "dunning",
    metadata,
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("payments.invoices.invoice_id"), primary_key=True),
    sa.Column("policy", JSONB, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", sa.DateTime(timezone=True)),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    # Provider errors while making the current attempt's link (retried quickly; not attempts).
    sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
    *_timestamps(),
    sa.Index("dunning_due_idx", "next_at", postgresql_where=sa.text("state IN ('scheduled', 'retrying')")),
)

# An organisation's own dunning policy; organisations without one get the configured default.
dunning_policies = sa.Table(
    "dunning_policies",
    metadata,
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("policy", JSONB, nullable=False),
    *_timestamps(),
)

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("payments_checked", sa.Integer, nullable=False, server_default="0"),
    sa.Column("refunds_checked", sa.Integer, nullable=False, server_default="0"),
    sa.Column("discrepancies", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    # The daily run of a day is made once, however many replicas schedule it.
    sa.Index("reconciliation_runs_scheduled_key", "start_at", "end_at", unique=True,
             postgresql_where=sa.text("trigger = 'scheduled'")),
)

# A difference stays one open discrepancy however many runs find it again (last_run_id says which did last).
discrepancies = sa.Table(
    "discrepancies",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, sa.ForeignKey("payments.reconciliation_runs.id"), nullable=False),
    sa.Column("last_run_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("object_type", sa.Text, nullable=False),
    sa.Column("provider_id", sa.Text, nullable=False),
    sa.Column("our_id", sa.Text, nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("ours", sa.Text, nullable=False, server_default=""),
    sa.Column("theirs", sa.Text, nullable=False, server_default=""),
    sa.Column("resolution", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Index("discrepancies_open_key", "kind", "object_type", "provider_id", unique=True,
             postgresql_where=sa.text("resolved_at IS NULL")),
)

# Each organisation's choice of provider for the invoices it is issued; without one, the configured default.
organisation_providers = sa.Table(
    "organisation_providers",
    metadata,
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    *_timestamps(),
)

# The customer made at a provider for an organisation (Stripe's cus_...), made once and reused for every order.
provider_customers = sa.Table(
    "provider_customers",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    *_timestamps(),
    sa.UniqueConstraint("provider", "customer_id", name="provider_customers_customer_key"),
)

# An organisation's recurring mandate (a Razorpay token): at most one live (created, confirmed or paused) at a time.
mandates = sa.Table(
    "mandates",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False, index=True),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("max_amount_minor", sa.BigInteger, nullable=False),
    sa.Column("expire_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False, server_default=""),
    sa.Column("auth_order_id", sa.Text, unique=True),
    sa.Column("token_id", sa.Text, unique=True),
    sa.Column("checkout_url", sa.Text, nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    # What the authorisation order takes, as Razorpay made it (Checkout shows it to the customer).
    sa.Column("auth_amount_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("auth_currency", sa.Text, nullable=False, server_default=""),
    # The create request's idempotency key: the same key answers the same mandate.
    sa.Column("idempotency_key", sa.Text, unique=True),
    *_timestamps(),
    sa.Index("mandates_live_key", "organisation_id", unique=True,
             postgresql_where=sa.text("state IN ('created', 'confirmed', 'paused')")),
)

# The one debit of an issued invoice on its organisation's mandate (or the payment link sent instead).
debits = sa.Table(
    "debits",
    metadata,
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("payments.invoices.invoice_id"), primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("mandate_id", sa.Text, sa.ForeignKey("payments.mandates.id"), nullable=False, index=True),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("cycle", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("debit_at", sa.DateTime(timezone=True), nullable=False),
    # "<invoice number>#AD": the fresh order's receipt, so a lost answer is found again, never made twice.
    sa.Column("receipt", sa.Text, nullable=False, unique=True),
    sa.Column("provider_order_id", sa.Text, nullable=False, server_default=""),
    sa.Column("provider_payment_id", sa.Text, nullable=False, server_default=""),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # When the worker next looks at it (debit_at, a lease while it works, a retry after a provider outage).
    sa.Column("next_at", sa.DateTime(timezone=True)),
    sa.Column("notified_at", sa.DateTime(timezone=True)),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("link_url", sa.Text, nullable=False, server_default=""),
    *_timestamps(),
    sa.Index("debits_due_idx", "next_at", postgresql_where=sa.text("state IN ('scheduled', 'ordered', 'requested')")),
)
