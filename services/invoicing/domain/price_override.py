"""Price overrides: an organisation's own prices on a plan (the base fee, and a charge's whole price model per
metric) without a copy of the plan.

An organisation has at most one override set per plan, kept as numbered versions: each change makes a version
in force from the start of a day in the organisation's zone, and older versions stay (an invoice of a past
period is explained by the version that priced it). A version with no prices is a clearing: the plan's own
prices apply again from its start.

An override replaces what it names on whichever version of the plan the organisation is on: the base fee, and
the price model of each charge whose metric the plan version charges (a charge the version lacks is ignored,
never added); quotas, GST rates, SAC codes and display names stay the plan's. Its prices are in the plan's
currency: a plan version in another currency is priced as the plan says.

Pricing a period cuts it at each version's start, the way a plan change does (:func:`split_by_overrides`), so a
change mid-period is prorated by days like a plan change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.billing_period import days_between
from services.invoicing.domain.charge_rules import charge_to_dict, non_negative, validate_charge
from services.invoicing.domain.charges import ChargeDefinition
from services.invoicing.domain.currencies import is_invoiceable
from services.invoicing.domain.money import decimal_text
from services.invoicing.domain.plan import PlanVersion, PlanVersionTerms
from services.invoicing.domain.plan_rules import MAX_CHARGES, validate_metric_code
from services.invoicing.domain.subscription import Segment

AGREED = "price agreed for this organisation"
_FIELDS = ("currency", "base_fee", "charges")
_CHARGE_FIELDS = ("metric_code", "charge")


@dataclass(frozen=True)
class PriceOverrideTerms:
    """What an override version prices: ``base_fee`` (None: the plan's) and price models by metric code."""

    currency: str
    base_fee: Decimal | None = None
    charges: Mapping[str, ChargeDefinition] = field(default_factory=dict)

    @property
    def cleared(self) -> bool:
        """No prices: the plan's own apply."""
        return self.base_fee is None and not self.charges


@dataclass(frozen=True)
class PriceOverride:
    """One version of an organisation's override set on a plan, in force from ``effective_from`` until the next
    version's."""

    id: str
    organisation_id: str
    plan_id: str
    plan_code: str
    version: int
    effective_from: datetime
    terms: PriceOverrideTerms
    created_at: datetime

    @property
    def label(self) -> str:
        """What an invoice line priced by it says."""
        return f"{AGREED} (override v{self.version})"


def _mapping(raw: Any, field: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidArgument("must be an object", field=field or None)
    for key in raw:
        if key not in allowed:
            shown = str(key)[:64]
            raise InvalidArgument(f"unknown field; expected {', '.join(allowed)}",
                                  field=f"{field}.{shown}" if field else shown)
    return raw


def validate_override_terms(raw: Any, plan: PlanVersionTerms | None) -> PriceOverrideTerms:
    """An override's terms as a client sends them: ``currency`` (optional; the plan's), ``base_fee`` (a decimal,
    or absent/empty for the plan's) and ``charges`` (``[{metric_code, charge}]``, a charge as
    ``charge_rules.validate_charge`` checks a plan's). Against ``plan`` (the plan's latest version): the same
    currency, and only metrics the plan charges, each once. At least one price. Faults are ``InvalidArgument``
    naming the path (``charges[0].charge.tiers[1].up_to``).

    With ``plan`` None (terms read back from storage) the currency is required and the metrics are not checked,
    and a clearing (no prices) is allowed."""
    raw = _mapping(raw, "", _FIELDS)
    currency = raw.get("currency") or (plan.currency if plan is not None else None)
    if not isinstance(currency, str) or not currency:
        raise InvalidArgument("is required: an ISO 4217 code such as INR", field="currency")
    if not is_invoiceable(currency):
        raise InvalidArgument(f"unknown currency {currency[:8]!r}; expected an ISO 4217 code such as INR",
                              field="currency")
    if plan is not None and currency != plan.currency:
        raise InvalidArgument(f"is {currency}; an override is in its plan's currency, {plan.currency}",
                              field="currency")
    base_fee_raw = raw.get("base_fee")
    base_fee = None if base_fee_raw in (None, "") else non_negative(base_fee_raw, "base_fee")
    charges_raw = raw.get("charges") or ()
    if isinstance(charges_raw, (str, bytes)) or not isinstance(charges_raw, Sequence):
        raise InvalidArgument("must be a list", field="charges")
    if len(charges_raw) > MAX_CHARGES:
        raise InvalidArgument(f"at most {MAX_CHARGES} entries", field="charges")
    charged = {charge.metric_code for charge in plan.charges} if plan is not None else None
    charges: dict[str, ChargeDefinition] = {}
    for index, raw_charge in enumerate(charges_raw):
        path = f"charges[{index}]"
        entry = _mapping(raw_charge, path, _CHARGE_FIELDS)
        code = validate_metric_code(entry.get("metric_code"), f"{path}.metric_code")
        if charged is not None and code not in charged:
            raise InvalidArgument(f"the plan has no charge for metric {code!r}; an override replaces the price of "
                                  "one of the plan's charges", field=f"{path}.metric_code")
        if code in charges:
            raise InvalidArgument(f"a second price for metric {code!r}; one per metric", field=f"{path}.metric_code")
        if entry.get("charge") is None:
            raise InvalidArgument("is required", field=f"{path}.charge")
        charges[code] = validate_charge(entry["charge"], f"{path}.charge")
    terms = PriceOverrideTerms(currency=currency, base_fee=base_fee, charges=dict(sorted(charges.items())))
    if plan is not None and terms.cleared:
        raise InvalidArgument("an override needs a base_fee or at least one charge; to go back to the plan's prices, "
                              "clear the override", field="charges")
    return terms


def override_terms_to_dict(terms: PriceOverrideTerms) -> dict[str, Any]:
    """JSON-ready terms; ``validate_override_terms(override_terms_to_dict(t), None) == t``."""
    return {
        "currency": terms.currency,
        "base_fee": None if terms.base_fee is None else decimal_text(terms.base_fee),
        "charges": [{"metric_code": code, "charge": charge_to_dict(charge)} for code, charge in terms.charges.items()],
    }


def in_force(overrides: Sequence[PriceOverride], plan_id: str, at: datetime) -> PriceOverride | None:
    """The version of the organisation's override on ``plan_id`` in force at ``at``; None when none is, or the
    one in force is a clearing."""
    found = None
    for override in overrides:
        if override.plan_id == plan_id and override.effective_from <= at and (
            found is None or override.version > found.version
        ):
            found = override
    return None if found is None or found.terms.cleared else found


def applies_to(override: PriceOverride | None, version: PlanVersion) -> bool:
    return override is not None and override.plan_id == version.plan_id and (
        override.terms.currency == version.terms.currency
    )


def apply_override(version: PlanVersion, override: PriceOverride | None) -> PlanVersion:
    """``version`` as priced for the organisation: its base fee and charge models replaced by the override's,
    and ``price_override`` set. ``version`` itself when the override does not apply to it."""
    if override is None or not applies_to(override, version):
        return version
    terms = override.terms
    priced = replace(
        version.terms,
        base_fee=version.terms.base_fee if terms.base_fee is None else terms.base_fee,
        charges=tuple(
            replace(charge, charge=terms.charges[charge.metric_code]) if charge.metric_code in terms.charges else charge
            for charge in version.terms.charges
        ),
    )
    return replace(version, terms=priced, price_override=override)


def overrides_base_fee(version: PlanVersion) -> bool:
    """Whether ``version`` (as priced) carries an override of its base fee."""
    override = version.price_override
    return override is not None and override.terms.base_fee is not None


def overrides_charge(version: PlanVersion, metric_code: str) -> bool:
    override = version.price_override
    return override is not None and metric_code in override.terms.charges


def split_by_overrides(
    parts: Sequence[tuple[Segment, PlanVersion]], overrides: Sequence[PriceOverride], time_zone: str
) -> tuple[tuple[Segment, PlanVersion], ...]:
    """Each segment cut where the override in force on its plan changes, each part with its plan version as
    priced (:func:`apply_override`). Versions start at the start of a local day, so the parts' days add up to
    the segment's. Without overrides, ``parts`` as they are."""
    if not overrides:
        return tuple(parts)
    result: list[tuple[Segment, PlanVersion]] = []
    for segment, version in parts:
        cuts = sorted({o.effective_from for o in overrides
                       if o.plan_id == version.plan_id and segment.start < o.effective_from < segment.end})
        bounds = [segment.start, *cuts, segment.end]
        pieces: list[tuple[datetime, datetime, PriceOverride | None]] = []
        for start, end in zip(bounds, bounds[1:], strict=False):
            override = in_force(overrides, version.plan_id, start)
            override = override if applies_to(override, version) else None
            if pieces and (pieces[-1][2] is None) == (override is None) and (
                override is None or pieces[-1][2] == override
            ):
                pieces[-1] = (pieces[-1][0], end, override)  # nothing changes at this cut
            else:
                pieces.append((start, end, override))
        for start, end, override in pieces:
            days = segment.days if (start, end) == (segment.start, segment.end) else days_between(start, end, time_zone)
            result.append((replace(segment, start=start, end=end, days=days), apply_override(version, override)))
    return tuple(result)
