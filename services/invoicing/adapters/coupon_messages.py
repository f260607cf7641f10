"""Protobuf <-> domain for coupons and their redemptions."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.timestamps import to_timestamp as timestamp
from services.invoicing.domain.coupon import Coupon, CouponDuration, CouponRedemption
from services.invoicing.domain.money import decimal_text

_DURATIONS = {pb.CouponDuration.Value(f"COUPON_DURATION_{d.value.upper()}"): d.value for d in CouponDuration}
assert len(_DURATIONS) + 1 == len(pb.CouponDuration.keys()), "CouponDuration differs between contract and domain"


def duration_from_pb(number: int) -> str:
    """The domain's duration name; "" for unspecified (the domain then says what is expected), and the number
    itself for one the contract does not have."""
    if number == pb.COUPON_DURATION_UNSPECIFIED:
        return ""
    return _DURATIONS.get(number, str(number))


def coupon_to_pb(coupon: Coupon) -> pb.Coupon:
    terms = coupon.terms
    discount = terms.discount
    message = pb.Coupon(
        id=coupon.id,
        code=terms.code,
        name=terms.name,
        percent_off="" if discount.percent_off is None else decimal_text(discount.percent_off),
        amount_off="" if discount.amount_off is None else decimal_text(discount.amount_off),
        currency=discount.currency,
        duration=pb.CouponDuration.Value(f"COUPON_DURATION_{terms.duration.value.upper()}"),
        duration_periods=terms.duration_periods or 0,
        plan_codes=list(terms.plan_codes),
        max_redemptions=terms.max_redemptions or 0,
        times_redeemed=coupon.times_redeemed,
        create_time=timestamp(coupon.created_at),
    )
    if terms.expires_at is not None:
        message.expire_time.CopyFrom(timestamp(terms.expires_at))
    if coupon.archived_at is not None:
        message.archive_time.CopyFrom(timestamp(coupon.archived_at))
    return message


def redemption_to_pb(redemption: CouponRedemption) -> pb.CouponRedemption:
    remaining = redemption.periods_remaining
    message = pb.CouponRedemption(
        id=redemption.id,
        organisation_id=redemption.organisation_id,
        coupon=coupon_to_pb(redemption.coupon),
        start_period_key=redemption.start_period_key,
        state=pb.CouponRedemptionState.Value(f"COUPON_REDEMPTION_STATE_{redemption.state.value.upper()}"),
        used_period_keys=sorted(redemption.used_periods),
        periods_used=len(redemption.used_periods),
        periods_remaining=-1 if remaining is None else remaining,
        apply_time=timestamp(redemption.applied_at),
    )
    if redemption.removed_at is not None:
        message.remove_time.CopyFrom(timestamp(redemption.removed_at))
    return message
