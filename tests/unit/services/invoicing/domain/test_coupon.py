"""Coupons: their terms as clients give them, when one can be applied to an organisation, and which billing periods
a redemption discounts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.coupon import (
    Coupon,
    CouponDuration,
    CouponRedemption,
    DiscountKind,
    RedemptionState,
    application_order,
    applies_in,
    check_redeemable,
    validate_coupon,
    validate_discount,
)

D = Decimal
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def coupon(**fields: object) -> Coupon:
    raw: dict = {"code": "launch20", "name": "Launch offer", "percent_off": "20", "duration": "repeating",
                 "duration_periods": 3} | fields
    return Coupon("cpn_1", validate_coupon(**raw), created_at=NOW - timedelta(days=30))


def redemption(found: Coupon, *, start: str = "2026-10", used: tuple[str, ...] = (), removed: bool = False,
               applied: datetime = NOW, redemption_id: str = "cpr_1") -> CouponRedemption:
    return CouponRedemption(redemption_id, found, "org_1", start, applied, NOW if removed else None, frozenset(used))


def test_terms_are_normalised() -> None:
    terms = validate_coupon(code=" launch-20 ", name=" Launch offer ", amount_off="500.5", currency="inr",
                            duration="forever", plan_codes=["standard", "enterprise", "standard"],
                            max_redemptions=100, expires_at=NOW)
    assert (terms.code, terms.name, terms.plan_codes) == ("LAUNCH-20", "Launch offer", ("enterprise", "standard"))
    assert terms.discount.kind is DiscountKind.FIXED_AMOUNT
    assert (terms.discount.amount_off, terms.discount.currency) == (D("500.5"), "INR")
    assert (terms.duration, terms.periods, terms.max_redemptions) == (CouponDuration.FOREVER, None, 100)
    assert terms.discount.describe() == "INR 500.50 off"
    once = validate_coupon(code="WELCOME", name="Welcome", percent_off="12.50", duration="once")
    assert (once.periods, once.discount.describe()) == (1, "12.5% off")
    assert validate_coupon(code="X", name="X", percent_off="5", duration="repeating", duration_periods=3).periods == 3


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"percent_off": "0"}, "percent_off", "more than 0"),
        ({"percent_off": "100.01"}, "percent_off", "at most 100"),
        ({"percent_off": "12.345"}, "percent_off", "2 decimal places"),
        ({"percent_off": "-5"}, "percent_off", "more than 0"),
        ({"percent_off": "20", "amount_off": "5", "currency": "INR"}, "percent_off", "one of them"),
        ({"percent_off": ""}, "percent_off", "one of them"),
        ({"percent_off": "20", "currency": "INR"}, "currency", "only for amount_off"),
        ({"percent_off": None, "amount_off": "10"}, "currency", "is required"),
        ({"percent_off": None, "amount_off": "10", "currency": "ABC"}, "currency", "ISO 4217"),
        ({"percent_off": None, "amount_off": "0", "currency": "INR"}, "amount_off", "more than 0"),
        ({"percent_off": None, "amount_off": "1.5", "currency": "JPY"}, "amount_off", "0 decimal places"),
        ({"percent_off": None, "amount_off": "1.2345", "currency": "KWD"}, "amount_off", "3 decimal places"),
        ({"percent_off": None, "amount_off": "1e20", "currency": "INR"}, "amount_off", "less than 10"),
        ({"percent_off": None, "amount_off": "1e17", "currency": "INR"}, "amount_off", "more than an invoice"),
        ({"percent_off": None, "amount_off": 1.5, "currency": "INR"}, "amount_off", "binary float"),
        ({"duration": "weekly"}, "duration", "once, repeating or forever"),
        ({"duration_periods": None}, "duration_periods", "is required"),
        ({"duration_periods": 241}, "duration_periods", "1 to 240"),
        ({"duration": "once", "duration_periods": 2}, "duration_periods", "only for a repeating"),
        ({"code": "no spaces"}, "code", "letters, digits"),
        ({"code": ""}, "code", "is required"),
        ({"name": ""}, "name", "is required"),
        ({"plan_codes": ["Standard"]}, "plan_codes[0]", "lowercase"),
        ({"max_redemptions": -1}, "max_redemptions", "whole number"),
        ({"expires_at": datetime(2027, 1, 1)}, "expires_at", "time zone"),
    ],
)
def test_bad_terms_name_the_field(fields: dict, field: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as error:
        coupon(**fields)
    assert error.value.field == field


def test_a_fixed_amount_within_the_currency_minor_units() -> None:
    assert validate_discount(None, "1.250", "KWD").amount_off == D("1.25")  # trailing zeros are not places
    assert validate_discount(None, "1000", "JPY").describe() == "JPY 1000 off"
    assert validate_discount(None, "0.005", "KWD").describe() == "KWD 0.005 off"


def test_applying_is_refused_with_a_reason() -> None:
    fine = coupon(plan_codes=["standard"])
    check_redeemable(fine, now=NOW, billing_currency="INR", plan_code="standard")
    cases = [
        (replace(fine, archived_at=NOW), "standard", "INR", "archived"),
        (coupon(expires_at=NOW - timedelta(seconds=1)), "standard", "INR", "expired at"),
        (replace(coupon(max_redemptions=2), times_redeemed=2), "standard", "INR", "redemption limit"),
        (coupon(percent_off=None, amount_off="10", currency="USD"), "standard", "INR", "billed in INR"),
        (fine, "enterprise", "INR", "applies only to plans standard, and the organisation is on plan enterprise"),
        (fine, None, "INR", "has no active subscription"),
    ]
    for found, plan_code, currency, message in cases:
        with pytest.raises(FailedPrecondition, match=message) as error:
            check_redeemable(found, now=NOW, billing_currency=currency, plan_code=plan_code)
        assert error.value.field == "coupon_code"
    # Expiry is inclusive of its instant; an unrestricted coupon fits any plan, and no plan at all.
    check_redeemable(coupon(expires_at=NOW), now=NOW, billing_currency="INR", plan_code=None)


def test_a_redemption_discounts_its_periods_from_its_start() -> None:
    three = coupon()
    assert not applies_in(redemption(three), "2026-09", "INR")  # before its start period
    assert applies_in(redemption(three), "2026-10", "INR")
    used_up = redemption(three, used=("2026-10", "2026-11", "2026-12"))
    assert used_up.state is RedemptionState.COMPLETED and used_up.periods_remaining == 0
    assert not applies_in(used_up, "2027-01", "INR")
    # A period it was used for gets the discount again (a re-run or a reissue), even after removal.
    assert applies_in(used_up, "2026-11", "INR")
    removed = redemption(three, used=("2026-10",), removed=True)
    assert removed.state is RedemptionState.REMOVED
    assert applies_in(removed, "2026-10", "INR") and not applies_in(removed, "2026-11", "INR")
    forever = redemption(coupon(duration="forever", duration_periods=None), used=tuple(f"2026-{m:02}"
                                                                                     for m in range(1, 13)))
    assert forever.periods_remaining is None and forever.state is RedemptionState.ACTIVE
    assert applies_in(forever, "2031-01", "INR")
    # A fixed amount applies only in its own currency: never converted, in no period.
    rupees = redemption(coupon(percent_off=None, amount_off="100", currency="INR"), used=("2026-10",))
    assert applies_in(rupees, "2026-11", "INR")
    assert not applies_in(rupees, "2026-11", "USD") and not applies_in(rupees, "2026-10", "USD")
    # A percentage applies in any currency.
    assert applies_in(redemption(three), "2026-10", "JPY")


def test_percentages_apply_before_fixed_amounts_then_by_when_applied() -> None:
    early, late = NOW - timedelta(days=2), NOW - timedelta(days=1)
    fixed_early = redemption(coupon(percent_off=None, amount_off="5", currency="INR"), applied=early,
                             redemption_id="cpr_a")
    percent_late = redemption(coupon(), applied=late, redemption_id="cpr_b")
    percent_early = redemption(coupon(percent_off="5"), applied=early, redemption_id="cpr_c")
    ordered = application_order([fixed_early, percent_late, percent_early])
    assert [r.id for r in ordered] == ["cpr_c", "cpr_b", "cpr_a"]
