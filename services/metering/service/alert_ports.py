"""What alert use cases need from storage and from other services, as Protocols: the adapters implement them
over PostgreSQL (``services.metering.adapters.alerts_unit_of_work``) and invoicing's gRPC contract, unit tests
with in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self

from google.protobuf.message import Message

from services.metering.domain.alert_evaluation import FiredAlert, NewEvent
from services.metering.domain.alerts import AlertKind, AlertRule, CostBasis, RuleDefinition
from services.metering.domain.event_batch import EventColumns
from services.metering.domain.metric import Metric
from services.metering.domain.usage import UsageQuery


class AlertRules(Protocol):
    async def lock_organisation(self, organisation_id: str) -> None: ...

    async def count_live(self, organisation_id: str) -> int: ...

    async def add(self, rule_id: str, definition: RuleDefinition, idempotency_key: str) -> tuple[AlertRule, bool]:
        """(rule, created); the same idempotency key with the same request returns the first rule, with another
        request Conflict."""
        ...

    async def get(self, rule_id: str) -> AlertRule | None: ...

    async def list(
        self, *, organisation_id: str, include_deleted: bool, limit: int, after: str | None
    ) -> list[AlertRule]: ...

    async def delete(self, rule_id: str) -> AlertRule | None: ...

    async def live_rules(
        self, *, kinds: Iterable[AlertKind] | None = None, organisation_ids: Iterable[str] | None = None,
        rule_ids: Iterable[str] | None = None,
    ) -> list[AlertRule]: ...

    async def live_threshold_rules(self, pairs: Iterable[tuple[str, str]]) -> list[AlertRule]: ...

    async def lock_pairs(self, pairs: Iterable[tuple[str, str]]) -> None: ...

    async def insert_fired(self, alert: FiredAlert) -> FiredAlert | None:
        """The alert as recorded, or None when (rule, period start, level) had already fired."""
        ...

    async def list_fired(
        self, *, organisation_id: str, rule_id: str, limit: int, before: str | None
    ) -> list[FiredAlert]: ...


class Metrics(Protocol):
    async def active_by_codes(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Metric]: ...


class Usage(Protocol):
    async def whole(self, query: UsageQuery) -> tuple[Any, int]: ...


class TransactionEvents(Protocol):
    async def store_returning_watched(
        self, columns: EventColumns, pairs: Iterable[tuple[str, str]]
    ) -> tuple[int, dict[tuple[str, str], list[NewEvent]]]: ...


class AlertsTransaction(Protocol):
    @property
    def alerts(self) -> AlertRules: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def usage(self) -> Usage: ...

    @property
    def events(self) -> TransactionEvents: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class EventOutbox(Protocol):
    """``billing_runtime.outbox.Outbox``: records an event in ``uow``'s transaction."""

    async def record(self, uow: Any, subject: str, event_id: str, message: Message) -> None: ...


@dataclass(frozen=True)
class ProjectedCost:
    """The projected invoice of an organisation's current billing period: its total so far, and the total
    forecast for the period's end (None unless asked for)."""

    total_minor: int
    currency: str
    period_start: datetime
    period_end: datetime
    forecast_total_minor: int | None = None

    def total_for(self, basis: CostBasis | None) -> int | None:
        """The total a cost rule of ``basis`` compares with its budget (None: the forecast was not fetched)."""
        return self.forecast_total_minor if basis is CostBasis.FORECAST else self.total_minor


@dataclass(frozen=True)
class CreditStanding:
    """An organisation's prepaid credit as invoicing answers it: the available balance per currency, and when its
    latest grant was made (the start of the current balance episode; None when it has no grant)."""

    available_minor: dict[str, int]
    latest_grant_at: datetime | None


class ProjectedInvoices(Protocol):
    async def projected_cost(self, organisation_id: str, *, with_forecast: bool = False) -> ProjectedCost | None:
        """None when the organisation has no subscription in its current period (nothing to project). Raises
        Unavailable when invoicing cannot answer. ``with_forecast`` asks for the forecast of the period's end too
        (it costs invoicing a usage query per extrapolated metric)."""
        ...

    async def credit_balance(self, organisation_id: str) -> CreditStanding:
        """Invoicing's GetCreditBalance. Raises Unavailable when invoicing cannot answer."""
        ...


def as_decimal(value: object) -> Decimal:
    return Decimal(0) if value is None else Decimal(value) if not isinstance(value, Decimal) else value
