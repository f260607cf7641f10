"""Tables of the notification schema. No other service reads them."""

import sqlalchemy as sa

from billing_runtime.outbox import outbox_table

metadata = sa.MetaData(schema="notification")
outbox = outbox_table(metadata)
