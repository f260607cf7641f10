"""The arithmetic of coupons on an invoice: how much each takes off, and from which lines. Pure integers of minor
units: the lines are already rounded, and a discount is rounded once.

- What a coupon applies to (its *base*) is the invoice's priced items before tax: each base fee, and each charge
  with its minimum-spend or maximum-cap adjustment folded in (so an item is never negative), restricted to the
  coupon's plans when it names some.
- A percentage takes ``percent_off`` of the base, rounded half-up to a minor unit; a fixed amount takes its amount,
  capped at the base. Neither ever takes off more than the base: no item, and no invoice, goes below zero.
- The discount is allocated across the items in proportion to their amounts by the largest-remainder rule: each
  item gets the whole minor units of its exact share, and the units left over go one each to the items with the
  largest fractional remainders (the earlier item first on a tie). The allocations sum exactly to the discount,
  each is within one minor unit of the exact share, and none exceeds its item. GST is then computed on the
  discounted amounts (the invoice shows one discount line per coupon and GST rate, so each rate's taxable amount
  is its items less what was allocated to them).
- Several coupons apply one after the other (``coupon.application_order``: percentages first, then fixed amounts,
  each by when it was applied), each to what the ones before it left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from services.invoicing.domain.coupon import CouponRedemption, Discount, DiscountKind, application_order, applies_in
from services.invoicing.domain.money import EXACT, round_minor


@dataclass(frozen=True)
class DiscountBase:
    """One priced item of an invoice a coupon can take from: its amount (>= 0) and where its discount goes."""

    amount_minor: int
    gst_rate: Decimal
    sac_code: str
    plan_code: str


@dataclass(frozen=True)
class AppliedDiscount:
    """A redemption's discount on one invoice: the amount and its allocation per base (in the bases' order)."""

    redemption: CouponRedemption
    amount_minor: int
    allocations: tuple[int, ...]


def discount_minor(discount: Discount, base_minor: int, currency: str) -> int:
    """What ``discount`` takes off ``base_minor`` (>= 0) minor units of ``currency``: a percentage rounded half-up
    to a minor unit, or the fixed amount capped at the base. Never more than the base, never negative."""
    if base_minor <= 0:
        return 0
    if discount.kind is DiscountKind.PERCENT:
        assert discount.percent_off is not None
        # At most two decimals of percent on an integer: the exact product has at most four places.
        with localcontext(EXACT):
            exact = Decimal(base_minor) * discount.percent_off / 100
        return min(int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)), base_minor)
    assert discount.amount_off is not None and discount.currency == currency
    return min(round_minor(discount.amount_off, currency), base_minor)


def allocate(total_minor: int, weights: Sequence[int]) -> tuple[int, ...]:
    """``total_minor`` split across ``weights`` (each >= 0, their sum >= ``total_minor`` >= 0) in proportion, by
    the largest-remainder rule: whole shares first, the units left over one each to the largest remainders,
    earlier weights first on a tie. The result sums to ``total_minor`` and no share exceeds its weight."""
    whole = sum(weights)
    if total_minor < 0 or any(weight < 0 for weight in weights) or total_minor > whole:
        raise ValueError(f"cannot allocate {total_minor} over {list(weights)}")
    if total_minor == 0:
        return tuple(0 for _ in weights)
    shares = [divmod(total_minor * weight, whole) for weight in weights]
    left = total_minor - sum(share for share, _ in shares)
    # Fewer units are left than there are weights with a remainder, so each gets at most one, and a weight with
    # a remainder has share < weight (share + 1 <= weight): no allocation passes its item.
    ranked = sorted(range(len(weights)), key=lambda index: (-shares[index][1], index))
    chosen = set(ranked[:left])
    return tuple(share + (1 if index in chosen else 0) for index, (share, _) in enumerate(shares))


def apply_coupons(
    bases: Sequence[DiscountBase], redemptions: Sequence[CouponRedemption], period_key: str, currency: str
) -> tuple[AppliedDiscount, ...]:
    """The discounts of the redemptions that apply to the invoice of ``period_key`` in ``currency``, in application
    order, each on what is left of its eligible bases. A redemption whose discount comes to nothing (no eligible
    item, or an amount that rounds to zero) is left out: it does not use up a period."""
    remaining = [base.amount_minor for base in bases]
    applied: list[AppliedDiscount] = []
    for redemption in application_order(redemptions):
        if not applies_in(redemption, period_key, currency):
            continue
        plans = redemption.coupon.terms.plan_codes
        eligible = [index for index, base in enumerate(bases) if not plans or base.plan_code in plans]
        amount = discount_minor(redemption.coupon.terms.discount, sum(remaining[i] for i in eligible), currency)
        if amount == 0:
            continue
        shares = dict(zip(eligible, allocate(amount, [remaining[i] for i in eligible]), strict=True))
        allocations = tuple(shares.get(index, 0) for index in range(len(bases)))
        remaining = [left - taken for left, taken in zip(remaining, allocations, strict=True)]
        applied.append(AppliedDiscount(redemption, amount, allocations))
    return tuple(applied)
