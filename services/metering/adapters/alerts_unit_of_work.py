"""The unit of work of alert use cases: one PostgreSQL transaction with the alert, metric and usage repositories
on it."""

from __future__ import annotations

from types import TracebackType

from billing_runtime.database import UnitOfWork
from services.metering.adapters.alert_repository import AlertRepository
from services.metering.adapters.event_store import TransactionEventStore
from services.metering.adapters.repository import MetricRepository
from services.metering.adapters.usage_repository import BucketTotalQuery, aggregate_usage, bucket_totals
from services.metering.domain.usage import UsageQuery, floor_bucket


class UsageReader:
    """The usage of one metric over a range, read in the transaction (so it includes what the transaction
    itself stored)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def whole(self, query: UsageQuery) -> tuple[object, int]:
        """(value or None when no event counted, event count) of a query with one window: what GetUsageTotals
        answers. A whole organisation's usage over a range on the 15-minute grid (a billing period) without filters
        is read from the UTC days and the edge buckets (at most ~126 rows however dense the usage); the rest as
        QueryUsage reads it."""
        start, end = query.range.start, query.range.end
        if (not query.project_id and query.reads_buckets and floor_bucket(start) == start
                and floor_bucket(end) == end):
            (answer,) = await bucket_totals(
                self._uow.connection,
                [BucketTotalQuery(query.organisation_id, query.code, start, end, query.aggregation)],
            )
            return answer
        rows = [a for a in await aggregate_usage(self._uow.connection, query) if a.window == 1]
        return (rows[0].value, rows[0].event_count) if rows and rows[0].value is not None else (None, 0)


class AlertsUnitOfWork(UnitOfWork):
    """Repositories exist only inside ``async with uow`` (they need its connection), so use cases never build
    one themselves and unit tests can fake them."""

    _alerts: AlertRepository | None = None
    _metrics: MetricRepository | None = None

    @property
    def alerts(self) -> AlertRepository:
        if self._alerts is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._alerts

    @property
    def metrics(self) -> MetricRepository:
        if self._metrics is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._metrics

    @property
    def events(self) -> TransactionEventStore:
        return TransactionEventStore(self.connection)

    @property
    def usage(self) -> UsageReader:
        return UsageReader(self)

    async def __aenter__(self) -> AlertsUnitOfWork:
        await super().__aenter__()
        self._alerts = AlertRepository(self.connection)
        self._metrics = MetricRepository(self.connection)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._alerts = self._metrics = None
        await super().__aexit__(exc_type, exc, tb)
