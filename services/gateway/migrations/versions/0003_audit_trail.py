"""The audit trail: each entry also says the actor's role, the source address, a reason where one is required, and
a before/after summary; and the log is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE, whoever asks
(the application's role included), and the runtime role holds no such privilege either.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    for column in (
        sa.Column("role", sa.Text, nullable=False, server_default=""),
        sa.Column("source_ip", sa.Text, nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
    ):
        op.add_column("audit_log", column, schema="gateway")
    op.create_index("audit_log_resource_idx", "audit_log", ["resource_type", "resource_id"], schema="gateway")
    op.create_index("audit_log_actor_idx", "audit_log", ["actor", "id"], schema="gateway")
    op.execute(
        """
        CREATE FUNCTION gateway.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON gateway.audit_log "
        "FOR EACH ROW EXECUTE FUNCTION gateway.audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON gateway.audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION gateway.audit_log_append_only()"
    )
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON gateway.audit_log FROM PUBLIC")
