from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing.metering.v1 import metering_pb2
from services.metering.adapters.messages import AGGREGATIONS, decode_event_batch, metric_to_pb
from services.metering.domain.event_batch import EventColumns, PoisonBatch
from services.metering.domain.metric import Aggregation, Metric


def payload(organisation: str = "org_1", project: str = "prj_1", metric: str = "api.calls") -> bytes:
    stamp = ingest_pb2.Event(event_id="e1", metric=metric, value="1.5", dimensions={"region": "in"})
    stamp.timestamp.FromDatetime(datetime(2026, 11, 21, 6, 0, 0, 123456, tzinfo=UTC))
    bare = ingest_pb2.Event(event_id="e2", metric="tokens", value="-2")
    bare.timestamp.FromDatetime(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    return events_pb2.EventBatchAccepted(
        organisation_id=organisation, project_id=project, events=[stamp, bare]
    ).SerializeToString()


def test_a_batch_becomes_columns() -> None:
    columns = decode_event_batch(payload())
    assert columns.organisation_ids == ["org_1", "org_1"] and columns.project_ids == ["prj_1", "prj_1"]
    assert columns.event_ids == ["e1", "e2"] and columns.metrics == ["api.calls", "tokens"]
    assert columns.values == ["1.5", "-2"]
    assert columns.timestamps_us == [int(datetime(2026, 11, 21, 6, tzinfo=UTC).timestamp()) * 10**6 + 123456, 10**6]
    assert columns.dimensions == ['{"region":"in"}', "null"]


def test_columns_concatenate_in_order() -> None:
    merged = EventColumns.concat([decode_event_batch(payload()), decode_event_batch(payload(project="prj_2"))])
    assert len(merged) == 4 and merged.project_ids == ["prj_1", "prj_1", "prj_2", "prj_2"]


@pytest.mark.parametrize(
    ("data", "reason", "kind"),
    [
        (b"\xff\xff\xff", "not an EventBatchAccepted", "undecodable"),
        (payload(organisation=""), "no organisation_id", "invalid_batch"),
        (payload(project=""), "no project_id", "invalid_batch"),
        (payload(metric="Bad Metric"), "is not a lowercase metric code", "invalid_batch"),
    ],
)
def test_what_can_never_be_stored_is_poison(data: bytes, reason: str, kind: str) -> None:
    with pytest.raises(PoisonBatch) as caught:
        decode_event_batch(data)
    assert reason in caught.value.reason and caught.value.kind == kind


def test_every_aggregation_maps_both_ways() -> None:
    assert set(AGGREGATIONS.values()) == set(Aggregation)
    for aggregation in Aggregation:
        metric = Metric("met_1", "org_1", "c", "C", "", aggregation, "user" if aggregation == "unique_count" else "")
        assert AGGREGATIONS[metric_to_pb(metric).aggregation] is aggregation
        assert metric_to_pb(metric).state == metering_pb2.METRIC_STATE_ACTIVE
