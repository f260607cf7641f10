"""The REST shapes of the catalog: charges, plans and their versions, subscriptions and exchange rates.

They mirror the invoicing protobuf messages field for field (snake_case), with enums as lower-case words
(``"per_unit"``, ``"hard"``) and decimals as strings. A plan version's ``terms`` as returned can be sent back
unchanged as the terms of a new version. An entitlement's value is ``true``/``false``, a string, or a number: sent
as a JSON number (read exactly) or as ``{"number": "12.5"}``, and always returned as ``{"number": "12.5"}``, so
that a number and a string that looks like one (``"10"``) stay apart. Validation of prices, tiers, currencies,
quotas and entitlements is invoicing's: it answers INVALID_ARGUMENT naming the field
(``terms.charges[0].charge.tiers[1].up_to``, ``terms.entitlements["seats"]``), which the gateway returns as 400.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    model_serializer,
)

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.gateway.entrypoints.http.decimal_json import DECIMAL_SCHEMA, DecimalText, decimal_text
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

ChargeModelName = Literal["per_unit", "graduated", "volume", "package", "percentage", "flat"]
CHARGE_MODELS = EnumNames.of(invoicing_pb2.ChargeModel, "CHARGE_MODEL_")
PACKAGE_ROUNDINGS = EnumNames.of(invoicing_pb2.PackageRounding, "PACKAGE_ROUNDING_")
QUOTA_CAPS = EnumNames.of(invoicing_pb2.QuotaCap, "QUOTA_CAP_")
BILLING_INTERVALS = EnumNames.of(invoicing_pb2.BillingInterval, "BILLING_INTERVAL_")
BASE_FEE_TIMINGS = EnumNames.of(invoicing_pb2.BaseFeeTiming, "BASE_FEE_TIMING_")
SUBSCRIPTION_STATES = EnumNames.of(invoicing_pb2.SubscriptionState, "SUBSCRIPTION_STATE_")
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def _text(value: str | None) -> str:
    """An optional decimal as protobuf text: unset is the empty string."""
    return "" if value is None else value


def _optional(text: str) -> str | None:
    return text or None


class Tier(Request):
    up_to: DecimalText | None = Field(None, description="Inclusive upper bound; null on the last, open tier",
                                      examples=["1000"])
    unit_price: DecimalText | None = Field(None, examples=["0.10"])
    flat_fee: DecimalText | None = Field(None, description="Charged once usage reaches into the tier",
                                         examples=["0"])

    def to_pb(self) -> invoicing_pb2.Tier:
        return invoicing_pb2.Tier(up_to=_text(self.up_to), unit_price=_text(self.unit_price),
                                  flat_fee=_text(self.flat_fee))

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Tier) -> Tier:
        return cls(up_to=_optional(message.up_to), unit_price=_optional(message.unit_price),
                   flat_fee=_optional(message.flat_fee))


_CHARGE_DECIMALS = ("unit_price", "package_size", "package_price", "rate", "fixed_fee_per_event", "free_amount",
                    "min_per_event", "max_per_event", "flat_amount", "free_units", "minimum_amount",
                    "maximum_amount")

CHARGE_EXAMPLES = [
    {"model": "per_unit", "unit_price": "0.05", "free_units": "10000"},
    {"model": "graduated", "tiers": [{"up_to": "1000", "unit_price": "0.10", "flat_fee": "0"},
                                     {"up_to": None, "unit_price": "0.05"}]},
    {"model": "percentage", "rate": "2.5", "fixed_fee_per_event": "3", "minimum_amount": "500"},
]


class Charge(Request):
    """A pricing rule. Only the fields of its model may be set (plus free units, minimum and maximum amount);
    fields left out are unset, and are left out when a charge is returned."""

    model: ChargeModelName
    unit_price: DecimalText | None = Field(None, description="per_unit: price of one unit")
    tiers: list[Tier] | None = Field(None, description="graduated, volume: ordered tiers, the last one open")
    package_size: DecimalText | None = Field(None, description="package: units per package")
    package_price: DecimalText | None = Field(None, description="package: price of one package")
    package_rounding: Literal["up", "down"] | None = Field(None, description="package: partial packages are "
                                                                             "charged (up, the default) or not")
    rate: DecimalText | None = Field(None, description="percentage: percent of each event's amount, \"2.5\" is "
                                                       "2.5 %")
    fixed_fee_per_event: DecimalText | None = None
    free_events: int | None = Field(None, ge=0, le=INT64_MAX, description="percentage: events priced at zero")
    free_amount: DecimalText | None = Field(None, description="percentage: summed amount priced at zero")
    min_per_event: DecimalText | None = None
    max_per_event: DecimalText | None = None
    flat_amount: DecimalText | None = Field(None, description="flat: the amount per period")
    free_units: DecimalText | None = Field(None, description="Units not charged, taken off the quantity first")
    minimum_amount: DecimalText | None = Field(None, description="A minimum spend: the charge is brought up to it")
    maximum_amount: DecimalText | None = Field(None, description="A cap: the charge is brought down to it")

    model_config = {**Request.model_config, "json_schema_extra": {"examples": CHARGE_EXAMPLES}}

    @model_serializer(mode="wrap")
    # No return annotation: then the serialization schema stays the model's own, and /docs shows every field.
    def _without_unset(self, handler: SerializerFunctionWrapHandler):
        return {name: value for name, value in handler(self).items() if value is not None}

    def to_pb(self) -> invoicing_pb2.Charge:
        message = invoicing_pb2.Charge(
            model=CHARGE_MODELS.number(self.model),
            tiers=[tier.to_pb() for tier in self.tiers or ()],
            free_events=self.free_events or 0,
            **{name: _text(getattr(self, name)) for name in _CHARGE_DECIMALS},
        )
        if self.package_rounding is not None:
            message.package_rounding = PACKAGE_ROUNDINGS.number(self.package_rounding)
        return message

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Charge) -> Charge:
        return cls(
            model=CHARGE_MODELS.name(message.model) or "per_unit",
            tiers=[Tier.from_pb(tier) for tier in message.tiers] or None,
            package_rounding=PACKAGE_ROUNDINGS.name(message.package_rounding),
            free_events=message.free_events or None,
            **{name: _optional(getattr(message, name)) for name in _CHARGE_DECIMALS},
        )


class PlanCharge(Request):
    metric_code: str = Field(description="The metric whose usage this charge prices", examples=["api_calls"])
    charge: Charge
    display_name: str = Field("", description="The invoice line's name; default the metric code",
                              examples=["API calls"])
    gst_rate: DecimalText | None = Field(None, description="GST percent for this charge; default the plan's")
    sac_code: str = Field("", description="Services Accounting Code; default the plan's", examples=["998315"])

    def to_pb(self) -> invoicing_pb2.PlanCharge:
        return invoicing_pb2.PlanCharge(metric_code=self.metric_code, charge=self.charge.to_pb(),
                                        display_name=self.display_name, gst_rate=_text(self.gst_rate),
                                        sac_code=self.sac_code)

    @classmethod
    def from_pb(cls, message: invoicing_pb2.PlanCharge) -> PlanCharge:
        return cls(metric_code=message.metric_code, charge=Charge.from_pb(message.charge),
                   display_name=message.display_name, gst_rate=_optional(message.gst_rate),
                   sac_code=message.sac_code)


class Quota(Request):
    metric_code: str = Field(examples=["api_calls"])
    limit: DecimalText = Field(description="Usage allowed per billing period", examples=["100000"])
    cap: Literal["hard", "soft"] = Field(description="hard: refuse past the limit (and its grace); soft: warn and "
                                                     "bill")
    grace_percent: DecimalText | None = Field(
        None, description="Hard caps only: usage may go this many percent over the limit (0-100, at most 2 "
                          "decimals); null for no grace", examples=["10"])
    grace_hours: int = Field(0, ge=0, le=INT32_MAX, description="With grace_percent: for this many hours after usage "
                                                                "first went over the limit in the period (at most "
                                                                "8784); 0 for the rest of the period", examples=[48])

    def to_pb(self) -> invoicing_pb2.Quota:
        return invoicing_pb2.Quota(metric_code=self.metric_code, limit=self.limit, cap=QUOTA_CAPS.number(self.cap),
                                   grace_percent=_text(self.grace_percent), grace_hours=self.grace_hours)

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Quota) -> Quota:
        return cls(metric_code=message.metric_code, limit=message.limit,
                   cap=QUOTA_CAPS.name(message.cap) or "hard", grace_percent=_optional(message.grace_percent),
                   grace_hours=message.grace_hours)


class IngestRateLimit(Request):
    """How fast each project of an organisation on the plan may send events (ingest answers 429 beyond it)."""

    events_per_second: int = Field(ge=1, le=1_000_000, description="Sustained rate per project", examples=[1000])
    burst: int = Field(0, ge=0, le=10_000_000, description="Events at once from idle; 0 (the default) means one "
                                                           "second's worth", examples=[20000])

    def to_pb(self) -> invoicing_pb2.IngestRateLimit:
        return invoicing_pb2.IngestRateLimit(events_per_second=self.events_per_second, burst=self.burst)


class EntitlementNumber(Request):
    """A numeric feature value, e.g. seats."""

    number: DecimalText = Field(description="An exact decimal: at most 6 decimals, below 10^12 in absolute value",
                                examples=["10"])


def _entitlement_value(value: Any) -> Any:
    """A JSON number is a numeric value (``{"number": ...}``); booleans, strings and objects are left to the
    union. Floats (a body parsed without exact decimals) are refused by ``decimal_text``."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return EntitlementNumber(number=decimal_text(value))
    return value


_ENTITLEMENT_VALUE_SCHEMA = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "string", "maxLength": 256},
        {"type": "number"},
        {"type": "object", "properties": {"number": DECIMAL_SCHEMA}, "required": ["number"],
         "additionalProperties": False},
    ],
    "description": "true/false; a string (at most 256 printable characters); or a number, as a JSON number (read "
                   "exactly) or as {\"number\": \"12.5\"}. Numbers are returned as {\"number\": \"12.5\"}.",
}
EntitlementValue = Annotated[
    StrictBool | EntitlementNumber | StrictStr,
    BeforeValidator(_entitlement_value),
    WithJsonSchema(_ENTITLEMENT_VALUE_SCHEMA, mode="validation"),
]
"""A feature's value as REST has it: ``True``, ``"priority"`` or ``EntitlementNumber(number="10")``."""

Entitlements = Annotated[
    dict[str, EntitlementValue],
    Field(description="Features by key: a lowercase letter, then lowercase letters, digits, '_', '.' or '-' (at "
                      "most 64 characters, at most 100 features)",
          examples=[{"sso": True, "seats": {"number": "10"}, "support": "priority"}]),
]


def entitlement_value_to_pb(value: bool | EntitlementNumber | str) -> invoicing_pb2.EntitlementValue:
    if isinstance(value, bool):
        return invoicing_pb2.EntitlementValue(bool_value=value)
    if isinstance(value, EntitlementNumber):
        return invoicing_pb2.EntitlementValue(number_value=value.number)
    return invoicing_pb2.EntitlementValue(string_value=value)


def entitlement_value_from_pb(message: invoicing_pb2.EntitlementValue) -> bool | EntitlementNumber | str:
    kind = message.WhichOneof("value")
    if kind == "bool_value":
        return message.bool_value
    if kind == "number_value":
        return EntitlementNumber(number=message.number_value)
    return message.string_value


def entitlements_to_pb(target: MutableMapping[str, invoicing_pb2.EntitlementValue],
                       entitlements: Mapping[str, bool | EntitlementNumber | str]) -> None:
    for key, value in entitlements.items():
        target[key].CopyFrom(entitlement_value_to_pb(value))


def entitlements_from_pb(
    entitlements: Mapping[str, invoicing_pb2.EntitlementValue],
) -> dict[str, bool | EntitlementNumber | str]:
    return {key: entitlement_value_from_pb(entitlements[key]) for key in sorted(entitlements)}


class PlanTerms(Request):
    """What a plan version charges: a base fee per period and one charge per metric, in one currency."""

    currency: str = Field(description="ISO 4217 code every price is in", examples=["INR"])
    base_fee: DecimalText | None = Field(None, description="Per month: a quarterly plan charges 3 of it a quarter, a "
                                                           "yearly one 12 less annual_discount_percent a year; "
                                                           "prorated by days on a plan change", examples=["999"])
    charges: list[PlanCharge] = Field(default_factory=list)
    quotas: list[Quota] = Field(default_factory=list, description="Each on a metric the plan charges for")
    gst_rate: DecimalText | None = Field(None, description="GST percent; default 18", examples=["18"])
    sac_code: str = Field("", examples=["998315"])
    description: str = Field("", examples=["For growing teams"])
    enforce_quotas_at_ingest: StrictBool = Field(False, description="Whether ingest refuses events over this plan's "
                                                                    "hard caps (soft caps never refuse)")
    entitlements: Entitlements = Field(default_factory=dict)
    ingest_rate_limit: IngestRateLimit | None = Field(None, description="Events per second per project, with "
                                                                        "bursts; null: the platform's default")
    billing_interval: Literal["month", "quarter", "year"] | None = Field(
        None, description="How often the base fee recurs (default month); usage is always invoiced monthly, in "
                          "arrears", examples=["year"])
    base_fee_timing: Literal["in_advance", "in_arrears"] | None = Field(
        None, description="A quarter's or year's base fee on the invoice of its first month (in_advance) or of its "
                          "last (in_arrears, the default)", examples=["in_advance"])
    annual_discount_percent: DecimalText | None = Field(
        None, description="Yearly plans: percent off 12 months of base fee (0-100, at most 2 decimals)",
        examples=["10"])
    listed: StrictBool = Field(False, description="Whether the organisations' people see this plan in their plan "
                                                  "picker and may move to it themselves (default: an operator's only)")

    def to_pb(self) -> invoicing_pb2.PlanTerms:
        message = invoicing_pb2.PlanTerms(
            currency=self.currency, base_fee=_text(self.base_fee), charges=[c.to_pb() for c in self.charges],
            quotas=[q.to_pb() for q in self.quotas], gst_rate=_text(self.gst_rate), sac_code=self.sac_code,
            description=self.description, enforce_quotas_at_ingest=self.enforce_quotas_at_ingest,
            listed=self.listed,
        )
        entitlements_to_pb(message.entitlements, self.entitlements)
        if self.ingest_rate_limit is not None:
            message.ingest_rate_limit.CopyFrom(self.ingest_rate_limit.to_pb())
        if self.billing_interval is not None:
            message.billing_interval = BILLING_INTERVALS.number(self.billing_interval)
        if self.base_fee_timing is not None:
            message.base_fee_timing = BASE_FEE_TIMINGS.number(self.base_fee_timing)
        message.annual_discount_percent = _text(self.annual_discount_percent)
        return message

    @classmethod
    def from_pb(cls, message: invoicing_pb2.PlanTerms) -> PlanTerms:
        return cls(
            currency=message.currency, base_fee=_optional(message.base_fee),
            charges=[PlanCharge.from_pb(c) for c in message.charges],
            quotas=[Quota.from_pb(q) for q in message.quotas], gst_rate=_optional(message.gst_rate),
            sac_code=message.sac_code, description=message.description,
            enforce_quotas_at_ingest=message.enforce_quotas_at_ingest, listed=message.listed,
            entitlements=entitlements_from_pb(message.entitlements),
            ingest_rate_limit=IngestRateLimit(events_per_second=message.ingest_rate_limit.events_per_second,
                                              burst=message.ingest_rate_limit.burst)
            if message.HasField("ingest_rate_limit") else None,
            billing_interval=BILLING_INTERVALS.name(message.billing_interval),  # type: ignore[arg-type]
            base_fee_timing=BASE_FEE_TIMINGS.name(message.base_fee_timing),  # type: ignore[arg-type]
            annual_discount_percent=_optional(message.annual_discount_percent),
        )


TERMS_EXAMPLE = {
    "currency": "INR",
    "base_fee": "999",
    "charges": [
        {"metric_code": "api_calls", "display_name": "API calls",
         "charge": {"model": "graduated", "tiers": [{"up_to": "100000", "unit_price": "0.02"},
                                                    {"up_to": None, "unit_price": "0.01"}]}},
        {"metric_code": "storage_gb", "display_name": "Storage (GB)",
         "charge": {"model": "per_unit", "unit_price": "5"}},
    ],
    "quotas": [{"metric_code": "api_calls", "limit": "5000000", "cap": "hard", "grace_percent": "10",
                "grace_hours": 48}],
    "gst_rate": "18",
    "sac_code": "998315",
    "description": "For growing teams",
    "enforce_quotas_at_ingest": True,
    "entitlements": {"sso": True, "seats": {"number": "10"}, "support": "priority"},
    "ingest_rate_limit": {"events_per_second": 1000, "burst": 20000},
}


class PlanCreate(Request):
    code: str = Field(description="Lower-case letters, digits, '_' and '-'; unique", examples=["standard"])
    name: str = Field(examples=["Standard"])
    terms: PlanTerms = Field(examples=[TERMS_EXAMPLE])

    def to_pb(self, idempotency_key: str) -> invoicing_pb2.CreatePlanRequest:
        return invoicing_pb2.CreatePlanRequest(code=self.code, name=self.name, terms=self.terms.to_pb(),
                                               idempotency_key=idempotency_key)


class PlanVersionCreate(Request):
    terms: PlanTerms = Field(examples=[TERMS_EXAMPLE])
    name: str = Field("", description="A new display name for the plan; empty keeps it")
    reason: str = Field(min_length=1, max_length=500, examples=["GST-inclusive list prices from April"],
                        description="Why the terms change (a price change): kept in the audit log")

    def to_pb(self, plan_id: str, idempotency_key: str) -> invoicing_pb2.CreatePlanVersionRequest:
        return invoicing_pb2.CreatePlanVersionRequest(plan_id=plan_id, terms=self.terms.to_pb(), name=self.name,
                                                      idempotency_key=idempotency_key)


class PlanVersion(BaseModel):
    id: str
    plan_id: str
    plan_code: str
    plan_name: str
    version: int = Field(description="1 for the plan's first terms, then 2, 3 ...")
    terms: PlanTerms
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.PlanVersion) -> PlanVersion:
        return cls(id=message.id, plan_id=message.plan_id, plan_code=message.plan_code,
                   plan_name=message.plan_name, version=message.version, terms=PlanTerms.from_pb(message.terms),
                   created_at=from_timestamp(message.create_time))


class Plan(BaseModel):
    id: str
    code: str
    name: str
    latest_version: PlanVersion | None
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Plan) -> Plan:
        latest = PlanVersion.from_pb(message.latest_version) if message.HasField("latest_version") else None
        return cls(id=message.id, code=message.code, name=message.name, latest_version=latest,
                   created_at=from_timestamp(message.create_time))


class SubscriptionCreate(Request):
    organisation_id: str
    plan_version_id: str = Field("", description="The plan version; or give plan_code")
    plan_code: str = Field("", description="The plan's latest version", examples=["standard"])
    start_date: date | None = Field(None, description="In the organisation's time zone; default today",
                                    examples=["2026-11-01"])
    billing_anchor_day: int = Field(0, ge=0, le=28, description="Day of the month periods start on; 0 means 1")

    def to_pb(self, idempotency_key: str) -> invoicing_pb2.CreateSubscriptionRequest:
        return invoicing_pb2.CreateSubscriptionRequest(
            organisation_id=self.organisation_id, plan_version_id=self.plan_version_id, plan_code=self.plan_code,
            start_date=self.start_date.isoformat() if self.start_date else "",
            billing_anchor_day=self.billing_anchor_day, idempotency_key=idempotency_key,
        )


class SubscriptionChangePlan(Request):
    plan_version_id: str = Field("", description="The plan version to move to; or give plan_code")
    plan_code: str = Field("", examples=["enterprise"])
    effective_date: date | None = Field(None, description="The change takes effect at the start of this day in the "
                                                          "organisation's time zone; default today")

    def to_pb(self, subscription_id: str) -> invoicing_pb2.ChangeSubscriptionPlanRequest:
        return invoicing_pb2.ChangeSubscriptionPlanRequest(
            subscription_id=subscription_id, plan_version_id=self.plan_version_id, plan_code=self.plan_code,
            effective_date=self.effective_date.isoformat() if self.effective_date else "",
        )


class SubscriptionCancel(Request):
    at_period_end: StrictBool = Field(True, description="true: at the end of the current billing period; false: now")


class SubscriptionPhase(BaseModel):
    plan_version_id: str
    starts_at: datetime | None
    ends_at: datetime | None = Field(description="null while the phase is open")

    @classmethod
    def from_pb(cls, message: invoicing_pb2.SubscriptionPhase) -> SubscriptionPhase:
        return cls(plan_version_id=message.plan_version_id, starts_at=from_timestamp(message.start_time),
                   ends_at=from_timestamp(message.end_time))


class PriceOverrideCharge(Request):
    metric_code: str = Field(description="A metric the plan charges", examples=["api_calls"])
    charge: Charge = Field(description="Its price model for the organisation, in place of the plan's")


class PriceOverrideSet(Request):
    """The organisation's own prices on the plan: the base fee, and a price model per metric the plan charges."""

    currency: str = Field("", description="The plan's currency (empty means it; another is refused)")
    base_fee: DecimalText | None = Field(None, description="Per billing period; null keeps the plan's (\"0\" waives "
                                                           "it)", examples=["1500"])
    charges: list[PriceOverrideCharge] = Field(default_factory=list, max_length=100)
    effective_date: date | None = Field(None, description="In force from the start of this day in the "
                                                          "organisation's time zone; default today")

    def to_pb(self, organisation_id: str, plan_code: str, idempotency_key: str
              ) -> invoicing_pb2.SetPriceOverrideRequest:
        return invoicing_pb2.SetPriceOverrideRequest(
            organisation_id=organisation_id, plan_code=plan_code, idempotency_key=idempotency_key,
            effective_date=self.effective_date.isoformat() if self.effective_date else "",
            terms=invoicing_pb2.PriceOverrideTerms(
                currency=self.currency, base_fee=_text(self.base_fee),
                charges=[invoicing_pb2.PriceOverrideCharge(metric_code=c.metric_code, charge=c.charge.to_pb())
                         for c in self.charges],
            ),
        )


class PriceOverride(BaseModel):
    """One version of an organisation's own prices on a plan, in force from ``effective_at`` until the next's."""

    id: str
    organisation_id: str
    plan_id: str
    plan_code: str
    version: int
    effective_at: datetime | None
    currency: str
    base_fee: str | None = Field(description="null: the plan's base fee applies")
    charges: list[PriceOverrideCharge]
    cleared: bool = Field(description="A clearing: the plan's own prices apply from effective_at")
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.PriceOverride) -> PriceOverride:
        terms = message.terms
        return cls(
            id=message.id, organisation_id=message.organisation_id, plan_id=message.plan_id,
            plan_code=message.plan_code, version=message.version,
            effective_at=from_timestamp(message.effective_time), currency=terms.currency,
            base_fee=_optional(terms.base_fee),
            charges=[PriceOverrideCharge(metric_code=c.metric_code, charge=Charge.from_pb(c.charge))
                     for c in terms.charges],
            cleared=message.cleared, created_at=from_timestamp(message.create_time),
        )


class Subscription(BaseModel):
    id: str
    organisation_id: str
    state: Literal["active", "canceled"] | None
    plan_version_id: str = Field(description="The plan version in force now")
    billing_anchor_day: int
    phases: list[SubscriptionPhase] = Field(description="Stretches of time on one plan version, oldest first")
    cancel_at_period_end: bool
    ends_at: datetime | None = Field(description="Set by a cancellation")
    created_at: datetime | None
    past_due: bool = Field(description="True while one of the organisation's invoices is uncollectible (dunning "
                                       "gave up); cleared once it is paid")
    past_due_at: datetime | None = Field(description="When it became past due; null when it is not")
    price_override: PriceOverride | None = Field(None, description="The organisation's own prices in force now on "
                                                                   "the plan (GET of one subscription only)")

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Subscription) -> Subscription:
        return cls(
            id=message.id, organisation_id=message.organisation_id, state=SUBSCRIPTION_STATES.name(message.state),
            plan_version_id=message.plan_version_id, billing_anchor_day=message.billing_anchor_day,
            phases=[SubscriptionPhase.from_pb(p) for p in message.phases],
            cancel_at_period_end=message.cancel_at_period_end, ends_at=from_timestamp(message.end_time),
            created_at=from_timestamp(message.create_time), past_due=message.past_due,
            past_due_at=from_timestamp(message.past_due_time),
            price_override=PriceOverride.from_pb(message.price_override) if message.HasField("price_override")
            else None,
        )


class ExchangeRateCreate(Request):
    base_currency: str = Field(examples=["USD"])
    quote_currency: str = Field(examples=["INR"])
    rate: DecimalText = Field(description="1 base_currency = rate quote_currency", examples=["84.50"])
    source: str = Field(min_length=1, description="Where the rate came from (required)",
                        examples=["RBI reference rate"])
    effective_at: datetime | None = Field(None, description="When it takes effect (UTC without an offset); "
                                                            "default now", examples=["2026-11-01T00:00:00Z"])

    def to_pb(self) -> invoicing_pb2.CreateExchangeRateRequest:
        message = invoicing_pb2.CreateExchangeRateRequest(
            base_currency=self.base_currency, quote_currency=self.quote_currency, rate=self.rate, source=self.source
        )
        if self.effective_at is not None:
            message.effective_time.CopyFrom(to_timestamp(self.effective_at))
        return message


class ExchangeRate(BaseModel):
    id: str
    base_currency: str
    quote_currency: str
    rate: str = Field(description="1 base_currency = rate quote_currency", examples=["84.50"])
    source: str
    effective_at: datetime | None
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.ExchangeRate) -> ExchangeRate:
        return cls(id=message.id, base_currency=message.base_currency, quote_currency=message.quote_currency,
                   rate=message.rate, source=message.source, effective_at=from_timestamp(message.effective_time),
                   created_at=from_timestamp(message.create_time))


class EntitlementOverrideSet(Request):
    value: EntitlementValue = Field(examples=[True, {"number": "25"}, "priority"])


class EntitlementOverrides(BaseModel):
    """Features granted to an organisation over its plan's (or that its plan lacks)."""

    organisation_id: str
    overrides: Entitlements

    @classmethod
    def from_pb(cls, organisation_id: str,
                overrides: Mapping[str, invoicing_pb2.EntitlementValue]) -> EntitlementOverrides:
        return cls(organisation_id=organisation_id, overrides=entitlements_from_pb(overrides))
