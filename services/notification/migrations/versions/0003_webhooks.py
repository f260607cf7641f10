"""Webhook endpoints (with their signing secrets), deliveries (one per event and endpoint) and their attempts.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"

S = "notification"
_NOW = sa.text("now()")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("organisation_id", "url", "secret")),
        sa.Column("event_types", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("disabled_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("previous_secret", sa.Text, nullable=False, server_default=""),
        sa.Column("previous_secret_until", _TIME),
        sa.Column("created_at", _TIME, nullable=False, server_default=_NOW),
        sa.Column("updated_at", _TIME, nullable=False, server_default=_NOW),
        sa.Column("disabled_at", _TIME),
        schema=S,
    )
    op.create_index("webhook_endpoints_organisation_idx", "webhook_endpoints", ["organisation_id", "id"], schema=S)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("endpoint_id", sa.Text, sa.ForeignKey(f"{S}.webhook_endpoints.id"), nullable=False),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("organisation_id", "event_type", "webhook_id",
                                                                  "payload", "state")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_status_code", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("next_attempt_at", _TIME),
        sa.Column("lease_until", _TIME),
        sa.Column("idempotency_key", sa.Text, unique=True),
        sa.Column("created_at", _TIME, nullable=False, server_default=_NOW),
        sa.Column("delivered_at", _TIME),
        sa.UniqueConstraint("event_id", "endpoint_id", name="webhook_deliveries_once_key"),
        schema=S,
    )
    op.create_index("webhook_deliveries_pending_idx", "webhook_deliveries", ["next_attempt_at"], schema=S,
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_index("webhook_deliveries_sending_idx", "webhook_deliveries", ["lease_until"], schema=S,
                    postgresql_where=sa.text("state = 'sending'"))
    op.create_index("webhook_deliveries_endpoint_idx", "webhook_deliveries", ["endpoint_id", "id"], schema=S)
    op.create_index("webhook_deliveries_organisation_idx", "webhook_deliveries", ["organisation_id", "id"],
                    schema=S)
    op.create_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.Text, sa.ForeignKey(f"{S}.webhook_deliveries.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME),
        sa.Column("status_code", sa.Integer, nullable=False, server_default="0"),
        sa.Column("response_body", sa.Text, nullable=False, server_default=""),
        sa.Column("duration_ms", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        schema=S,
    )
