"""Tables of the invoicing schema. No other service reads them."""

import sqlalchemy as sa

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
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

outbox = outbox_table(metadata)
