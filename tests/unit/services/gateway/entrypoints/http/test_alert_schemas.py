"""Alert rules between REST and protobuf: a cost rule's basis, sent and shown by name."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from billing.metering.v1 import metering_pb2 as pb
from services.gateway.entrypoints.http.alert_schemas import AlertRule, AlertRuleCreate

CREATED = Timestamp(seconds=1_796_000_000)


def test_a_cost_rule_on_the_forecast_goes_to_metering_and_back_by_name() -> None:
    body = AlertRuleCreate(organisation_id="org_1", kind="cost", budget="50000", cost_basis="forecast")
    request = body.to_pb("key-1")
    assert request.rule.cost_basis == pb.COST_BASIS_FORECAST and request.idempotency_key == "key-1"
    assert AlertRuleCreate(organisation_id="org_1", kind="cost", budget="1").to_pb("").rule.cost_basis == 0
    shown = AlertRule.from_pb(pb.AlertRule(id="alr_1", kind=pb.ALERT_KIND_COST, budget="50000", currency="INR",
                                           cost_basis=pb.COST_BASIS_TO_DATE, create_time=CREATED)
                              ).model_dump(mode="json")
    assert (shown["kind"], shown["cost_basis"]) == ("cost", "to_date")
    threshold = AlertRule.from_pb(pb.AlertRule(id="alr_2", kind=pb.ALERT_KIND_THRESHOLD, create_time=CREATED))
    assert threshold.cost_basis is None
