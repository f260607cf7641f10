"""The invoicing horizon: the earliest start of a billing period not invoiced yet, across organisations. Usage
before it is final (invoiced), which is what metering needs to know before archiving stored events."""

from __future__ import annotations

from datetime import UTC, datetime

from services.invoicing.adapters.horizon_repository import earliest_draft_period, open_subscriptions
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.domain.billing_period import (
    _previous_month,
    parse_period_key,
    period_containing,
    period_for_key,
)


async def invoicing_horizon(uow: InvoicingUnitOfWork, now: datetime | None = None) -> datetime | None:
    """Min over active subscriptions' current period start (or the previous period's, while that one has no
    invoice yet: the invoice run has not closed it) and draft invoices' period starts; None when none is open."""
    now = now or datetime.now(UTC)
    async with uow:
        subscriptions = await open_subscriptions(uow.connection)
        draft = await earliest_draft_period(uow.connection)
    starts = [draft] if draft is not None else []
    for subscription in subscriptions:
        current = period_containing(now, subscription.time_zone, subscription.anchor_day)
        year, month = _previous_month(*parse_period_key(current.key))
        previous = period_for_key(f"{year:04d}-{month:02d}", subscription.time_zone, subscription.anchor_day)
        if previous.key not in subscription.invoiced_keys and subscription.created_at < current.start:
            starts.append(previous.start)
        else:
            starts.append(current.start)
    return min(starts, default=None)
