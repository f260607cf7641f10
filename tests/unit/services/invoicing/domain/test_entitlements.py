"""Entitlement keys and values: what is accepted, what is refused (naming the entry), and the tagged round trip."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain.entitlements import (
    MAX_TEXT_LENGTH,
    entitlement_field,
    entitlements_to_dict,
    same_entitlements,
    same_value,
    validate_entitlements,
    validate_feature,
    validate_value,
    value_to_dict,
)

keys = st.from_regex(r"\A[a-z][a-z0-9_.-]{0,63}\Z")
numbers = st.decimals(min_value=Decimal("-999999999999.999999"), max_value=Decimal("999999999999.999999"),
                      places=6, allow_nan=False, allow_infinity=False)
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs")),
                min_size=1, max_size=MAX_TEXT_LENGTH)
values = st.one_of(st.booleans(), numbers, texts)


@given(st.dictionaries(keys, values, max_size=20))
def test_entitlements_round_trip_through_their_tagged_form(entitlements: dict[str, Any]) -> None:
    checked = validate_entitlements(entitlements_to_dict(entitlements))
    assert same_entitlements(checked, entitlements)
    assert list(checked) == sorted(entitlements)


@given(keys)
def test_every_key_of_the_format_is_accepted(key: str) -> None:
    assert validate_feature(key, "feature") == key


@given(st.text(max_size=80).filter(lambda k: not (k[:1].islower() and k.isascii())))
def test_keys_not_starting_with_a_lowercase_ascii_letter_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_feature(key, "feature")
    assert caught.value.field == "feature"


@given(st.decimals(min_value=Decimal(10) ** 12, max_value=Decimal(10) ** 30, places=6), st.booleans())
def test_numbers_of_10_to_the_12_or_more_are_refused(magnitude: Decimal, negative: bool) -> None:
    number = -magnitude if negative else magnitude
    with pytest.raises(InvalidArgument, match="10\\^12"):
        validate_value({"number_value": str(number)}, "f")


def test_a_feature_granted_is_not_one_seat() -> None:
    assert True == Decimal(1)  # noqa: E712 - the reason same_value exists
    assert not same_value(True, Decimal(1))
    assert not same_entitlements({"x": True}, {"x": Decimal(1)})
    assert same_value(Decimal("10"), Decimal("10.0"))
    assert value_to_dict(True) == {"bool_value": True}
    assert value_to_dict(Decimal("2.50")) == {"number_value": "2.50"}
    assert value_to_dict("10") == {"string_value": "10"}  # a string that looks like a number stays a string


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"number_value": "NaN"}, "decimal number"),
        ({"number_value": "1.5e3"}, None),
        ({"number_value": 1.5}, "binary float"),
        ({"number_value": True}, "boolean"),
        ({"string_value": ""}, "must not be empty"),
        ({"string_value": "x" * (MAX_TEXT_LENGTH + 1)}, f"at most {MAX_TEXT_LENGTH}"),
        ({"string_value": "line\nbreak"}, "printable"),
        ({"string_value": 5}, "must be a string"),
        ({"bool_value": 1}, "true or false"),
        ({"colour": "red"}, "exactly one of"),
        ("priority", "must be an object"),
    ],
)
def test_values(raw: Any, message: str | None) -> None:
    if message is None:
        assert validate_value(raw, "f") == Decimal(1500)
        return
    with pytest.raises(InvalidArgument) as caught:
        validate_value(raw, 'entitlements["f"]')
    assert caught.value.field == 'entitlements["f"]'
    assert message in caught.value.message


def test_an_entry_path_never_echoes_unbounded_input() -> None:
    long_key = '"' + "k" * 10_000
    field = entitlement_field("entitlements", long_key)
    assert len(field) < 100 and field.startswith('entitlements["\\"kkk')
    with pytest.raises(InvalidArgument) as caught:
        validate_entitlements({long_key: {"bool_value": True}})
    assert caught.value.field == field and long_key not in caught.value.message
