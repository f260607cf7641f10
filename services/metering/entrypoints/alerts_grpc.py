"""The alert RPCs of MeteringService (a mixin MeteringServicer inherits): protobuf in, use case, protobuf out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing.metering.v1 import metering_pb2
from billing_runtime.errors import InvalidArgument, Unavailable
from services.metering.adapters.alerts_unit_of_work import AlertsUnitOfWork
from services.metering.adapters.messages import (
    ALERT_KINDS,
    COST_BASES,
    THRESHOLD_BASES,
    alert_rule_to_pb,
    fired_alert_to_pb,
)
from services.metering.domain.alerts import RuleRequest
from services.metering.domain.plan_in_force import PlanDirectory
from services.metering.service import alerts
from services.metering.service.alert_watch import AlertWatch

if TYPE_CHECKING:
    from billing_runtime.service import Runtime


class AlertsServicer:
    """CreateAlertRule, GetAlertRule, ListAlertRules, DeleteAlertRule and ListFiredAlerts. ``attach_alerts`` gives
    it the plan directory (organisation and currency of a new rule) and this process's AlertWatch (which watches a
    new rule at once)."""

    _runtime: Runtime
    _alert_plans: PlanDirectory | None = None
    _alert_watch: AlertWatch | None = None

    def attach_alerts(self, plans: PlanDirectory, watch: AlertWatch) -> None:
        self._alert_plans = plans
        self._alert_watch = watch

    def _alerts_uow(self) -> AlertsUnitOfWork:
        return AlertsUnitOfWork(self._runtime.engine)

    async def CreateAlertRule(self, request, context):  # noqa: N802 - gRPC method names
        if self._alert_plans is None or self._alert_watch is None:
            raise Unavailable("alert rules are not wired in this process")
        rule = request.rule
        if rule.cost_basis and rule.cost_basis not in COST_BASES:
            raise InvalidArgument("is not a known cost basis: TO_DATE or FORECAST", field="rule.cost_basis")
        command = RuleRequest(
            organisation_id=rule.organisation_id,
            kind=ALERT_KINDS.get(rule.kind),
            name=rule.name,
            project_id=rule.project_id,
            metric_code=rule.metric_code,
            basis=THRESHOLD_BASES.get(rule.basis),
            levels=tuple(rule.levels),
            window_seconds=rule.window_seconds,
            baseline_seconds=rule.baseline_seconds,
            factor=rule.factor,
            min_volume=rule.min_volume,
            budget=rule.budget,
            cost_basis=COST_BASES.get(rule.cost_basis),
            credit_threshold_minor=rule.credit_threshold_minor,
        )
        created_rule, created = await alerts.create_rule(
            self._alerts_uow(), self._alert_plans, command, request.idempotency_key
        )
        if created_rule.live:
            self._alert_watch.rule_created(created_rule)
        return metering_pb2.CreateAlertRuleResponse(rule=alert_rule_to_pb(created_rule), created=created)

    async def GetAlertRule(self, request, context):  # noqa: N802
        rule = await alerts.get_rule(self._alerts_uow(), request.rule_id)
        return metering_pb2.GetAlertRuleResponse(rule=alert_rule_to_pb(rule))

    async def ListAlertRules(self, request, context):  # noqa: N802
        page, token = await alerts.list_rules(
            self._alerts_uow(), request.organisation_id, request.include_deleted, request.page_size,
            request.page_token,
        )
        return metering_pb2.ListAlertRulesResponse(rules=[alert_rule_to_pb(r) for r in page], next_page_token=token)

    async def DeleteAlertRule(self, request, context):  # noqa: N802
        rule = await alerts.delete_rule(self._alerts_uow(), request.rule_id)
        if self._alert_watch is not None:
            self._alert_watch.rule_deleted(rule)
        return metering_pb2.DeleteAlertRuleResponse(rule=alert_rule_to_pb(rule))

    async def ListFiredAlerts(self, request, context):  # noqa: N802
        page, token = await alerts.list_fired_alerts(
            self._alerts_uow(), request.organisation_id, request.rule_id, request.page_size, request.page_token
        )
        return metering_pb2.ListFiredAlertsResponse(
            alerts=[fired_alert_to_pb(a) for a in page], next_page_token=token
        )
