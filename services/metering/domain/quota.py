"""Whether an organisation may use more of a metric: the quota decision, pure.

The rules (docs/alerts-and-quotas.md, "Quotas"):

- no subscription in force: allowed, NO_SUBSCRIPTION; the plan has no quota for the metric: allowed, NO_QUOTA;
- ``used + quantity <= limit``: allowed, WITHIN_LIMIT (exactly at the limit is allowed);
- a soft cap never refuses: over its limit the answer is allowed, OVER_SOFT_CAP;
- a hard cap without grace refuses anything over its limit: OVER_HARD_CAP;
- a hard cap with grace allows up to ``limit x (1 + grace_percent / 100)`` until ``grace_hours`` after usage first
  went over the limit in the period (0 hours: until the period ends): WITHIN_GRACE; past that time GRACE_EXPIRED,
  over the grace limit OVER_HARD_CAP. When usage has not gone over yet, the grace would start now.

Callers pass values already bounded (the metric code is validated, the quantity is an event-sized decimal); the
message is built from them and the plan's own words only, and clipped, so it never grows with input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum

from billing_runtime.errors import InvalidArgument
from services.metering.domain.plan_in_force import Cap, PlanInForce, QuotaTerms
from services.metering.domain.usage import format_decimal

MAX_MESSAGE_LENGTH = 300
# A quantity is bounded like an event's value (ingest's rule): a plain decimal, |q| < 1e30, at most 18 places,
# and here also non-negative.
_QUANTITY = re.compile(r"\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
MAX_QUANTITY_LENGTH = 64
MAX_QUANTITY_ADJUSTED_EXPONENT = 29
MAX_QUANTITY_PLACES = 18
ONE = Decimal(1)
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
# Usage and quantities carry up to 30 integer and 18 fractional digits: sums of them are exact only with more
# precision than the default context's 28 digits.
_EXACT = Context(prec=120)


class QuotaReason(StrEnum):
    WITHIN_LIMIT = "within_limit"
    NO_QUOTA = "no_quota"
    NO_SUBSCRIPTION = "no_subscription"
    WITHIN_GRACE = "within_grace"
    OVER_SOFT_CAP = "over_soft_cap"
    OVER_HARD_CAP = "over_hard_cap"
    GRACE_EXPIRED = "grace_expired"


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    allowed: bool
    reason: QuotaReason
    message: str
    # None when there is no quota.
    limit: Decimal | None = None
    remaining: Decimal | None = None
    cap: Cap | None = None
    # Hard caps with grace only.
    grace_limit: Decimal | None = None
    # Set once usage went over the limit in the period (or would, with this quantity, during grace).
    grace_end: datetime | None = None


def parse_quantity(text: str, field: str = "quantity") -> Decimal:
    """How much is about to be used: empty means 1; otherwise a non-negative decimal bounded like an event's
    value. InvalidArgument names ``field`` and never echoes more than a short prefix of the input."""
    if not text:
        return ONE
    if len(text) > MAX_QUANTITY_LENGTH or _QUANTITY.fullmatch(text) is None:
        raise InvalidArgument(f"{text[:40]!r} is not a non-negative decimal number such as \"1\" or \"0.25\"",
                              field=field)
    try:
        quantity = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal parses
        raise InvalidArgument("is not a decimal number", field=field) from None
    if quantity and quantity.adjusted() > MAX_QUANTITY_ADJUSTED_EXPONENT:
        raise InvalidArgument("is too large: the magnitude must be below 1e30", field=field)
    exponent = quantity.normalize(_EXACT).as_tuple().exponent
    if quantity and isinstance(exponent, int) and exponent < -MAX_QUANTITY_PLACES:
        raise InvalidArgument(f"has more than {MAX_QUANTITY_PLACES} decimal places", field=field)
    return quantity


def grace_limit(terms: QuotaTerms) -> Decimal | None:
    """How far a hard cap lets usage go during grace; None without grace (or for a soft cap)."""
    if terms.cap is not Cap.HARD or terms.grace_percent <= _ZERO:
        return None
    return _EXACT.add(terms.limit, _EXACT.divide(_EXACT.multiply(terms.limit, terms.grace_percent), _HUNDRED))


def grace_end(terms: QuotaTerms, first_over: datetime, period_end: datetime) -> datetime:
    """When the grace that started at ``first_over`` ends: ``grace_hours`` later, never after the period."""
    if terms.grace_hours <= 0:
        return period_end
    return min(first_over + timedelta(hours=terms.grace_hours), period_end)


def decide(
    plan: PlanInForce,
    metric_code: str,
    used: Decimal,
    quantity: Decimal,
    now: datetime,
    first_over: datetime | None,
) -> QuotaDecision:
    """The answer for using ``quantity`` more of ``metric_code`` at ``now``, given the period's ``used`` so far and
    when usage first went over the quota's limit in the period (None: not yet)."""
    if not plan.found:
        return QuotaDecision(True, QuotaReason.NO_SUBSCRIPTION, _clip(
            f"no subscription in force: {metric_code} is not limited"))
    terms = plan.quota(metric_code)
    if terms is None:
        return QuotaDecision(True, QuotaReason.NO_QUOTA, _clip(
            f"plan {_plan(plan)} has no quota for {metric_code}"))
    limit = terms.limit
    after = _EXACT.add(used, quantity)
    remaining = _EXACT.subtract(limit, used) if used < limit else _ZERO
    grace = grace_limit(terms)
    # The grace clock starts when usage first went over; if it has not yet, it would start now.
    ends = grace_end(terms, first_over or now, plan.period_end) if grace is not None else None
    shown_end = ends if (first_over is not None or after > limit) else None
    cap_words = f"{terms.cap.value} cap of {format_decimal(limit)} {metric_code} per period on plan {_plan(plan)}"
    resets = f"resets {_iso(plan.period_end)}"
    used_words = f"{format_decimal(used)} used"

    def answer(allowed: bool, reason: QuotaReason, words: str) -> QuotaDecision:
        return QuotaDecision(allowed, reason, _clip(words), limit, remaining, terms.cap, grace, shown_end)

    if after <= limit:
        return answer(True, QuotaReason.WITHIN_LIMIT, f"{cap_words}: {used_words}; {resets}")
    if terms.cap is Cap.SOFT:
        return answer(True, QuotaReason.OVER_SOFT_CAP,
                      f"{cap_words} exceeded: {used_words}; allowed and billed; {resets}")
    if grace is not None and ends is not None and after <= grace:
        if now < ends:
            return answer(True, QuotaReason.WITHIN_GRACE,
                          f"{cap_words} exceeded: {used_words}; within grace up to {format_decimal(grace)} "
                          f"until {_iso(ends)}; {resets}")
        return answer(False, QuotaReason.GRACE_EXPIRED,
                      f"{cap_words} reached: {used_words}; grace ended {_iso(ends)}; {resets}")
    return answer(False, QuotaReason.OVER_HARD_CAP, f"{cap_words} reached: {used_words}; {resets}")


def _plan(plan: PlanInForce) -> str:
    return f"{plan.plan_code} (v{plan.plan_version})"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 1] + "…"
