"""Coupons and their redemptions: what a coupon takes off, for how many billing periods, for whom, and the rules
for applying one to an organisation. The arithmetic of a discount on an invoice is ``discounts``.

A coupon is a percentage (more than 0, at most 100, two decimals) or a fixed amount in one currency (within that
currency's minor units). Its duration is ``once`` (one invoice), ``repeating`` (N invoices) or ``forever``; it may
be restricted to plan codes, limited to a number of redemptions, and expire (after which it can no longer be
applied; organisations that applied it before keep it for its duration).

A redemption is a coupon applied to one organisation from a billing period on. It is used up one billing period
at a time: a period counts when an invoice of that period carried the coupon's discount line (recorded with the
invoice, keyed by period, so a re-run or a reissue of the same period never counts it twice).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain import currencies
from services.invoicing.domain.billing_period import parse_period_key
from services.invoicing.domain.money import MAX_AMOUNT_MINOR, decimal_text, format_amount, parse_decimal, round_minor
from services.invoicing.domain.plan_rules import validate_plan_code, validate_plan_name

# Codes customers type: letters, digits, '-' and '_', compared in upper case ("launch20" is LAUNCH20).
COUPON_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
MAX_PLAN_CODES = 50
# Twenty years of monthly periods: longer than that is "forever".
MAX_DURATION_PERIODS = 240
MAX_REDEMPTIONS = 10**9


class DiscountKind(StrEnum):
    PERCENT = "percent"
    FIXED_AMOUNT = "fixed_amount"


class CouponDuration(StrEnum):
    ONCE = "once"  # the first invoice it applies to
    REPEATING = "repeating"  # the first N invoices it applies to
    FOREVER = "forever"


@dataclass(frozen=True)
class Discount:
    """``percent_off`` percent of what it applies to, or ``amount_off`` of ``currency`` (capped at what it applies
    to). Exactly one of the two is set."""

    kind: DiscountKind
    percent_off: Decimal | None = None
    amount_off: Decimal | None = None
    currency: str = ""

    def describe(self) -> str:
        """``20% off``, ``INR 500.00 off``."""
        if self.kind is DiscountKind.PERCENT:
            assert self.percent_off is not None
            return f"{decimal_text(self.percent_off.normalize())}% off"
        assert self.amount_off is not None
        return f"{self.currency} {format_amount(round_minor(self.amount_off, self.currency), self.currency)} off"


@dataclass(frozen=True)
class CouponTerms:
    """A coupon as a client defines it (validated by :func:`validate_coupon`)."""

    code: str
    name: str
    discount: Discount
    duration: CouponDuration
    # N for a repeating coupon; None otherwise (once is one period, forever has no end).
    duration_periods: int | None = None
    # Empty: every plan. Otherwise only lines of these plans are discounted.
    plan_codes: tuple[str, ...] = ()
    max_redemptions: int | None = None
    # The last instant it can be applied to an organisation.
    expires_at: datetime | None = None

    @property
    def periods(self) -> int | None:
        """How many invoices a redemption discounts: 1, N, or None (no end)."""
        if self.duration is CouponDuration.ONCE:
            return 1
        return self.duration_periods if self.duration is CouponDuration.REPEATING else None

    def to_dict(self) -> dict[str, Any]:
        """The terms as JSON-like data (decimals and times as text): what a creation request's fingerprint is of."""
        return {
            "code": self.code, "name": self.name, "kind": self.discount.kind.value,
            "percent_off": None if self.discount.percent_off is None else decimal_text(self.discount.percent_off),
            "amount_off": None if self.discount.amount_off is None else decimal_text(self.discount.amount_off),
            "currency": self.discount.currency, "duration": self.duration.value,
            "duration_periods": self.duration_periods, "plan_codes": list(self.plan_codes),
            "max_redemptions": self.max_redemptions,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class Coupon:
    id: str
    terms: CouponTerms
    created_at: datetime
    archived_at: datetime | None = None
    # Redemptions ever made (removed ones too): what max_redemptions limits.
    times_redeemed: int = 0

    @property
    def code(self) -> str:
        return self.terms.code


@dataclass(frozen=True)
class CouponRedemption:
    """A coupon applied to an organisation from ``start_period_key`` on; ``used_periods`` are the keys of the
    billing periods whose invoice carried its discount."""

    id: str
    coupon: Coupon
    organisation_id: str
    start_period_key: str
    applied_at: datetime
    removed_at: datetime | None = None
    used_periods: frozenset[str] = frozenset()

    @property
    def periods_remaining(self) -> int | None:
        """Periods it may still discount (None: no end); 0 once used up."""
        periods = self.coupon.terms.periods
        return None if periods is None else max(periods - len(self.used_periods), 0)

    @property
    def state(self) -> RedemptionState:
        if self.removed_at is not None:
            return RedemptionState.REMOVED
        return RedemptionState.COMPLETED if self.periods_remaining == 0 else RedemptionState.ACTIVE


class RedemptionState(StrEnum):
    ACTIVE = "active"  # will discount the organisation's next invoices
    COMPLETED = "completed"  # used for all its periods
    REMOVED = "removed"  # taken off the organisation before it was used up


def normalise_code(code: Any, field: str = "code") -> str:
    if not isinstance(code, str) or not code.strip():
        raise InvalidArgument("is required", field=field)
    normalised = code.strip().upper()
    if not COUPON_CODE.fullmatch(normalised):
        raise InvalidArgument("must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit",
                              field=field)
    return normalised


def validate_discount(percent_off: Any, amount_off: Any, currency: Any, field_prefix: str = "") -> Discount:
    """A percentage (``0 < percent_off <= 100``, at most 2 decimals) or a fixed amount (``0 < amount_off``, within
    the minor units of ``currency``, an ISO 4217 currency one can invoice in). Exactly one of the two; empty strings
    and None count as not given. InvalidArgument naming the field (prefixed with ``field_prefix``)."""
    given_percent = percent_off not in (None, "")
    given_amount = amount_off not in (None, "")
    if given_percent == given_amount:
        raise InvalidArgument("give percent_off or amount_off (one of them)", field=f"{field_prefix}percent_off")
    if given_percent:
        field = f"{field_prefix}percent_off"
        percent = parse_decimal(percent_off, field)
        if not 0 < percent <= 100:
            raise InvalidArgument(f"is {decimal_text(percent)}; it must be more than 0 and at most 100", field=field)
        if percent != percent.quantize(Decimal("0.01")):
            raise InvalidArgument("must have at most 2 decimal places", field=field)
        if currency not in (None, ""):
            raise InvalidArgument("is only for amount_off; a percentage applies in any currency",
                                  field=f"{field_prefix}currency")
        return Discount(DiscountKind.PERCENT, percent_off=percent)
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if not code:
        raise InvalidArgument("is required with amount_off", field=f"{field_prefix}currency")
    if not currencies.is_invoiceable(code):
        raise InvalidArgument(f"{code!r} is not an ISO 4217 currency one can invoice in",
                              field=f"{field_prefix}currency")
    field = f"{field_prefix}amount_off"
    amount = parse_decimal(amount_off, field)
    if amount <= 0:
        raise InvalidArgument(f"is {decimal_text(amount)}; it must be more than 0", field=field)
    places = currencies.minor_units(code)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise InvalidArgument(f"must have at most {places} decimal places ({code}'s minor units)", field=field)
    if round_minor(amount, code) > MAX_AMOUNT_MINOR:
        raise InvalidArgument("is more than an invoice can carry", field=field)
    return Discount(DiscountKind.FIXED_AMOUNT, amount_off=amount, currency=code)


def validate_coupon(
    *,
    code: Any,
    name: Any,
    percent_off: Any = None,
    amount_off: Any = None,
    currency: Any = None,
    duration: Any,
    duration_periods: Any = None,
    plan_codes: Sequence[Any] = (),
    max_redemptions: Any = None,
    expires_at: datetime | None = None,
) -> CouponTerms:
    """A coupon's terms from a client's fields, normalised (upper-case code and currency; plan codes sorted and
    without repeats). ``duration_periods`` only for ``repeating`` (1 to 240); 0 or None count as not given, and so
    do 0 ``max_redemptions``. InvalidArgument naming the first bad field."""
    try:
        kind = CouponDuration(duration)
    except ValueError:
        raise InvalidArgument("must be once, repeating or forever", field="duration") from None
    periods = None if duration_periods in (None, 0) else duration_periods
    if kind is CouponDuration.REPEATING:
        if periods is None:
            raise InvalidArgument("is required for a repeating coupon: how many periods it discounts",
                                  field="duration_periods")
        if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= MAX_DURATION_PERIODS:
            raise InvalidArgument(f"must be a whole number from 1 to {MAX_DURATION_PERIODS}",
                                  field="duration_periods")
    elif periods is not None:
        raise InvalidArgument(f"is only for a repeating coupon; a coupon {kind.value} has none",
                              field="duration_periods")
    if len(plan_codes) > MAX_PLAN_CODES:
        raise InvalidArgument(f"at most {MAX_PLAN_CODES} entries", field="plan_codes")
    plans = sorted({validate_plan_code(plan, f"plan_codes[{index}]") for index, plan in enumerate(plan_codes)})
    limit = None if max_redemptions in (None, 0) else max_redemptions
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_REDEMPTIONS
    ):
        raise InvalidArgument(f"must be a whole number from 1 to {MAX_REDEMPTIONS} (or none)",
                              field="max_redemptions")
    if expires_at is not None and (expires_at.tzinfo is None or expires_at.utcoffset() is None):
        raise InvalidArgument("must carry a time zone (an aware datetime)", field="expires_at")
    return CouponTerms(
        code=normalise_code(code),
        name=validate_plan_name(name),
        discount=validate_discount(percent_off, amount_off, currency),
        duration=kind,
        duration_periods=periods,
        plan_codes=tuple(plans),
        max_redemptions=limit,
        expires_at=expires_at,
    )


def check_redeemable(coupon: Coupon, *, now: datetime, billing_currency: str, plan_code: str | None) -> None:
    """FailedPrecondition saying why ``coupon`` cannot be applied now to an organisation billed in
    ``billing_currency`` whose active subscription is on ``plan_code`` (None: it has none): archived, expired,
    its redemption limit reached, a fixed amount in another currency, or restricted to other plans."""
    terms = coupon.terms
    if coupon.archived_at is not None:
        raise FailedPrecondition(f"coupon {terms.code} is archived; it can no longer be applied", field="coupon_code")
    if terms.expires_at is not None and now > terms.expires_at:
        raise FailedPrecondition(
            f"coupon {terms.code} expired at {terms.expires_at.isoformat()}; it can no longer be applied "
            "(organisations that applied it before keep it)",
            field="coupon_code",
        )
    if terms.max_redemptions is not None and coupon.times_redeemed >= terms.max_redemptions:
        raise FailedPrecondition(
            f"coupon {terms.code} has reached its redemption limit ({terms.max_redemptions})", field="coupon_code"
        )
    discount = terms.discount
    if discount.kind is DiscountKind.FIXED_AMOUNT and discount.currency != billing_currency:
        raise FailedPrecondition(
            f"coupon {terms.code} takes off an amount in {discount.currency}, but the organisation is billed in "
            f"{billing_currency}; create a {billing_currency} coupon (amounts are never converted)",
            field="coupon_code",
        )
    if terms.plan_codes and plan_code not in terms.plan_codes:
        on = f"is on plan {plan_code}" if plan_code else "has no active subscription"
        raise FailedPrecondition(
            f"coupon {terms.code} applies only to plans {', '.join(terms.plan_codes)}, and the organisation {on}",
            field="coupon_code",
        )


def validate_period_key(key: str, field: str = "start_period_key") -> str:
    try:
        parse_period_key(key)
    except InvalidArgument as error:
        raise InvalidArgument(error.message, field=field) from None
    return key


def applies_in(redemption: CouponRedemption, period_key: str, currency: str) -> bool:
    """Whether the redemption discounts the invoice of ``period_key`` in ``currency``.

    A period it was already used for: yes (a re-run or a reissue of that period gets the same discount, and does
    not use a second period). Otherwise: not removed, from its start period on, with periods left, and, for a fixed
    amount, in the invoice's currency (an amount is never converted)."""
    discount = redemption.coupon.terms.discount
    if discount.kind is DiscountKind.FIXED_AMOUNT and discount.currency != currency:
        return False
    if period_key in redemption.used_periods:
        return True
    if redemption.removed_at is not None or period_key < redemption.start_period_key:
        return False
    remaining = redemption.periods_remaining
    return remaining is None or remaining > 0


def application_order(redemptions: Sequence[CouponRedemption]) -> list[CouponRedemption]:
    """The order several coupons apply in: percentages first, then fixed amounts, each by when it was applied to
    the organisation (then by id). Each takes off from what the ones before it left."""
    return sorted(
        redemptions,
        key=lambda r: (r.coupon.terms.discount.kind is not DiscountKind.PERCENT, r.applied_at, r.id),
    )
