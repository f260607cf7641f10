"""Metric definitions over gRPC: create (idempotent), get, list, archive, and every validation error."""

from __future__ import annotations

import grpc
import pytest

from billing.metering.v1 import metering_pb2
from tests.integration.helpers import error_field, expect_rpc_error

pytestmark = pytest.mark.usefixtures("metering")


def create_request(organisation_id: str, **overrides) -> metering_pb2.CreateMetricRequest:
    values = {
        "organisation_id": organisation_id,
        "code": "api.calls",
        "name": "API calls",
        "unit": "requests",
        "aggregation": metering_pb2.AGGREGATION_SUM,
        **overrides,
    }
    return metering_pb2.CreateMetricRequest(**values)


async def test_create_get_and_list_a_metric(metering_stub, organisation_id) -> None:
    request = create_request(
        organisation_id, filters={"region": metering_pb2.DimensionFilter(values=["ap-south-1", "eu-west-1"])}
    )
    created = await metering_stub.CreateMetric(request)
    metric = created.metric
    assert created.created and metric.id.startswith("met_")
    assert (metric.organisation_id, metric.code, metric.name, metric.unit) == (
        organisation_id, "api.calls", "API calls", "requests"
    )
    assert metric.aggregation == metering_pb2.AGGREGATION_SUM and metric.state == metering_pb2.METRIC_STATE_ACTIVE
    assert list(metric.filters["region"].values) == ["ap-south-1", "eu-west-1"]
    assert metric.HasField("create_time") and not metric.HasField("archive_time")

    got = await metering_stub.GetMetric(metering_pb2.GetMetricRequest(metric_id=metric.id))
    assert got.metric == metric
    listed = await metering_stub.ListMetrics(metering_pb2.ListMetricsRequest(organisation_id=organisation_id))
    assert [m.id for m in listed.metrics] == [metric.id]


async def test_create_is_idempotent_by_key_and_codes_are_unique_among_active_metrics(
    metering_stub, organisation_id
) -> None:
    request = create_request(organisation_id, idempotency_key=f"create-{organisation_id}")
    first = await metering_stub.CreateMetric(request)
    again = await metering_stub.CreateMetric(request)
    assert first.created and not again.created and again.metric == first.metric

    other_body = create_request(organisation_id, name="Calls", idempotency_key=f"create-{organisation_id}")
    error = await expect_rpc_error(metering_stub.CreateMetric(other_body), grpc.StatusCode.ABORTED)
    assert error_field(error) == "idempotency_key"

    error = await expect_rpc_error(metering_stub.CreateMetric(create_request(organisation_id)),
                                   grpc.StatusCode.ALREADY_EXISTS)
    assert error_field(error) == "code"


async def test_archive_keeps_the_first_time_and_frees_the_code(metering_stub, organisation_id) -> None:
    metric = (await metering_stub.CreateMetric(create_request(organisation_id))).metric
    archived = (await metering_stub.ArchiveMetric(metering_pb2.ArchiveMetricRequest(metric_id=metric.id))).metric
    assert archived.state == metering_pb2.METRIC_STATE_ARCHIVED and archived.HasField("archive_time")
    again = (await metering_stub.ArchiveMetric(metering_pb2.ArchiveMetricRequest(metric_id=metric.id))).metric
    assert again.archive_time == archived.archive_time

    replacement = await metering_stub.CreateMetric(create_request(organisation_id, name="API calls v2"))
    assert replacement.created and replacement.metric.id != metric.id

    active = await metering_stub.ListMetrics(metering_pb2.ListMetricsRequest(organisation_id=organisation_id))
    assert [m.id for m in active.metrics] == [replacement.metric.id]
    everything = await metering_stub.ListMetrics(
        metering_pb2.ListMetricsRequest(organisation_id=organisation_id, include_archived=True)
    )
    assert [m.id for m in everything.metrics] == [metric.id, replacement.metric.id]


async def test_list_pages(metering_stub, organisation_id) -> None:
    ids = []
    for index in range(5):
        ids.append((await metering_stub.CreateMetric(create_request(organisation_id, code=f"m{index}"))).metric.id)
    seen, token = [], ""
    while True:
        page = await metering_stub.ListMetrics(
            metering_pb2.ListMetricsRequest(organisation_id=organisation_id, page_size=2, page_token=token)
        )
        seen += [m.id for m in page.metrics]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids


async def test_unknown_metric_and_unknown_organisation(metering_stub) -> None:
    await expect_rpc_error(
        metering_stub.GetMetric(metering_pb2.GetMetricRequest(metric_id="met_01JABCDEFGHJKMNPQRSTVWXYZ0")),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_rpc_error(
        metering_stub.ArchiveMetric(metering_pb2.ArchiveMetricRequest(metric_id="met_01JABCDEFGHJKMNPQRSTVWXYZ0")),
        grpc.StatusCode.NOT_FOUND,
    )
    error = await expect_rpc_error(
        metering_stub.CreateMetric(create_request("org_01JABCDEFGHJKMNPQRSTVWXYZ0")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert error_field(error) == "organisation_id"


def _filters(**values: list[str]) -> dict[str, metering_pb2.DimensionFilter]:
    return {key: metering_pb2.DimensionFilter(values=v) for key, v in values.items()}


INVALID = [
    ({"organisation_id": ""}, "organisation_id"),
    ({"code": ""}, "code"),
    ({"code": "API.calls"}, "code"),
    ({"code": "1calls"}, "code"),
    ({"code": "a" * 65}, "code"),
    ({"code": "api calls"}, "code"),
    ({"name": "  "}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"unit": "u" * 33}, "unit"),
    ({"aggregation": metering_pb2.AGGREGATION_UNSPECIFIED}, "aggregation"),
    ({"aggregation": metering_pb2.AGGREGATION_UNIQUE_COUNT}, "unique_dimension"),
    ({"aggregation": metering_pb2.AGGREGATION_UNIQUE_COUNT, "unique_dimension": "d" * 65}, "unique_dimension"),
    ({"unique_dimension": "user"}, "unique_dimension"),
    ({"filters": _filters(region=[])}, "filters"),
    ({"filters": _filters(**{"k" * 65: ["x"]})}, "filters"),
    ({"filters": _filters(region=["v" * 257])}, "filters"),
    ({"filters": _filters(region=[str(i) for i in range(101)])}, "filters"),
    ({"filters": _filters(**{f"d{i}": ["x"] for i in range(17)})}, "filters"),
    ({"idempotency_key": "k" * 256}, "idempotency_key"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID, ids=[f"{f}-{i}" for i, (_, f) in enumerate(INVALID)])
async def test_every_invalid_definition_is_refused_naming_its_field(
    metering_stub, organisation_id, overrides, field
) -> None:
    request = create_request(organisation_id)
    for key, value in overrides.items():
        if key == "filters":
            for dimension, allowed in value.items():
                request.filters[dimension].CopyFrom(allowed)
        else:
            setattr(request, key, value)
    error = await expect_rpc_error(metering_stub.CreateMetric(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == field
    listed = await metering_stub.ListMetrics(
        metering_pb2.ListMetricsRequest(organisation_id=organisation_id, include_archived=True)
    )
    assert list(listed.metrics) == []
