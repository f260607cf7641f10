"""Entitlements: features a plan version grants (``sso: true``, ``seats: 10``, ``support: "priority"``), and that an
organisation's overrides grant over its plan's.

A value is a ``bool``, a ``Decimal`` or a ``str``. As JSON-like data (a client's request, the stored terms) it is
tagged with the name of the contract's oneof field, ``{"number_value": "10"}``, so that a number and a string
that looks like one stay apart. Bounds are decided here once: keys in metering's code format, at most
:data:`MAX_ENTITLEMENTS` a plan, numbers finite with at most :data:`NUMBER_PLACES` decimals and below
:data:`NUMBER_LIMIT` in absolute value, strings printable and at most :data:`MAX_TEXT_LENGTH` characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.money import decimal_text, parse_decimal

EntitlementValue = bool | Decimal | str

FEATURE_KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_KEY_RULE = "must be a lowercase letter followed by at most 63 lowercase letters, digits, '_', '.' or '-'"
MAX_ENTITLEMENTS = 100
NUMBER_LIMIT = Decimal(10) ** 12
NUMBER_PLACES = 6
MAX_TEXT_LENGTH = 256
KINDS = ("bool_value", "number_value", "string_value")
_LIMIT_RULE = "must be less than 10^12 in absolute value"
_PLACES_RULE = f"must have at most {NUMBER_PLACES} decimal places"


def entitlement_field(container: str, key: str) -> str:
    """The path of one entitlement in an error: ``entitlements["seats"]`` (a bad key is cut short, and shown
    with its quotes escaped, so the path never echoes unbounded input)."""
    shown = key[:64].replace("\\", "\\\\").replace('"', '\\"') if isinstance(key, str) else "?"
    return f'{container}["{shown}"]'


def validate_feature(key: Any, field: str) -> str:
    """A feature key: a lowercase letter, then at most 63 lowercase letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(key, str) or not key:
        raise InvalidArgument("is required: a feature key such as 'sso' or 'seats'", field=field)
    if not FEATURE_KEY.fullmatch(key):
        raise InvalidArgument(f"is not a feature key: it {_KEY_RULE}", field=field)
    return key


def _number(raw: Any, field: str) -> Decimal:
    try:
        number = parse_decimal(raw, field)
    except InvalidArgument as error:
        if error.message.startswith("must be less than"):  # parse_decimal's wider bound: say ours
            raise InvalidArgument(_LIMIT_RULE, field=field) from None
        if "decimal places" in error.message:
            raise InvalidArgument(_PLACES_RULE, field=field) from None
        raise
    if abs(number) >= NUMBER_LIMIT:
        raise InvalidArgument(_LIMIT_RULE, field=field)
    if number != number.quantize(Decimal(1).scaleb(-NUMBER_PLACES)):
        raise InvalidArgument(_PLACES_RULE, field=field)
    return number


def _text(raw: Any, field: str) -> str:
    if not isinstance(raw, str):
        raise InvalidArgument("must be a string", field=field)
    if not raw:
        raise InvalidArgument("must not be empty", field=field)
    if len(raw) > MAX_TEXT_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_TEXT_LENGTH} characters", field=field)
    if not raw.isprintable():
        raise InvalidArgument("must be printable text (no control characters or line breaks)", field=field)
    return raw


def validate_value(raw: Any, field: str) -> EntitlementValue:
    """One value from its tagged form: exactly one of ``bool_value``, ``number_value``, ``string_value``."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"must be an object with exactly one of {', '.join(KINDS)}", field=field)
    given = [kind for kind in KINDS if raw.get(kind) is not None]
    unknown = [key for key in raw if key not in KINDS]
    if unknown or len(given) != 1:
        raise InvalidArgument(f"must set exactly one of {', '.join(KINDS)}", field=field)
    (kind,) = given
    value = raw[kind]
    if kind == "bool_value":
        if not isinstance(value, bool):
            raise InvalidArgument("must be true or false", field=field)
        return value
    if kind == "number_value":
        return _number(value, field)
    return _text(value, field)


def value_to_dict(value: EntitlementValue) -> dict[str, Any]:
    """The tagged form of a value; ``validate_value(value_to_dict(v), f) == v``."""
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, Decimal):
        return {"number_value": decimal_text(value)}
    return {"string_value": value}


def validate_entitlements(raw: Any, field: str = "entitlements") -> dict[str, EntitlementValue]:
    """A mapping of feature key to tagged value, at most :data:`MAX_ENTITLEMENTS` of them, sorted by key."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidArgument("must be an object of feature key to value", field=field)
    if len(raw) > MAX_ENTITLEMENTS:
        raise InvalidArgument(f"at most {MAX_ENTITLEMENTS} entries", field=field)
    checked: dict[str, EntitlementValue] = {}
    for key in sorted(raw, key=str):
        path = entitlement_field(field, key)
        validate_feature(key, path)
        checked[key] = validate_value(raw[key], path)
    return checked


def entitlements_to_dict(entitlements: Mapping[str, EntitlementValue]) -> dict[str, dict[str, Any]]:
    return {key: value_to_dict(entitlements[key]) for key in sorted(entitlements)}


def same_value(a: EntitlementValue | None, b: EntitlementValue | None) -> bool:
    """Equal and of one kind: ``True == Decimal(1)`` in Python, but a feature granted is not one seat."""
    return type(a) is type(b) and a == b


def same_entitlements(a: Mapping[str, EntitlementValue], b: Mapping[str, EntitlementValue]) -> bool:
    return a.keys() == b.keys() and all(same_value(a[key], b[key]) for key in a)
