"""The REST shapes of a pricing quote: a charge priced for a quantity, with its breakdown and rounded lines."""

from __future__ import annotations

from pydantic import BaseModel, Field

from billing.invoicing.v1 import invoicing_pb2
from services.gateway.entrypoints.http.catalog_schemas import CHARGE_EXAMPLES, Charge
from services.gateway.entrypoints.http.decimal_json import DecimalText
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.http.schemas import Request


class TierAmount(BaseModel):
    """One row of a breakdown: the units a tier (or package, or band of events) priced and what they cost."""

    description: str = Field(examples=["1001 to 10000 at 0.05"])
    quantity: str = Field(examples=["9000"])
    unit_price: str = Field(examples=["0.05"])
    flat_fee: str = Field(examples=["0"])
    amount: str = Field(description="Unrounded", examples=["450"])
    from_units: str | None = Field(description="Tier's lower bound, exclusive; null when not a tier",
                                   examples=["1000"])
    up_to: str | None = Field(description="Tier's upper bound, inclusive; null when open or not a tier",
                              examples=["10000"])

    @classmethod
    def from_pb(cls, message: invoicing_pb2.TierAmount) -> TierAmount:
        return cls(description=message.description, quantity=message.quantity, unit_price=message.unit_price,
                   flat_fee=message.flat_fee, amount=message.amount, from_units=message.from_units or None,
                   up_to=message.up_to or None)


class QuoteRequest(Request):
    currency: str = Field(description="The charge's currency; rounding follows its minor units", examples=["INR"])
    charge: Charge = Field(examples=CHARGE_EXAMPLES[1:2])
    quantity: DecimalText = Field("0", description="Units of usage to price (a string or a JSON number, read "
                                                   "exactly)", examples=["1500"])
    event_amounts: list[DecimalText] = Field(
        default_factory=list, description="For percentage charges: each event's amount, in time order",
        examples=[["100.50", "2500"]],
    )
    percent_off: DecimalText | None = Field(None, description="A discount to quote, as a coupon takes it: a "
                                                              "percentage of the total", examples=[None])
    amount_off: DecimalText | None = Field(None, description="Or a fixed amount in currency, capped at the total",
                                           examples=[None])

    def to_pb(self) -> invoicing_pb2.QuotePriceRequest:
        return invoicing_pb2.QuotePriceRequest(currency=self.currency, charge=self.charge.to_pb(),
                                               quantity=self.quantity, event_amounts=self.event_amounts,
                                               percent_off=self.percent_off or "", amount_off=self.amount_off or "")


class Quote(BaseModel):
    """What the charge costs: the unrounded amount and its breakdown, then the lines an invoice would show, each
    rounded half-up once to the currency's minor units (as an integer and as a decimal string)."""

    currency: str
    quantity: str
    billable_quantity: str = Field(description="After free units")
    amount: str = Field(description="Unrounded, before minimum and maximum amounts", examples=["125.5"])
    breakdown: list[TierAmount]
    usage_minor: int = Field(description="The usage line, rounded", examples=[12550])
    usage: str | None = Field(examples=["125.50"])
    minimum_spend_minor: int = Field(description="Adjustment up to the minimum amount (>= 0)", examples=[0])
    minimum_spend: str | None = Field(examples=["0.00"])
    maximum_cap_minor: int = Field(description="Adjustment down to the maximum amount (<= 0)", examples=[0])
    maximum_cap: str | None = Field(examples=["0.00"])
    total_minor: int = Field(examples=[12550])
    total: str | None = Field(examples=["125.50"])
    discount_minor: int = Field(0, description="What percent_off or amount_off takes off the total (>= 0)",
                                examples=[0])
    discount: str | None = Field(None, examples=["0.00"])
    discounted_total_minor: int = Field(0, description="The total less the discount: what GST would be on",
                                        examples=[12550])
    discounted_total: str | None = Field(None, examples=["125.50"])

    @classmethod
    def from_pb(cls, message: invoicing_pb2.QuotePriceResponse) -> Quote:
        currency = message.currency

        def text(minor: int) -> str | None:
            return minor_to_text(minor, currency)

        return cls(
            currency=currency, quantity=message.quantity, billable_quantity=message.billable_quantity,
            amount=message.amount, breakdown=[TierAmount.from_pb(t) for t in message.breakdown],
            usage_minor=message.usage_minor, usage=text(message.usage_minor),
            minimum_spend_minor=message.minimum_spend_minor, minimum_spend=text(message.minimum_spend_minor),
            maximum_cap_minor=message.maximum_cap_minor, maximum_cap=text(message.maximum_cap_minor),
            total_minor=message.total_minor, total=text(message.total_minor),
            discount_minor=message.discount_minor, discount=text(message.discount_minor),
            discounted_total_minor=message.discounted_total_minor,
            discounted_total=text(message.discounted_total_minor),
        )
