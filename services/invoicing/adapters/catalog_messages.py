"""Protobuf <-> domain for the catalog, subscriptions, exchange rates, quotes and invoice runs.

Charges and plan terms arrive as protobuf and are handed to the domain's validators as the JSON-like data they
check (unset fields left out), so gRPC and REST clients meet the same rules and the same error paths."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import sqlalchemy as sa

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.timestamps import to_timestamp as timestamp
from services.invoicing.adapters.invoice_run_repository import failures_of
from services.invoicing.domain.charges import TierAmount
from services.invoicing.domain.entitlements import EntitlementValue, value_to_dict
from services.invoicing.domain.money import decimal_text
from services.invoicing.domain.plan import Plan, PlanVersion
from services.invoicing.domain.plan_rules import terms_to_dict
from services.invoicing.domain.pricing import Quote
from services.invoicing.domain.subscription import Subscription

_DECIMAL_FIELDS = (
    "unit_price", "package_size", "package_price", "rate", "fixed_fee_per_event", "free_amount", "min_per_event",
    "max_per_event", "flat_amount", "free_units", "minimum_amount", "maximum_amount",
)  # fmt: skip


def _enum_value(enum: Any, number: int, prefix: str) -> str | None:
    """``CHARGE_MODEL_PER_UNIT`` -> "per_unit"; None for the unspecified zero value (or an unknown number)."""
    if number == 0 or number not in enum.values():
        return None if number == 0 else f"unknown ({number})"
    return enum.Name(number).removeprefix(prefix).lower()


def _enum_number(enum: Any, value: str, prefix: str) -> int:
    return enum.Value(f"{prefix}{value.upper()}")


def charge_from_pb(charge: pb.Charge) -> dict[str, Any]:
    """The fields a client set, as the data ``charge_rules.validate_charge`` checks."""
    data: dict[str, Any] = {}
    model = _enum_value(pb.ChargeModel, charge.model, "CHARGE_MODEL_")
    if model is not None:
        data["model"] = model
    for name in _DECIMAL_FIELDS:
        if getattr(charge, name):
            data[name] = getattr(charge, name)
    if charge.tiers:
        data["tiers"] = [
            {"up_to": tier.up_to or None, "unit_price": tier.unit_price or "0", "flat_fee": tier.flat_fee or "0"}
            for tier in charge.tiers
        ]
    rounding = _enum_value(pb.PackageRounding, charge.package_rounding, "PACKAGE_ROUNDING_")
    if rounding is not None:
        data["package_rounding"] = rounding
    if charge.free_events:
        data["free_events"] = charge.free_events
    return data


def charge_to_pb(data: dict[str, Any]) -> pb.Charge:
    """From ``charge_rules.charge_to_dict``'s data."""
    message = pb.Charge(model=_enum_number(pb.ChargeModel, data["model"], "CHARGE_MODEL_"))
    for name in _DECIMAL_FIELDS:
        if data.get(name) is not None:
            setattr(message, name, data[name])
    for tier in data.get("tiers", []):
        message.tiers.add(up_to=tier["up_to"] or "", unit_price=tier["unit_price"], flat_fee=tier["flat_fee"])
    if data.get("package_rounding"):
        message.package_rounding = _enum_number(pb.PackageRounding, data["package_rounding"], "PACKAGE_ROUNDING_")
    if data.get("free_events"):
        message.free_events = data["free_events"]
    return message


def entitlement_value_from_pb(value: pb.EntitlementValue) -> dict[str, Any]:
    """The oneof as the tagged data ``entitlements.validate_value`` checks ({} when none is set)."""
    kind = value.WhichOneof("value")
    return {} if kind is None else {kind: getattr(value, kind)}


def entitlements_from_pb(entitlements: Mapping[str, pb.EntitlementValue]) -> dict[str, Any]:
    return {key: entitlement_value_from_pb(value) for key, value in entitlements.items()}


def entitlement_value_to_pb(value: EntitlementValue) -> pb.EntitlementValue:
    return pb.EntitlementValue(**value_to_dict(value))


def entitlements_to_pb(
    target: MutableMapping[str, pb.EntitlementValue], entitlements: Mapping[str, EntitlementValue]
) -> None:
    """Fill a protobuf map field (``target``) with ``entitlements``."""
    for key, value in entitlements.items():
        target[key].CopyFrom(entitlement_value_to_pb(value))


def terms_from_pb(terms: pb.PlanTerms) -> dict[str, Any]:
    """The terms a client sent, as the data ``plan_rules.validate_terms`` checks."""
    data: dict[str, Any] = {"currency": terms.currency, "charges": [], "quotas": []}
    for name in ("base_fee", "gst_rate", "sac_code", "description"):
        if getattr(terms, name):
            data[name] = getattr(terms, name)
    for charge in terms.charges:
        item: dict[str, Any] = {"metric_code": charge.metric_code, "charge": charge_from_pb(charge.charge)}
        for name in ("display_name", "gst_rate", "sac_code"):
            if getattr(charge, name):
                item[name] = getattr(charge, name)
        data["charges"].append(item)
    for quota in terms.quotas:
        item = {"metric_code": quota.metric_code, "limit": quota.limit or None}
        cap = _enum_value(pb.QuotaCap, quota.cap, "QUOTA_CAP_")
        if cap is not None:
            item["cap"] = cap
        if quota.grace_percent:
            item["grace_percent"] = quota.grace_percent
        if quota.grace_hours:
            item["grace_hours"] = quota.grace_hours
        data["quotas"].append(item)
    if terms.enforce_quotas_at_ingest:
        data["enforce_quotas_at_ingest"] = True
    if terms.listed:
        data["listed"] = True
    if terms.entitlements:
        data["entitlements"] = entitlements_from_pb(terms.entitlements)
    if terms.HasField("ingest_rate_limit"):
        data["ingest_rate_limit"] = {"events_per_second": terms.ingest_rate_limit.events_per_second,
                                     "burst": terms.ingest_rate_limit.burst}
    interval = _enum_value(pb.BillingInterval, terms.billing_interval, "BILLING_INTERVAL_")
    if interval is not None:
        data["billing_interval"] = interval
    timing = _enum_value(pb.BaseFeeTiming, terms.base_fee_timing, "BASE_FEE_TIMING_")
    if timing is not None:
        data["base_fee_timing"] = timing
    if terms.annual_discount_percent:
        data["annual_discount_percent"] = terms.annual_discount_percent
    return data


def plan_version_to_pb(version: PlanVersion) -> pb.PlanVersion:
    data = terms_to_dict(version.terms)
    terms = pb.PlanTerms(
        currency=data["currency"],
        base_fee=data["base_fee"],
        gst_rate=data["gst_rate"],
        sac_code=data["sac_code"],
        description=data["description"],
        enforce_quotas_at_ingest=version.terms.enforce_quotas_at_ingest,
        listed=version.terms.listed,
        # Stated even when they are the defaults (monthly, in arrears), so a reader need not know the defaults.
        billing_interval=_enum_number(pb.BillingInterval, version.terms.billing_interval.value, "BILLING_INTERVAL_"),
        base_fee_timing=_enum_number(pb.BaseFeeTiming, version.terms.base_fee_timing.value, "BASE_FEE_TIMING_"),
        annual_discount_percent=data.get("annual_discount_percent", ""),
    )
    entitlements_to_pb(terms.entitlements, version.terms.entitlements)
    if version.terms.ingest_rate_limit is not None:
        terms.ingest_rate_limit.events_per_second = version.terms.ingest_rate_limit.events_per_second
        terms.ingest_rate_limit.burst = version.terms.ingest_rate_limit.burst
    for charge in data["charges"]:
        terms.charges.add(
            metric_code=charge["metric_code"],
            charge=charge_to_pb(charge["charge"]),
            display_name=charge["display_name"],
            gst_rate=charge["gst_rate"] or "",
            sac_code=charge["sac_code"],
        )
    for quota in data["quotas"]:
        terms.quotas.add(
            metric_code=quota["metric_code"],
            limit=quota["limit"],
            cap=_enum_number(pb.QuotaCap, quota["cap"], "QUOTA_CAP_"),
            grace_percent=quota.get("grace_percent", ""),
            grace_hours=quota.get("grace_hours", 0),
        )
    return pb.PlanVersion(
        id=version.id,
        plan_id=version.plan_id,
        plan_code=version.plan_code,
        plan_name=version.plan_name,
        version=version.version,
        terms=terms,
        create_time=timestamp(version.created_at),
    )


def plan_to_pb(plan: Plan) -> pb.Plan:
    return pb.Plan(
        id=plan.id,
        code=plan.code,
        name=plan.name,
        latest_version=plan_version_to_pb(plan.latest_version),
        create_time=timestamp(plan.created_at),
    )


def subscription_to_pb(subscription: Subscription) -> pb.Subscription:
    message = pb.Subscription(
        id=subscription.id,
        organisation_id=subscription.organisation_id,
        state=_enum_number(pb.SubscriptionState, subscription.status.value, "SUBSCRIPTION_STATE_"),
        billing_anchor_day=subscription.billing_anchor_day,
        cancel_at_period_end=subscription.cancel_at_period_end,
        create_time=timestamp(subscription.created_at),
        plan_version_id=subscription.current_phase.plan_version_id,
    )
    if subscription.ends_at is not None:
        message.end_time.CopyFrom(timestamp(subscription.ends_at))
    if subscription.past_due_at is not None:
        message.past_due = True
        message.past_due_time.CopyFrom(timestamp(subscription.past_due_at))
    for phase in subscription.phases:
        item = message.phases.add(plan_version_id=phase.plan_version_id, start_time=timestamp(phase.starts_at))
        if phase.ends_at is not None:
            item.end_time.CopyFrom(timestamp(phase.ends_at))
    return message


def exchange_rate_row_to_pb(row: sa.Row[Any]) -> pb.ExchangeRate:
    return pb.ExchangeRate(
        id=row.id,
        base_currency=row.base_currency,
        quote_currency=row.quote_currency,
        rate=decimal_text(row.rate),
        source=row.source,
        effective_time=timestamp(row.effective_at),
        create_time=timestamp(row.created_at),
    )


def tier_amount_to_pb(tier: TierAmount) -> pb.TierAmount:
    return pb.TierAmount(
        description=tier.description,
        quantity=decimal_text(tier.quantity),
        unit_price=decimal_text(tier.unit_price),
        flat_fee=decimal_text(tier.flat_fee),
        amount=decimal_text(tier.amount),
        from_units="" if tier.from_units is None else decimal_text(tier.from_units),
        up_to="" if tier.up_to is None else decimal_text(tier.up_to),
    )


def quote_to_pb(quote: Quote) -> pb.QuotePriceResponse:
    return pb.QuotePriceResponse(
        currency=quote.currency,
        quantity=decimal_text(quote.price.quantity),
        billable_quantity=decimal_text(quote.price.billable_quantity),
        amount=decimal_text(quote.price.amount),
        breakdown=[tier_amount_to_pb(tier) for tier in quote.price.breakdown],
        usage_minor=quote.lines.usage_minor,
        minimum_spend_minor=quote.lines.minimum_spend_minor,
        maximum_cap_minor=quote.lines.maximum_cap_minor,
        total_minor=quote.total_minor,
    )


def invoice_run_to_pb(row: sa.Row[Any]) -> pb.InvoiceRun:
    message = pb.InvoiceRun(
        id=row.id,
        period_key=row.period_key,
        organisation_id=row.organisation_id,
        state=_enum_number(pb.InvoiceRunState, row.state, "INVOICE_RUN_STATE_"),
        trigger=row.trigger,
        organisations_total=row.organisations_total,
        organisations_done=row.organisations_done,
        invoiced=row.invoiced,
        already_invoiced=row.already_invoiced,
        not_due=row.not_due,
        no_subscription=row.no_subscription,
        failed=row.failed,
        failures=[pb.InvoiceRunFailure(**failure) for failure in failures_of(row)],
        create_time=timestamp(row.created_at),
    )
    if row.finished_at is not None:
        message.finish_time.CopyFrom(timestamp(row.finished_at))
    return message
