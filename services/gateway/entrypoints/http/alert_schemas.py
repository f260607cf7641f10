"""The REST shapes of alert rules, fired alerts, quota checks and entitlements (metering's side of the API).

Levels, amounts and usage are exact decimal strings, exactly as metering computed them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from billing.metering.v1 import metering_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.decimal_json import DecimalText
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

AlertKindName = Literal["threshold", "spike", "cost", "credit_balance"]
BasisName = Literal["absolute", "quota_percent"]
CostBasisName = Literal["to_date", "forecast"]
QuotaReasonName = Literal[
    "within_limit", "no_quota", "no_subscription", "within_grace", "over_soft_cap", "over_hard_cap", "grace_expired"
]
KINDS = EnumNames.of(metering_pb2.AlertKind, "ALERT_KIND_")
BASES = EnumNames.of(metering_pb2.ThresholdBasis, "THRESHOLD_BASIS_")
COST_BASES = EnumNames.of(metering_pb2.CostBasis, "COST_BASIS_")
REASONS = EnumNames.of(metering_pb2.QuotaReason, "QUOTA_REASON_")
CAPS = EnumNames.of(metering_pb2.QuotaCap, "QUOTA_CAP_")
SOURCES = EnumNames.of(metering_pb2.EntitlementSource, "ENTITLEMENT_SOURCE_")


class AlertRuleCreate(Request):
    organisation_id: str
    project_id: str = Field("", description="Only this project's usage; empty for the whole organisation")
    kind: AlertKindName = Field(examples=["threshold"])
    name: str = Field("", examples=["API calls at 80 % and 100 % of quota"])
    metric_code: str = Field("", description="threshold and spike: the metric's code", examples=["api_calls"])
    basis: BasisName | None = Field(
        None, description="threshold: levels are usage amounts (absolute) or percents of the plan's quota"
    )
    levels: list[DecimalText] = Field(
        default_factory=list, description="threshold: amounts or percents; cost: percents of the budget "
        "(default 100). Ascending.", examples=[["80", "100", "120"]],
    )
    window_seconds: int = Field(0, ge=0, description="spike: the window compared, e.g. 3600")
    baseline_seconds: int = Field(0, ge=0, description="spike: the trailing span averaged, e.g. 604800 (7 days)")
    factor: DecimalText = Field("", description="spike: how many times the trailing average", examples=["3"])
    min_volume: DecimalText = Field("", description="spike: no alert below this usage in the window")
    budget: DecimalText = Field("", description="cost: per billing period, in the organisation's billing currency",
                                examples=["50000.00"])
    cost_basis: CostBasisName | None = Field(
        None, description="cost: compare the budget with the invoice so far (to_date, the default) or with the "
                          "forecast of the period's end (forecast)")
    credit_threshold_minor: int = Field(0, ge=0, le=2**63 - 1, description="credit_balance: fires when the "
                                        "prepaid credit balance is below this many minor units", examples=[0])

    def to_pb(self, idempotency_key: str) -> metering_pb2.CreateAlertRuleRequest:
        rule = metering_pb2.AlertRule(
            organisation_id=self.organisation_id, project_id=self.project_id, kind=KINDS.number(self.kind),
            name=self.name, metric_code=self.metric_code,
            basis=BASES.number(self.basis) if self.basis else 0, levels=self.levels,
            window_seconds=self.window_seconds, baseline_seconds=self.baseline_seconds, factor=self.factor,
            min_volume=self.min_volume, budget=self.budget,
            cost_basis=COST_BASES.number(self.cost_basis) if self.cost_basis else 0,
            credit_threshold_minor=self.credit_threshold_minor,
        )
        return metering_pb2.CreateAlertRuleRequest(rule=rule, idempotency_key=idempotency_key)


class AlertRule(BaseModel):
    id: str
    organisation_id: str
    project_id: str
    kind: AlertKindName
    name: str
    metric_code: str
    basis: BasisName | None
    levels: list[str]
    window_seconds: int
    baseline_seconds: int
    factor: str
    min_volume: str
    budget: str
    currency: str
    cost_basis: CostBasisName | None = Field(None, description="cost: to_date or forecast")
    credit_threshold_minor: int = Field(0, description="credit_balance: the threshold in minor units")
    created_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_pb(cls, m: metering_pb2.AlertRule) -> AlertRule:
        return cls(
            id=m.id, organisation_id=m.organisation_id, project_id=m.project_id, kind=KINDS.name(m.kind),
            name=m.name, metric_code=m.metric_code, basis=BASES.name(m.basis), levels=list(m.levels),
            window_seconds=m.window_seconds, baseline_seconds=m.baseline_seconds, factor=m.factor,
            min_volume=m.min_volume, budget=m.budget, currency=m.currency, cost_basis=COST_BASES.name(m.cost_basis),
            credit_threshold_minor=m.credit_threshold_minor, created_at=from_timestamp(m.create_time),
            deleted_at=from_timestamp(m.delete_time),
        )


class FiredAlert(BaseModel):
    id: str
    rule_id: str
    rule_name: str
    organisation_id: str
    project_id: str
    kind: AlertKindName
    metric_code: str
    level: str = Field(description="The rule's level as written: \"80\" (percent), \"1000\", or \"spike\"")
    threshold: str = Field(description="What the level meant when it fired: usage, or money for cost")
    value: str = Field(description="The value that reached it (cost: the invoice so far, or the forecast of the "
                                   "period's end, per the rule's cost_basis)")
    baseline: str = Field(description="spike: the trailing average per window")
    currency: str
    event_id: str = Field(description="threshold: the event that made usage reach the level")
    event_project_id: str
    event_time: datetime | None
    period_start: datetime | None
    period_end: datetime | None
    fired_at: datetime

    @classmethod
    def from_pb(cls, m: metering_pb2.FiredAlert) -> FiredAlert:
        return cls(
            id=m.id, rule_id=m.rule_id, rule_name=m.rule_name, organisation_id=m.organisation_id,
            project_id=m.project_id, kind=KINDS.name(m.kind), metric_code=m.metric_code, level=m.level,
            threshold=m.threshold, value=m.value, baseline=m.baseline, currency=m.currency, event_id=m.event_id,
            event_project_id=m.event_project_id, event_time=from_timestamp(m.event_time),
            period_start=from_timestamp(m.period_start), period_end=from_timestamp(m.period_end),
            fired_at=from_timestamp(m.fire_time),
        )


class QuotaStatus(BaseModel):
    organisation_id: str
    metric: str
    allowed: bool
    reason: QuotaReasonName
    message: str = Field(description="Why, naming the quota and its cap")
    quantity: str = Field(description="The quantity asked about")
    used: str = Field(description="Usage of the metric in the billing period so far")
    limit: str | None = Field(description="None when the plan has no quota for the metric")
    remaining: str | None
    cap: Literal["hard", "soft"] | None
    grace_limit: str | None
    grace_ends_at: datetime | None
    period_start: datetime | None
    resets_at: datetime | None
    enforced_at_ingest: bool
    plan_code: str
    plan_version: int
    usage_as_of: datetime | None = Field(description="When the usage read was metered up to")

    @classmethod
    def from_pb(cls, m: metering_pb2.QuotaStatus) -> QuotaStatus:
        return cls(
            organisation_id=m.organisation_id, metric=m.metric_code, allowed=m.allowed,
            reason=REASONS.name(m.reason) or "no_quota", message=m.message, quantity=m.quantity, used=m.used,
            limit=m.limit or None, remaining=m.remaining or None, cap=CAPS.name(m.cap),
            grace_limit=m.grace_limit or None, grace_ends_at=from_timestamp(m.grace_end_time),
            period_start=from_timestamp(m.period_start), resets_at=from_timestamp(m.reset_time),
            enforced_at_ingest=m.enforced_at_ingest, plan_code=m.plan_code, plan_version=m.plan_version,
            usage_as_of=from_timestamp(m.usage_time),
        )


class Entitlement(BaseModel):
    feature: str
    value: bool | str = Field(description="true/false, a decimal string (\"10\"), or a word (\"priority\")")
    type: Literal["bool", "number", "string"]
    source: Literal["plan", "override", "unknown"]

    @classmethod
    def from_pb(cls, m: metering_pb2.Entitlement) -> Entitlement:
        which = m.WhichOneof("value")
        if which == "number_value":
            value: bool | str = m.number_value
            kind: Literal["bool", "number", "string"] = "number"
        elif which == "string_value":
            value, kind = m.string_value, "string"
        else:
            value, kind = m.bool_value, "bool"
        return cls(feature=m.feature, value=value, type=kind, source=SOURCES.name(m.source) or "unknown")


class Entitlements(BaseModel):
    organisation_id: str
    subscription_found: bool
    plan_code: str
    plan_version: int
    entitlements: list[Entitlement]

    @classmethod
    def from_pb(cls, organisation_id: str, m: metering_pb2.GetEntitlementsResponse) -> Entitlements:
        return cls(
            organisation_id=organisation_id, subscription_found=m.subscription_found, plan_code=m.plan_code,
            plan_version=m.plan_version, entitlements=[Entitlement.from_pb(e) for e in m.entitlements],
        )
