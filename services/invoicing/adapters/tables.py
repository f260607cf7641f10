"""Tables of the invoicing schema. No other service reads them."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from billing_runtime.outbox import outbox_table

metadata = sa.MetaData(schema="invoicing")

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("billing_email", sa.Text, nullable=False),
    sa.Column("billing_currency", sa.CHAR(3), nullable=False),
    sa.Column("country", sa.CHAR(2), nullable=False),
    sa.Column("state_code", sa.Text, nullable=False, server_default=""),
    sa.Column("gstin", sa.Text, nullable=False, server_default=""),
    sa.Column("timezone", sa.Text, nullable=False),
    sa.Column("billing_address", sa.Text, nullable=False, server_default=""),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

outbox = outbox_table(metadata)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("code", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

plan_versions = sa.Table(
    "plan_versions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("plan_id", sa.Text, sa.ForeignKey("invoicing.plans.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # The plan's display name as of this version.
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("terms", JSONB, nullable=False),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("plan_id", "version"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
    sa.Column("billing_anchor_day", sa.SmallInteger, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("ends_at", sa.DateTime(timezone=True)),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # Set while one of the organisation's invoices is uncollectible (dunning gave up).
    sa.Column("past_due_at", sa.DateTime(timezone=True)),
    # One active subscription per organisation.
    sa.Index(
        "subscriptions_one_active_key", "organisation_id", unique=True, postgresql_where=sa.text("state = 'active'")
    ),
    sa.Index("subscriptions_organisation_idx", "organisation_id", "id"),
)

subscription_phases = sa.Table(
    "subscription_phases",
    metadata,
    sa.Column("subscription_id", sa.Text, sa.ForeignKey("invoicing.subscriptions.id"), primary_key=True),
    sa.Column("starts_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("plan_version_id", sa.Text, sa.ForeignKey("invoicing.plan_versions.id"), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True)),
)

exchange_rates = sa.Table(
    "exchange_rates",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("base_currency", sa.CHAR(3), nullable=False),
    sa.Column("quote_currency", sa.CHAR(3), nullable=False),
    sa.Column("rate", sa.Numeric, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("base_currency", "quote_currency", "effective_at"),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
    sa.Column("period_key", sa.Text, nullable=False),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("number", sa.Text, unique=True),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("subtotal_minor", sa.BigInteger, nullable=False),
    sa.Column("tax_minor", sa.BigInteger, nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    # Lines, tax lines, parties, exchange rate and notes: the invoice as computed, kept whole.
    sa.Column("document", JSONB, nullable=False),
    sa.Column("issue_date", sa.Date),
    sa.Column("due_date", sa.Date),
    sa.Column("issued_at", sa.DateTime(timezone=True)),
    sa.Column("voided_at", sa.DateTime(timezone=True)),
    sa.Column("void_reason", sa.Text, nullable=False, server_default=""),
    # A reissue points at the voided invoice it replaces; each voided invoice is reissued at most once.
    sa.Column("replaces_invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), unique=True),
    sa.Column("run_id", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # Settlement (domain/settlement.py), recomputed from ``settlements`` whenever a payments event arrives.
    sa.Column("amount_paid_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("amount_refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("amount_due_minor", sa.BigInteger, nullable=False, server_default="0"),
    # The sum of the invoice's credit notes (migration 0006).
    sa.Column("amount_credited_minor", sa.BigInteger, nullable=False, server_default="0"),
    # The idempotency of invoice runs: one live invoice per organisation and period.
    sa.Index(
        "invoices_one_per_period_key",
        "organisation_id",
        "period_key",
        unique=True,
        postgresql_where=sa.text("status <> 'void'"),
    ),
    sa.Index("invoices_organisation_idx", "organisation_id", "id"),
    sa.Index("invoices_period_idx", "period_key", "organisation_id"),
)

invoice_number_series = sa.Table(
    "invoice_number_series",
    metadata,
    sa.Column("series", sa.Text, primary_key=True),
    sa.Column("financial_year", sa.Text, primary_key=True),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
)

invoice_runs = sa.Table(
    "invoice_runs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("period_key", sa.Text, nullable=False),
    sa.Column("organisation_id", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("organisations_total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("organisations_done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("invoiced", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("already_invoiced", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("not_due", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("no_subscription", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failures", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

# Payments events recorded against invoices, one row per event id: settlement recomputes an invoice from all of
# its rows, so a redelivery (same id) changes nothing and arrival order does not matter.
settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payment_id", sa.Text, nullable=False, server_default=""),
    sa.Column("refund_id", sa.Text, nullable=False, server_default=""),
    sa.Column("provider", sa.Text, nullable=False, server_default=""),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False, server_default=""),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # Whether it counts towards the invoice's amounts as of the last recomputation.
    sa.Column("applied", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("settlements_invoice_idx", "invoice_id", "occurred_at"),
)

invoice_status_changes = sa.Table(
    "invoice_status_changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
    sa.Column("from_status", sa.Text, nullable=False),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("reason", sa.Text, nullable=False),
    # A payments event id, "invoice run <id>", "reissue", or the RPC an operator called.
    sa.Column("cause", sa.Text, nullable=False),
    sa.Index("invoice_status_changes_invoice_idx", "invoice_id", "id"),
)

review_items = sa.Table(
    "review_items",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # NULL when the event names an invoice this service does not have.
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id")),
    sa.Column("organisation_id", sa.Text, nullable=False, server_default=""),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("currency", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("resolution", sa.Text, nullable=False, server_default=""),
    sa.Column("resolved_by", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("kind", "event_id", name="review_items_kind_event_key"),
    sa.Index("review_items_open_idx", "id", postgresql_where=sa.text("resolved_at IS NULL")),
    sa.Index("review_items_organisation_idx", "organisation_id", "id"),
    sa.Index("review_items_invoice_idx", "invoice_id"),
)

# Features granted to one organisation over its plan's (or that its plan lacks). ``value`` is the tagged form of
# ``domain/entitlements.py``: {"bool_value": true}, {"number_value": "10"} or {"string_value": "priority"}.
entitlement_overrides = sa.Table(
    "entitlement_overrides",
    metadata,
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), primary_key=True),
    sa.Column("feature", sa.Text, primary_key=True),
    sa.Column("value", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Price overrides (``domain/price_override.py``): an organisation's own prices on a plan, a row per version, never
# changed or deleted (a clearing is a version without prices).
price_overrides = sa.Table(
    "price_overrides",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
    sa.Column("plan_id", sa.Text, sa.ForeignKey("invoicing.plans.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("terms", JSONB, nullable=False),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("organisation_id", "plan_id", "version", name="price_overrides_version_key"),
)

# Coupons (``domain/coupon.py``): a percentage or a fixed amount, for once, N periods or forever. Never deleted
# (invoices name them); archiving stops new redemptions.
coupons = sa.Table(
    "coupons",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # Upper case, as normalised.
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
)

# A coupon applied to an organisation from a billing period on.
coupon_redemptions = sa.Table(
    "coupon_redemptions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("coupon_id", sa.Text, sa.ForeignKey("invoicing.coupons.id"), nullable=False),
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
    sa.Column("start_period_key", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("removed_at", sa.DateTime(timezone=True)),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    # One live redemption of a coupon per organisation.
    sa.Index("coupon_redemptions_one_live_key", "coupon_id", "organisation_id", unique=True,
             postgresql_where=sa.text("removed_at IS NULL")),
    sa.Index("coupon_redemptions_organisation_idx", "organisation_id", "applied_at"),
)

# The billing periods a redemption was used for: one row per (redemption, period), written in the transaction that
# stores the invoice carrying its discount, so re-running or reissuing a period never uses a second one.
coupon_redemption_periods = sa.Table(
    "coupon_redemption_periods",
    metadata,
    sa.Column("redemption_id", sa.Text, sa.ForeignKey("invoicing.coupon_redemptions.id"), primary_key=True),
    sa.Column("period_key", sa.Text, primary_key=True),
    # The invoice that first carried it.
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Prepaid credit grants (``domain/credit.py``); never deleted: a voided grant keeps its consumption history.
credit_grants = sa.Table(
    "credit_grants",
    metadata,
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
    sa.Column("purchase_invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), unique=True),
    sa.Column("voided_at", sa.DateTime(timezone=True)),
    sa.Column("void_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("credit_grants_one_per_source_key", "source", "source_id", unique=True,
             postgresql_where=sa.text("source_id <> ''")),
)

# The credit ledger (``domain/credit.py`` LedgerKind). ``invoice``: what each invoice consumed from each grant,
# written in the transaction that stores the invoice (once per (grant, invoice)); released (not deleted) when the
# invoice is voided, so the credit is spendable again. ``clawback`` (migration 0010): what a refund of a top-up's
# payment took back from the grant it bought (invoice_id the top-up invoice), once per (grant, refund id);
# released when the refund failed.
credit_consumptions = sa.Table(
    "credit_consumptions",
    metadata,
    sa.Column("grant_id", sa.Text, sa.ForeignKey("invoicing.credit_grants.id"), primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), primary_key=True),
    sa.Column("refund_id", sa.Text, primary_key=True, server_default=""),
    sa.Column("kind", sa.Text, nullable=False, server_default="invoice"),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True)),
)

# Credit notes (``domain/credit_note.py``): adjustments of an issued invoice, numbered in their own series (rows of
# ``invoice_number_series`` under the key "credit_note:<series>"). Lines, reversed tax and parties in ``document``.
credit_notes = sa.Table(
    "credit_notes",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoicing.invoices.id"), nullable=False),
    sa.Column("organisation_id", sa.Text, sa.ForeignKey("invoicing.organisations.id"), nullable=False),
    sa.Column("number", sa.Text, nullable=False, unique=True),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("reason_code", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("subtotal_minor", sa.BigInteger, nullable=False),
    sa.Column("tax_minor", sa.BigInteger, nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("applied_to_due_minor", sa.BigInteger, nullable=False),
    sa.Column("refund_minor", sa.BigInteger, nullable=False),
    sa.Column("credit_minor", sa.BigInteger, nullable=False),
    sa.Column("refund_state", sa.Text, nullable=False),
    sa.Column("refund_ids", sa.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("refund_error", sa.Text, nullable=False, server_default=""),
    sa.Column("document", JSONB, nullable=False),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("credit_notes_invoice_idx", "invoice_id", "id"),
    sa.Index("credit_notes_organisation_idx", "organisation_id", "id"),
)

# E-invoice registrations with the IRP (migration 0009): the work queue of documents to register and what the IRP
# acknowledged.
einvoice_registrations = sa.Table(
    "einvoice_registrations",
    metadata,
    sa.Column("document_id", sa.Text, primary_key=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoices.id"), nullable=False),
    sa.Column("document_type", sa.Text, nullable=False),
    sa.Column("document_number", sa.Text, nullable=False),
    sa.Column("document_date", sa.Date, nullable=False),
    sa.Column("irn", sa.CHAR(64), nullable=False, unique=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("ack_no", sa.Text, nullable=False, server_default=""),
    sa.Column("ack_at", sa.DateTime(timezone=True)),
    sa.Column("signed_invoice", sa.Text, nullable=False, server_default=""),
    sa.Column("signed_qr_code", sa.Text, nullable=False, server_default=""),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    sa.Column("cancel_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
