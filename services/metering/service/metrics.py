"""Defining, reading, listing and archiving metrics, and reporting the metric codes events arrived for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from billing_runtime import paging
from billing_runtime.database import UnitOfWork
from billing_runtime.errors import InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.metering.adapters.repository import MetricRepository, observed_metrics
from services.metering.domain.metric import Aggregation, Metric, define_metric


class OrganisationDirectory(Protocol):
    async def exists(self, organisation_id: str) -> bool: ...


@dataclass(frozen=True)
class CreateMetric:
    organisation_id: str
    code: str
    name: str
    unit: str = ""
    aggregation: Aggregation | None = None
    unique_dimension: str = ""
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True)
class ObservedMetric:
    code: str
    event_count: int
    first_event_time: datetime
    last_event_time: datetime
    metric_id: str


async def create_metric(
    uow: UnitOfWork, organisations: OrganisationDirectory, command: CreateMetric
) -> tuple[Metric, bool]:
    """Define a metric for an organisation invoicing knows. Returns (metric, created)."""
    definition = define_metric(
        organisation_id=command.organisation_id,
        code=command.code,
        name=command.name,
        unit=command.unit,
        aggregation=command.aggregation,
        unique_dimension=command.unique_dimension,
        filters=command.filters,
    )
    # Asked before the transaction opens: no connection is held while another service answers.
    if not await organisations.exists(definition.organisation_id):
        raise InvalidArgument(f"no organisation with id {definition.organisation_id!r}", field="organisation_id")
    async with uow:
        return await MetricRepository(uow.connection).add(new_id("met"), definition, command.idempotency_key)


async def get_metric(uow: UnitOfWork, metric_id: str) -> Metric:
    if not metric_id:
        raise InvalidArgument("is required", field="metric_id")
    async with uow:
        metric = await MetricRepository(uow.connection).get(metric_id)
    if metric is None:
        raise NotFound(f"no metric with id {metric_id!r}")
    return metric


async def list_metrics(
    uow: UnitOfWork, organisation_id: str, include_archived: bool, page_size: int, page_token: str
) -> tuple[list[Metric], str]:
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        page = await MetricRepository(uow.connection).list(
            organisation_id=organisation_id, include_archived=include_archived, limit=size + 1, after=after
        )
    return paging.split_page(page, size)


async def archive_metric(uow: UnitOfWork, metric_id: str) -> Metric:
    """Archive a metric (once; archiving again returns it unchanged). Its code is free for a new metric."""
    if not metric_id:
        raise InvalidArgument("is required", field="metric_id")
    async with uow:
        metric = await MetricRepository(uow.connection).archive(metric_id)
    if metric is None:
        raise NotFound(f"no metric with id {metric_id!r}")
    return metric


async def list_observed_metrics(uow: UnitOfWork, organisation_id: str) -> list[ObservedMetric]:
    """Every metric code the organisation's events carry, defined or not (undefined ones are never dropped)."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    async with uow:
        rows = await observed_metrics(uow.connection, organisation_id)
    return [ObservedMetric(**row) for row in rows]
