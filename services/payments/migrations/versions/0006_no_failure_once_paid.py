"""A payment that moved past failed (a declined card, then another that went through) no longer keeps the earlier
attempt's error: payments now clears it when a report moves the payment to authorized or captured. This clears it
on payments recorded before, so no reader shows a paid payment as declined. The decline stays in the webhook log
(each stored webhook's body) and in the ``payment.failed`` announced at the time.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute(sa.text(
        "UPDATE payments.payments SET failed_at = NULL, error_code = '', error_description = '', error_reason = '', "
        "updated_at = now() "
        "WHERE status IN ('authorized', 'captured') "
        "AND (failed_at IS NOT NULL OR error_code <> '' OR error_description <> '' OR error_reason <> '')"
    ))


def downgrade() -> None:
    # The cleared errors are not restored: they were an earlier attempt's, and the webhook log still holds them.
    pass
