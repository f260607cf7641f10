"""The REST shapes of coupons and of their redemptions by organisations.

A coupon takes ``percent_off`` percent or ``amount_off`` of ``currency`` off an organisation's invoices, before
tax, for ``duration`` ``once``, ``repeating`` (``duration_periods`` invoices) or ``forever``. Decimals are strings
(JSON numbers are read exactly). Validation is invoicing's: it answers INVALID_ARGUMENT naming the field, which the
gateway returns as 400.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.gateway.entrypoints.http.catalog_schemas import INT32_MAX
from services.gateway.entrypoints.http.decimal_json import DecimalText
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

DurationName = Literal["once", "repeating", "forever"]
DURATIONS = EnumNames.of(invoicing_pb2.CouponDuration, "COUPON_DURATION_")
REDEMPTION_STATES = EnumNames.of(invoicing_pb2.CouponRedemptionState, "COUPON_REDEMPTION_STATE_")


class CouponCreate(Request):
    code: str = Field(description="What customers and staff type; letters, digits, '-' and '_', kept in upper case",
                      examples=["LAUNCH20"])
    name: str = Field(description="Printed on the invoice's discount line", examples=["Launch offer"])
    percent_off: DecimalText | None = Field(None, description="More than 0, at most 100, two decimals; or give "
                                                              "amount_off", examples=["20"])
    amount_off: DecimalText | None = Field(None, description="A fixed amount in currency (within its minor units), "
                                                             "capped at what it applies to", examples=[None])
    currency: str = Field("", description="The currency of amount_off: it applies only to invoices in it (never "
                                          "converted)", examples=[""])
    duration: DurationName = Field(examples=["repeating"])
    duration_periods: int | None = Field(None, ge=1, le=INT32_MAX,
                                         description="For repeating: how many invoices it discounts", examples=[3])
    plan_codes: list[str] = Field(default_factory=list, description="Only the lines of these plans; empty for all",
                                  examples=[[]])
    max_redemptions: int | None = Field(None, ge=1, le=INT32_MAX,
                                        description="How many organisations may apply it; null for no limit")
    expires_at: datetime | None = Field(None, description="After this it can no longer be applied (organisations "
                                                          "that have it keep it)")

    def to_pb(self, idempotency_key: str) -> invoicing_pb2.CreateCouponRequest:
        message = invoicing_pb2.CreateCouponRequest(
            code=self.code, name=self.name, percent_off=self.percent_off or "", amount_off=self.amount_off or "",
            currency=self.currency, duration=DURATIONS.number(self.duration),
            duration_periods=self.duration_periods or 0, plan_codes=self.plan_codes,
            max_redemptions=self.max_redemptions or 0, idempotency_key=idempotency_key,
        )
        if self.expires_at is not None:
            message.expire_time.CopyFrom(to_timestamp(self.expires_at))
        return message


class Coupon(BaseModel):
    id: str
    code: str = Field(examples=["LAUNCH20"])
    name: str
    percent_off: str | None = Field(examples=["20"])
    amount_off: str | None = Field(examples=[None])
    currency: str = Field(description="Of amount_off; empty for a percentage")
    duration: DurationName | None
    duration_periods: int | None = Field(description="For repeating coupons")
    plan_codes: list[str]
    max_redemptions: int | None = Field(description="Null: no limit")
    times_redeemed: int = Field(description="Organisations it was applied to (removed ones too)")
    expires_at: datetime | None
    archived_at: datetime | None = Field(description="Set once archived: it can no longer be applied")
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Coupon) -> Coupon:
        return cls(
            id=message.id, code=message.code, name=message.name, percent_off=message.percent_off or None,
            amount_off=message.amount_off or None, currency=message.currency,
            duration=DURATIONS.name(message.duration), duration_periods=message.duration_periods or None,
            plan_codes=list(message.plan_codes), max_redemptions=message.max_redemptions or None,
            times_redeemed=message.times_redeemed, expires_at=from_timestamp(message.expire_time),
            archived_at=from_timestamp(message.archive_time), created_at=from_timestamp(message.create_time),
        )


class CouponApply(Request):
    coupon_code: str = Field(examples=["LAUNCH20"])
    start_period_key: str = Field("", description="YYYY-MM: the first billing period it may discount; empty for "
                                                  "the organisation's current period", examples=["2026-11"])


class CouponRedemption(BaseModel):
    """A coupon applied to an organisation, and the billing periods it was used for."""

    id: str
    organisation_id: str
    coupon: Coupon | None
    start_period_key: str = Field(examples=["2026-11"])
    state: Literal["active", "completed", "removed"] | None
    used_period_keys: list[str] = Field(description="Periods whose invoice carried its discount",
                                        examples=[["2026-11", "2026-12"]])
    periods_used: int
    periods_remaining: int | None = Field(description="Null for a coupon without an end")
    applied_at: datetime | None
    removed_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.CouponRedemption) -> CouponRedemption:
        return cls(
            id=message.id, organisation_id=message.organisation_id,
            coupon=Coupon.from_pb(message.coupon) if message.HasField("coupon") else None,
            start_period_key=message.start_period_key, state=REDEMPTION_STATES.name(message.state),
            used_period_keys=list(message.used_period_keys), periods_used=message.periods_used,
            periods_remaining=None if message.periods_remaining < 0 else message.periods_remaining,
            applied_at=from_timestamp(message.apply_time), removed_at=from_timestamp(message.remove_time),
        )
