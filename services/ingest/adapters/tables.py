"""Tables of the ingest schema. No other service reads them."""

import sqlalchemy as sa

from billing_runtime.outbox import outbox_table
from billing_runtime.rate_limit_store import rate_limits_table

metadata = sa.MetaData(schema="ingest")

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("organisation_id", "name", name="projects_organisation_name_key"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("project_id", sa.Text, sa.ForeignKey("ingest.projects.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("prefix", sa.Text, nullable=False, unique=True),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Index("api_keys_project_id_idx", "project_id"),
)

outbox = outbox_table(metadata)

# Per-project event rates shared by every ingest replica (service/rate_limits.py).
rate_limits = rate_limits_table(metadata)
