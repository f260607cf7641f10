"""Validating a charge definition as a client sends it (a JSON-like dict) into a :class:`ChargeDefinition`.

Every rejection is an ``InvalidArgument`` naming the field by its path (``charge.tiers[2].up_to``) and saying
what is expected, so nothing half-valid is ever stored or priced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.charges import ChargeDefinition, ChargeModel, PackageRounding, Tier
from services.invoicing.domain.money import decimal_text, parse_decimal

MAX_TIERS = 100
MAX_FREE_EVENTS = 10**12
HUNDRED = Decimal(100)

# Fields any model may carry. Free units make no sense where there is no unit count to reduce: a percentage
# charge prices amounts (it has free_amount and free_events instead) and a flat charge ignores usage.
_COMMON = ("minimum_amount", "maximum_amount")
_MODEL_FIELDS: dict[ChargeModel, tuple[str, ...]] = {
    ChargeModel.PER_UNIT: ("unit_price", "free_units"),
    ChargeModel.GRADUATED: ("tiers", "free_units"),
    ChargeModel.VOLUME: ("tiers", "free_units"),
    ChargeModel.PACKAGE: ("package_size", "package_price", "package_rounding", "free_units"),
    ChargeModel.PERCENTAGE: ("rate", "fixed_fee_per_event", "free_events", "free_amount", "min_per_event",
                             "max_per_event"),
    ChargeModel.FLAT: ("flat_amount",),
}  # fmt: skip
# Fields without which a model has no price at all.
_REQUIRED: dict[ChargeModel, tuple[str, ...]] = {
    ChargeModel.PER_UNIT: ("unit_price",),
    ChargeModel.GRADUATED: ("tiers",),
    ChargeModel.VOLUME: ("tiers",),
    ChargeModel.PACKAGE: ("package_size", "package_price"),
    ChargeModel.PERCENTAGE: ("rate",),
    ChargeModel.FLAT: ("flat_amount",),
}
_ALL_FIELDS = {"model", *_COMMON} | {name for names in _MODEL_FIELDS.values() for name in names}
_TIER_FIELDS = ("up_to", "unit_price", "flat_fee")
_OPTIONAL_AMOUNTS = {"minimum_amount", "maximum_amount", "min_per_event", "max_per_event"}


def model_fields(model: ChargeModel) -> tuple[str, ...]:
    """The fields a charge of ``model`` may carry, besides ``model`` itself."""
    return (*_MODEL_FIELDS[model], *_COMMON)


def non_negative(value: Any, field: str) -> Decimal:
    """A decimal that must be zero or more (prices, fees, quantities)."""
    number = parse_decimal(value, field)
    if number < 0:
        raise InvalidArgument(f"must not be negative, got {decimal_text(number)}", field=field)
    return number


def _mapping(raw: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidArgument("must be an object", field=field)
    for key in raw:
        if not isinstance(key, str):
            raise InvalidArgument("keys must be strings", field=field)
    return raw


def _model(raw: Mapping[str, Any], field: str) -> ChargeModel:
    value = raw.get("model")
    if value is None:
        raise InvalidArgument(f"is required; one of {', '.join(ChargeModel)}", field=f"{field}.model")
    try:
        return ChargeModel(value)
    except ValueError:
        raise InvalidArgument(
            f"unknown charge model {str(value)[:40]!r}; expected one of {', '.join(ChargeModel)}",
            field=f"{field}.model",
        ) from None


def validate_tiers(raw: Any, model: ChargeModel, field: str) -> tuple[Tier, ...]:
    """Tiers in ascending order: each ``up_to`` (inclusive) strictly above the previous, the first above zero,
    the last open-ended (``up_to`` null) so that every quantity falls in a tier, and nothing after it."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise InvalidArgument("must be a list of tiers", field=field)
    if not raw:
        raise InvalidArgument(f"a {model} charge needs at least one tier", field=field)
    if len(raw) > MAX_TIERS:
        raise InvalidArgument(f"at most {MAX_TIERS} tiers", field=field)
    tiers: list[Tier] = []
    previous: Decimal | None = None
    for index, raw_tier in enumerate(raw):
        path = f"{field}[{index}]"
        tier = _mapping(raw_tier, path)
        unknown = sorted(set(tier) - set(_TIER_FIELDS))
        if unknown:
            raise InvalidArgument(f"unknown field; a tier has {', '.join(_TIER_FIELDS)}", field=f"{path}.{unknown[0]}")
        if tiers and tiers[-1].up_to is None:
            raise InvalidArgument(
                f"a tier after the open-ended tier {index - 1}; only the last tier may have no up_to", field=path
            )
        up_to_raw = tier.get("up_to")
        up_to = None if up_to_raw is None else parse_decimal(up_to_raw, f"{path}.up_to")
        if up_to is not None:
            if previous is None and up_to <= 0:
                raise InvalidArgument(f"must be above 0, got {decimal_text(up_to)}", field=f"{path}.up_to")
            if previous is not None and up_to <= previous:
                raise InvalidArgument(
                    f"tiers must be in ascending order without overlap: up_to {decimal_text(up_to)} is not above "
                    f"the previous tier's up_to {decimal_text(previous)}",
                    field=f"{path}.up_to",
                )
            previous = up_to
        unit_price = non_negative(tier.get("unit_price", 0), f"{path}.unit_price")
        flat_fee = non_negative(tier.get("flat_fee", 0), f"{path}.flat_fee")
        tiers.append(Tier(up_to=up_to, unit_price=unit_price, flat_fee=flat_fee))
    if tiers[-1].up_to is not None:
        raise InvalidArgument(
            "the last tier must be open-ended (up_to null) so that every quantity has a price",
            field=f"{field}[{len(tiers) - 1}].up_to",
        )
    return tuple(tiers)


def _free_events(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgument("must be a whole number of events", field=field)
    if isinstance(value, str):
        number = parse_decimal(value, field)
        if number != number.to_integral_value():
            raise InvalidArgument("must be a whole number of events", field=field)
        value = int(number)
    if value < 0 or value > MAX_FREE_EVENTS:
        raise InvalidArgument(f"must be between 0 and {MAX_FREE_EVENTS}", field=field)
    return value


def validate_charge(raw: Mapping[str, Any], field: str = "charge") -> ChargeDefinition:
    """A client's charge definition, checked and typed.

    ``raw`` has ``model`` and the model's fields (see ``docs/pricing.md``); decimals are strings or integers.
    Unknown fields, fields of another model, negative amounts, a rate over 100 %, unordered, overlapping or
    unterminated tiers, a package size of zero, a minimum above the maximum are each an ``InvalidArgument``
    whose ``field`` is the offending path under ``field``."""
    raw = _mapping(raw, field)
    model = _model(raw, field)
    allowed = set(model_fields(model))
    for key in sorted(raw):
        if key == "model":
            continue
        if key not in _ALL_FIELDS:
            raise InvalidArgument(
                f"unknown field; a {model} charge has {', '.join(sorted(allowed))}", field=f"{field}.{key}"
            )
        if key not in allowed:
            raise InvalidArgument(
                f"is not used by the {model} model; it has {', '.join(sorted(allowed))}", field=f"{field}.{key}"
            )
    # null means absent, so a client may send every key of its form
    given = {key: value for key, value in raw.items() if value is not None and key != "model"}
    for name in _REQUIRED[model]:
        if name not in given:
            raise InvalidArgument(f"is required for a {model} charge", field=f"{field}.{name}")

    values: dict[str, Any] = {}
    for name, value in given.items():
        path = f"{field}.{name}"
        if name == "tiers":
            values[name] = validate_tiers(value, model, path)
        elif name == "package_rounding":
            try:
                values[name] = PackageRounding(value)
            except ValueError:
                raise InvalidArgument("must be 'up' or 'down'", field=path) from None
        elif name == "free_events":
            values[name] = _free_events(value, path)
        else:
            values[name] = non_negative(value, path)

    if model is ChargeModel.PACKAGE and values["package_size"] <= 0:
        raise InvalidArgument("must be above 0 (units per package)", field=f"{field}.package_size")
    if model is ChargeModel.PERCENTAGE and values["rate"] > HUNDRED:
        raise InvalidArgument(
            f"is a percentage and must be at most 100, got {decimal_text(values['rate'])}", field=f"{field}.rate"
        )
    _check_range(values, "minimum_amount", "maximum_amount", field)
    _check_range(values, "min_per_event", "max_per_event", field)
    return ChargeDefinition(model=model, **values)


def _check_range(values: Mapping[str, Any], low: str, high: str, field: str) -> None:
    if values.get(low) is not None and values.get(high) is not None and values[low] > values[high]:
        raise InvalidArgument(
            f"must not exceed {high} ({decimal_text(values[high])}), got {decimal_text(values[low])}",
            field=f"{field}.{low}",
        )


def _tier_to_dict(tier: Tier) -> dict[str, Any]:
    return {
        "up_to": None if tier.up_to is None else decimal_text(tier.up_to),
        "unit_price": decimal_text(tier.unit_price),
        "flat_fee": decimal_text(tier.flat_fee),
    }


def charge_to_dict(charge: ChargeDefinition) -> dict[str, Any]:
    """A charge as JSON-ready data (decimals as strings, absent optional amounts as null): the model's fields
    and the common ones only. ``validate_charge(charge_to_dict(c)) == c`` for every valid ``c``."""
    data: dict[str, Any] = {"model": charge.model.value}
    for name in model_fields(charge.model):
        value = getattr(charge, name)
        if name == "tiers":
            data[name] = [_tier_to_dict(tier) for tier in value]
        elif name == "package_rounding":
            data[name] = value.value
        elif name == "free_events":
            data[name] = value
        elif name in _OPTIONAL_AMOUNTS and value is None:
            data[name] = None
        else:
            data[name] = decimal_text(value)
    return data
