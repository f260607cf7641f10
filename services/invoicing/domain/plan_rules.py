"""Validating a plan version's terms as a client sends them (a JSON-like dict) into :class:`PlanVersionTerms`.

A plan is rejected whole, with the path of what is wrong (``charges[1].charge.tiers[0].up_to``), so that a
half-valid catalog is never stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.charge_rules import charge_to_dict, non_negative, validate_charge
from services.invoicing.domain.currencies import is_invoiceable
from services.invoicing.domain.entitlements import entitlements_to_dict, validate_entitlements
from services.invoicing.domain.money import decimal_text
from services.invoicing.domain.plan import (
    DEFAULT_SAC_CODE,
    BaseFeeTiming,
    BillingInterval,
    IngestRateLimit,
    PlanCharge,
    PlanVersionTerms,
    Quota,
    QuotaCap,
)

# The format of metering's metric codes (services/metering/domain/metric.py), repeated rather than imported so
# that the services share contracts, not code. Plan codes use it too ("standard", "enterprise-2026").
METRIC_CODE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
PLAN_CODE = METRIC_CODE
_CODE_RULE = "must be a lowercase letter followed by at most 63 lowercase letters, digits, '_', '.' or '-'"
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 2000
MAX_CHARGES = 100
# Services Accounting Codes of GST: six digits, chapter 99.
SAC_CODE = re.compile(r"^99\d{4}$")
_TERMS_FIELDS = ("currency", "base_fee", "charges", "quotas", "gst_rate", "sac_code", "description",
                 "enforce_quotas_at_ingest", "entitlements", "ingest_rate_limit", "billing_interval",
                 "base_fee_timing", "annual_discount_percent", "listed")
_CHARGE_FIELDS = ("metric_code", "charge", "display_name", "gst_rate", "sac_code")
_QUOTA_FIELDS = ("metric_code", "limit", "cap", "grace_percent", "grace_hours")
_RATE_FIELDS = ("events_per_second", "burst")
# Events per second of one project, and the most at once (ingest checks them per batch of up to 100,000).
MAX_EVENTS_PER_SECOND = 1_000_000
MAX_BURST = 10_000_000
# A leap year's hours: a grace period longer than any billing period means nothing more.
MAX_GRACE_HOURS = 8784
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_plan_code(code: Any, field: str = "code") -> str:
    """A plan's code: a lowercase letter, then at most 63 lowercase letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(code, str) or not code:
        raise InvalidArgument("is required", field=field)
    if not PLAN_CODE.fullmatch(code):
        raise InvalidArgument(_CODE_RULE, field=field)
    return code


def validate_metric_code(code: Any, field: str) -> str:
    """A metric's code, in the format metering gives it and events carry."""
    if not isinstance(code, str) or not code:
        raise InvalidArgument("is required", field=field)
    if not METRIC_CODE.fullmatch(code):
        raise InvalidArgument(_CODE_RULE, field=field)
    return code


def validate_plan_name(name: Any, field: str = "name") -> str:
    """A plan's display name: 1 to 100 characters, no control characters, surrounding spaces removed."""
    return _text(name, field, MAX_NAME_LENGTH, required=True)


def _text(value: Any, field: str, limit: int, *, required: bool = False, multiline: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidArgument("must be a string", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidArgument("is required", field=field)
    if len(value) > limit:
        raise InvalidArgument(f"must be at most {limit} characters", field=field)
    if _CONTROL.search(value.replace("\n", "") if multiline else value):
        raise InvalidArgument("must not contain control characters", field=field)
    return value


def _mapping(raw: Any, field: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidArgument("must be an object", field=field or None)
    for key in raw:
        if key not in allowed:
            raise InvalidArgument(
                f"unknown field; expected {', '.join(allowed)}", field=f"{field}.{key}" if field else str(key)
            )
    return raw


def _list(raw: Any, field: str, limit: int) -> Sequence[Any]:
    if raw is None:
        return ()
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise InvalidArgument("must be a list", field=field)
    if len(raw) > limit:
        raise InvalidArgument(f"at most {limit} entries", field=field)
    return raw


def _percentage(value: Any, field: str) -> Decimal:
    """A percentage: 0 to 100 with at most two decimals ("18", "0.25")."""
    rate = non_negative(value, field)
    if rate > 100:
        raise InvalidArgument(f"is a percentage and must be at most 100, got {decimal_text(rate)}", field=field)
    if rate != rate.quantize(Decimal("0.01")):
        raise InvalidArgument("must have at most 2 decimal places", field=field)
    return rate


def validate_gst_rate(value: Any, field: str) -> Decimal:
    """A GST rate in percent: 0 to 100 with at most two decimals ("18", "0.25")."""
    return _percentage(value, field)


def validate_sac_code(value: Any, field: str) -> str:
    """A GST Services Accounting Code: six digits starting with 99 ("998314")."""
    if not isinstance(value, str) or not SAC_CODE.fullmatch(value):
        raise InvalidArgument("must be a SAC code: 6 digits starting with 99, such as 998314", field=field)
    return value


def _plan_charge(raw: Any, field: str) -> PlanCharge:
    raw = _mapping(raw, field, _CHARGE_FIELDS)
    metric_code = validate_metric_code(raw.get("metric_code"), f"{field}.metric_code")
    if raw.get("charge") is None:
        raise InvalidArgument("is required", field=f"{field}.charge")
    charge = validate_charge(raw["charge"], f"{field}.charge")
    gst_rate = raw.get("gst_rate")
    sac_code = raw.get("sac_code")
    return PlanCharge(
        metric_code=metric_code,
        charge=charge,
        display_name=_text(raw.get("display_name"), f"{field}.display_name", MAX_NAME_LENGTH),
        gst_rate=None if gst_rate is None else validate_gst_rate(gst_rate, f"{field}.gst_rate"),
        sac_code="" if sac_code in (None, "") else validate_sac_code(sac_code, f"{field}.sac_code"),
    )


def _quota(raw: Any, field: str) -> Quota:
    raw = _mapping(raw, field, _QUOTA_FIELDS)
    metric_code = validate_metric_code(raw.get("metric_code"), f"{field}.metric_code")
    if raw.get("limit") is None:
        raise InvalidArgument("is required", field=f"{field}.limit")
    limit = non_negative(raw["limit"], f"{field}.limit")
    try:
        cap = QuotaCap(raw.get("cap"))
    except ValueError:
        raise InvalidArgument("must be 'hard' or 'soft'", field=f"{field}.cap") from None
    grace_percent = Decimal(0)
    if raw.get("grace_percent") not in (None, ""):
        if cap is not QuotaCap.HARD:
            raise InvalidArgument(
                "applies to hard caps only: a soft cap already lets usage through", field=f"{field}.grace_percent"
            )
        grace_percent = _percentage(raw["grace_percent"], f"{field}.grace_percent")
    grace_hours = raw.get("grace_hours") or 0
    if isinstance(grace_hours, bool) or not isinstance(grace_hours, int):
        raise InvalidArgument("must be a whole number of hours", field=f"{field}.grace_hours")
    if not 0 <= grace_hours <= MAX_GRACE_HOURS:
        raise InvalidArgument(f"must be from 0 to {MAX_GRACE_HOURS} hours", field=f"{field}.grace_hours")
    if grace_hours and not grace_percent:
        raise InvalidArgument(
            "needs a grace_percent: it is how long usage may stay within the grace allowance",
            field=f"{field}.grace_hours",
        )
    return Quota(metric_code=metric_code, limit=limit, cap=cap, grace_percent=grace_percent, grace_hours=grace_hours)


def _whole(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"must be a whole number from {low:,} to {high:,}", field=field)
    return value


def _ingest_rate_limit(raw: Any) -> IngestRateLimit | None:
    """Events per second and burst; a burst left out (or 0) is one second's worth."""
    if raw is None:
        return None
    field = "ingest_rate_limit"
    raw = _mapping(raw, field, _RATE_FIELDS)
    if raw.get("events_per_second") is None:
        raise InvalidArgument("is required", field=f"{field}.events_per_second")
    rate = _whole(raw["events_per_second"], f"{field}.events_per_second", 1, MAX_EVENTS_PER_SECOND)
    burst = raw.get("burst") or rate
    return IngestRateLimit(rate, _whole(burst, f"{field}.burst", 1, MAX_BURST))


def _choice(raw: Any, field: str, kind: type[BillingInterval] | type[BaseFeeTiming], default: Any) -> Any:
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InvalidArgument(f"must be one of {', '.join(item.value for item in kind)}", field=field) from None


def _interval_terms(raw: Mapping[str, Any]) -> tuple[BillingInterval, BaseFeeTiming, Decimal]:
    """The billing interval, the base fee's timing and the annual discount (a year's only)."""
    interval = _choice(raw.get("billing_interval"), "billing_interval", BillingInterval, BillingInterval.MONTH)
    timing = _choice(raw.get("base_fee_timing"), "base_fee_timing", BaseFeeTiming, BaseFeeTiming.IN_ARREARS)
    discount = Decimal(0)
    if raw.get("annual_discount_percent") not in (None, ""):
        discount = _percentage(raw["annual_discount_percent"], "annual_discount_percent")
        if discount and interval is not BillingInterval.YEAR:
            raise InvalidArgument(
                f"applies to a yearly plan only; this plan is billed every {interval.value}",
                field="annual_discount_percent",
            )
    return interval, timing, discount


def validate_terms(raw: Mapping[str, Any]) -> PlanVersionTerms:
    """A plan version's terms, checked and typed.

    ``currency`` must be an invoiceable ISO 4217 code; ``base_fee`` >= 0; ``charges`` one per metric (codes
    in metering's format); ``quotas`` only for metrics the plan charges; GST rates 0-100 % with at most two
    decimals; SAC codes six digits starting 99; a quota's grace (a percent of 0-100 and hours of 0-8784) on hard
    caps only; entitlements as ``entitlements.validate_entitlements`` checks them; an ingest rate of 1 to
    1,000,000 events per second with a burst of 1 to 10,000,000; ``billing_interval`` month, quarter or year,
    ``base_fee_timing`` in_advance or in_arrears, and an ``annual_discount_percent`` (0-100, two decimals) on yearly
    plans only. Any fault is an
    ``InvalidArgument`` naming its path."""
    raw = _mapping(raw, "", _TERMS_FIELDS)
    currency = raw.get("currency")
    if not isinstance(currency, str) or not currency:
        raise InvalidArgument("is required: an ISO 4217 code such as INR", field="currency")
    if not is_invoiceable(currency):
        raise InvalidArgument(
            f"unknown currency {currency[:8]!r}; expected an ISO 4217 code such as INR, USD", field="currency"
        )
    base_fee = non_negative(0 if raw.get("base_fee") is None else raw["base_fee"], "base_fee")

    charges: list[PlanCharge] = []
    for index, raw_charge in enumerate(_list(raw.get("charges"), "charges", MAX_CHARGES)):
        charge = _plan_charge(raw_charge, f"charges[{index}]")
        if any(existing.metric_code == charge.metric_code for existing in charges):
            raise InvalidArgument(
                f"a second charge for metric {charge.metric_code!r}; a plan has one per metric",
                field=f"charges[{index}].metric_code",
            )
        charges.append(charge)

    charged = {charge.metric_code for charge in charges}
    quotas: list[Quota] = []
    for index, raw_quota in enumerate(_list(raw.get("quotas"), "quotas", MAX_CHARGES)):
        quota = _quota(raw_quota, f"quotas[{index}]")
        if quota.metric_code not in charged:
            raise InvalidArgument(
                f"plan declares a quota for {quota.metric_code} but has no charge for it",
                field=f"quotas[{index}].metric_code",
            )
        if any(existing.metric_code == quota.metric_code for existing in quotas):
            raise InvalidArgument(
                f"a second quota for metric {quota.metric_code!r}; a plan has one per metric",
                field=f"quotas[{index}].metric_code",
            )
        quotas.append(quota)

    enforce = raw.get("enforce_quotas_at_ingest")
    if enforce is not None and not isinstance(enforce, bool):
        raise InvalidArgument("must be true or false", field="enforce_quotas_at_ingest")
    listed = raw.get("listed")
    if listed is not None and not isinstance(listed, bool):
        raise InvalidArgument("must be true or false", field="listed")
    gst_rate = raw.get("gst_rate")
    sac_code = raw.get("sac_code")
    interval, timing, discount = _interval_terms(raw)
    return PlanVersionTerms(
        currency=currency,
        base_fee=base_fee,
        charges=tuple(charges),
        quotas=tuple(quotas),
        gst_rate=Decimal(18) if gst_rate is None else validate_gst_rate(gst_rate, "gst_rate"),
        sac_code=DEFAULT_SAC_CODE if sac_code in (None, "") else validate_sac_code(sac_code, "sac_code"),
        description=_text(raw.get("description"), "description", MAX_DESCRIPTION_LENGTH, multiline=True),
        enforce_quotas_at_ingest=bool(enforce),
        listed=bool(listed),
        entitlements=validate_entitlements(raw.get("entitlements")),
        ingest_rate_limit=_ingest_rate_limit(raw.get("ingest_rate_limit")),
        billing_interval=interval,
        base_fee_timing=timing,
        annual_discount_percent=discount,
    )


def _quota_to_dict(quota: Quota) -> dict[str, Any]:
    data: dict[str, Any] = {
        "metric_code": quota.metric_code, "limit": decimal_text(quota.limit), "cap": quota.cap.value
    }
    if quota.grace_percent:
        data["grace_percent"] = decimal_text(quota.grace_percent)
    if quota.grace_hours:
        data["grace_hours"] = quota.grace_hours
    return data


def terms_to_dict(terms: PlanVersionTerms) -> dict[str, Any]:
    """Terms as JSON-ready data (decimals as strings); ``validate_terms(terms_to_dict(t)) == t``.

    A quota's grace, the enforcement flag, entitlements and the interval terms appear only when not the default:
    terms stored (and fingerprints taken) before they existed read and compare the same."""
    data: dict[str, Any] = {
        "currency": terms.currency,
        "base_fee": decimal_text(terms.base_fee),
        "charges": [
            {
                "metric_code": charge.metric_code,
                "charge": charge_to_dict(charge.charge),
                "display_name": charge.display_name,
                "gst_rate": None if charge.gst_rate is None else decimal_text(charge.gst_rate),
                "sac_code": charge.sac_code,
            }
            for charge in terms.charges
        ],
        "quotas": [_quota_to_dict(quota) for quota in terms.quotas],
        "gst_rate": decimal_text(terms.gst_rate),
        "sac_code": terms.sac_code,
        "description": terms.description,
    }
    if terms.enforce_quotas_at_ingest:
        data["enforce_quotas_at_ingest"] = True
    if terms.listed:
        data["listed"] = True
    if terms.entitlements:
        data["entitlements"] = entitlements_to_dict(terms.entitlements)
    if terms.ingest_rate_limit is not None:
        data["ingest_rate_limit"] = {"events_per_second": terms.ingest_rate_limit.events_per_second,
                                     "burst": terms.ingest_rate_limit.burst}
    if terms.billing_interval is not BillingInterval.MONTH:
        data["billing_interval"] = terms.billing_interval.value
    if terms.base_fee_timing is not BaseFeeTiming.IN_ARREARS:
        data["base_fee_timing"] = terms.base_fee_timing.value
    if terms.annual_discount_percent:
        data["annual_discount_percent"] = decimal_text(terms.annual_discount_percent)
    return data
