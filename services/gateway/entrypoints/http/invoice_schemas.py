"""The REST shapes of invoice runs and invoices.

Invoice amounts are exact integers of the currency's minor units (``total_minor``: paise, cents, yen, fils),
each with the same amount as a decimal string next to it (``total``: ``"1180.00"``). Quantities and unit prices
are decimal strings at full precision. Never a float.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.catalog_schemas import ExchangeRate
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.http.pricing_schemas import TierAmount
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

InvoiceStatusName = Literal["draft", "issued", "partially_paid", "paid", "partially_refunded", "refunded", "overdue",
                            "uncollectible", "void"]
INVOICE_STATUSES = EnumNames.of(invoicing_pb2.InvoiceStatus, "INVOICE_STATUS_")
RUN_STATES = EnumNames.of(invoicing_pb2.InvoiceRunState, "INVOICE_RUN_STATE_")
LINE_KINDS = EnumNames.of(invoicing_pb2.LineKind, "LINE_KIND_")
TAX_REGIMES = EnumNames.of(invoicing_pb2.TaxRegime, "TAX_REGIME_")
TAX_KINDS = EnumNames.of(invoicing_pb2.TaxKind, "TAX_KIND_")


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


class InvoiceRunStart(Request):
    period_key: str = Field(description="YYYY-MM: the month each organisation's "
                                                                    "billing period starts in", examples=["2026-10"])
    organisation_id: str = Field("", description="One organisation; empty for every organisation")


class InvoiceRunFailure(BaseModel):
    organisation_id: str
    message: str


class InvoiceRun(BaseModel):
    id: str
    period_key: str
    organisation_id: str = Field(description="Empty: every organisation")
    state: Literal["running", "completed", "failed"] | None
    trigger: str = Field(description="api or scheduler")
    organisations_total: int
    organisations_done: int
    invoiced: int = Field(description="Invoices issued by this run")
    already_invoiced: int = Field(description="Organisations whose period already had an invoice")
    not_due: int = Field(description="Organisations whose period has not ended yet")
    no_subscription: int = Field(description="Organisations without a subscription in the period")
    failed: int
    failures: list[InvoiceRunFailure] = Field(description="The first failures (at most 100)")
    created_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_pb(cls, message: invoicing_pb2.InvoiceRun) -> InvoiceRun:
        return cls(
            id=message.id, period_key=message.period_key, organisation_id=message.organisation_id,
            state=RUN_STATES.name(message.state), trigger=message.trigger,
            organisations_total=message.organisations_total, organisations_done=message.organisations_done,
            invoiced=message.invoiced, already_invoiced=message.already_invoiced, not_due=message.not_due,
            no_subscription=message.no_subscription, failed=message.failed,
            failures=[InvoiceRunFailure(organisation_id=f.organisation_id, message=f.message)
                      for f in message.failures],
            created_at=from_timestamp(message.create_time), finished_at=from_timestamp(message.finish_time),
        )


class InvoiceVoid(Request):
    reason: str = Field(description="Why the invoice is void; kept on it", examples=["Wrong billing address"])
    irn_cancel_reason: Literal["", "1", "2", "3", "4"] = Field(
        "", description="An e-invoiced invoice's IRN cancellation reason: 1 duplicate, 2 data entry mistake, 3 order "
        "cancelled, 4 other (the default). Within 24 hours of registration only; after that the void is refused "
        "(422) and a credit note is needed", examples=["2"])


class Party(BaseModel):
    name: str
    email: str
    address: str
    country: str
    state_code: str
    gstin: str

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Party) -> Party:
        return cls(name=message.name, email=message.email, address=message.address, country=message.country,
                   state_code=message.state_code, gstin=message.gstin)


class InvoiceLine(BaseModel):
    number: int
    kind: Literal["base_fee", "usage", "minimum_spend", "maximum_cap", "discount", "usage_adjustment", "credit",
                  "credit_purchase"] | None = Field(description="usage_adjustment: late usage of an earlier period "
                                                                "(adjusts_period_key), billed on this invoice")
    description: str = Field(examples=["API calls"])
    quantity: str = Field(examples=["125000"])
    unit_price: str = Field(description="Full precision, in the invoice currency", examples=["0.02"])
    amount_minor: int = Field(examples=[250000])
    amount: str | None = Field(examples=["2500.00"])
    metric_code: str
    charge_model: str
    plan_version_id: str
    period_start: datetime | None
    period_end: datetime | None
    gst_rate: str = Field(examples=["18"])
    sac_code: str = Field(examples=["998315"])
    breakdown: list[TierAmount]
    coupon_code: str = Field("", description="On a discount line: the coupon's code", examples=[""])
    coupon_redemption_id: str = Field("", description="On a discount line: the organisation's redemption of it")
    adjusts_period_key: str = Field(
        "", description="On a usage_adjustment line: the earlier period whose late usage it bills", examples=[""]
    )
    price_override_id: str = Field("", description="On a line priced by the organisation's price override (its "
                                                   "description says so): the override version's id")
    price_override_version: int = Field(0, description="That override's version number; 0 when the plan's own "
                                                       "price applies")
    credit_grant_id: str = Field("", description="On a credit line: the prepaid credit grant it was spent from")

    @classmethod
    def from_pb(cls, message: invoicing_pb2.InvoiceLine, currency: str) -> InvoiceLine:
        return cls(
            number=message.number, kind=LINE_KINDS.name(message.kind), description=message.description,
            quantity=message.quantity, unit_price=message.unit_price, amount_minor=message.amount_minor,
            amount=minor_to_text(message.amount_minor, currency), metric_code=message.metric_code,
            charge_model=message.charge_model, plan_version_id=message.plan_version_id,
            period_start=from_timestamp(message.period_start), period_end=from_timestamp(message.period_end),
            gst_rate=message.gst_rate, sac_code=message.sac_code,
            breakdown=[TierAmount.from_pb(t) for t in message.breakdown],
            coupon_code=message.coupon_code, coupon_redemption_id=message.coupon_redemption_id,
            adjusts_period_key=message.adjusts_period_key,
            price_override_id=message.price_override_id, price_override_version=message.price_override_version,
            credit_grant_id=message.credit_grant_id,
        )


class TaxLine(BaseModel):
    kind: Literal["cgst", "sgst", "igst"] | None
    rate: str = Field(examples=["9"])
    taxable_minor: int = Field(examples=[100000])
    taxable: str | None = Field(examples=["1000.00"])
    amount_minor: int = Field(examples=[9000])
    amount: str | None = Field(examples=["90.00"])

    @classmethod
    def from_pb(cls, message: invoicing_pb2.TaxLine, currency: str) -> TaxLine:
        return cls(kind=TAX_KINDS.name(message.kind), rate=message.rate, taxable_minor=message.taxable_minor,
                   taxable=minor_to_text(message.taxable_minor, currency), amount_minor=message.amount_minor,
                   amount=minor_to_text(message.amount_minor, currency))


class Invoice(BaseModel):
    id: str
    organisation_id: str
    number: str = Field(description="Empty while a draft (and on a projected invoice)", examples=["INV/2627/00001"])
    status: InvoiceStatusName | None
    currency: str = Field(examples=["INR"])
    period_key: str = Field(examples=["2026-10"])
    period_start: datetime | None
    period_end: datetime | None
    lines: list[InvoiceLine] = Field(description="Empty in lists; get the invoice for its lines")
    tax_lines: list[TaxLine]
    subtotal_minor: int = Field(examples=[100000])
    subtotal: str | None = Field(examples=["1000.00"])
    tax_minor: int = Field(examples=[18000])
    tax: str | None = Field(examples=["180.00"])
    total_minor: int = Field(examples=[118000])
    total: str | None = Field(examples=["1180.00"])
    amount_paid_minor: int = Field(0, description="Captured payments applied to it (online and offline)")
    amount_paid: str | None = None
    amount_refunded_minor: int = Field(0, description="Refunds the provider confirmed")
    amount_refunded: str | None = None
    amount_due_minor: int = Field(0, description="What is left to pay: total less prepaid credit, credit notes and "
                                                 "what was paid, never negative")
    amount_due: str | None = None
    credit_lines: list[InvoiceLine] = Field(default_factory=list, description="Prepaid credit spent on the total "
                                            "after tax, a line per grant (negative); not part of the subtotal")
    credits_minor: int = Field(0, description="The prepaid credit applied: what the credit lines take off the amount "
                                              "due")
    credits: str | None = None
    amount_credited_minor: int = Field(0, description="The sum of its credit notes")
    amount_credited: str | None = None
    tax_regime: Literal["intra_state", "inter_state", "export"] | None
    place_of_supply: str
    supplier: Party | None
    customer: Party | None
    exchange_rate: ExchangeRate | None = Field(description="Set when plan prices were converted to the invoice "
                                                           "currency: the rate used")
    issue_date: date | None
    due_date: date | None
    void_reason: str
    voided_at: datetime | None
    replaces_invoice_id: str = Field(description="On a reissue: the voided invoice this one replaces")
    created_at: datetime | None
    notes: list[str]
    projected: bool = Field(description="True for a projected invoice: not stored, not numbered")

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Invoice) -> Invoice:
        currency = message.currency
        return cls(
            id=message.id, organisation_id=message.organisation_id, number=message.number,
            status=INVOICE_STATUSES.name(message.status), currency=currency, period_key=message.period_key,
            period_start=from_timestamp(message.period_start), period_end=from_timestamp(message.period_end),
            lines=[InvoiceLine.from_pb(line, currency) for line in message.lines],
            tax_lines=[TaxLine.from_pb(line, currency) for line in message.tax_lines],
            subtotal_minor=message.subtotal_minor, subtotal=minor_to_text(message.subtotal_minor, currency),
            tax_minor=message.tax_minor, tax=minor_to_text(message.tax_minor, currency),
            total_minor=message.total_minor, total=minor_to_text(message.total_minor, currency),
            amount_paid_minor=message.amount_paid_minor, amount_paid=minor_to_text(message.amount_paid_minor, currency),
            amount_refunded_minor=message.amount_refunded_minor,
            amount_refunded=minor_to_text(message.amount_refunded_minor, currency),
            amount_due_minor=message.amount_due_minor, amount_due=minor_to_text(message.amount_due_minor, currency),
            credit_lines=[InvoiceLine.from_pb(line, currency) for line in message.credit_lines],
            credits_minor=message.credits_minor, credits=minor_to_text(message.credits_minor, currency),
            amount_credited_minor=message.amount_credited_minor,
            amount_credited=minor_to_text(message.amount_credited_minor, currency),
            tax_regime=TAX_REGIMES.name(message.tax_regime), place_of_supply=message.place_of_supply,
            supplier=Party.from_pb(message.supplier) if message.HasField("supplier") else None,
            customer=Party.from_pb(message.customer) if message.HasField("customer") else None,
            exchange_rate=ExchangeRate.from_pb(message.exchange_rate) if message.HasField("exchange_rate") else None,
            issue_date=_date(message.issue_date), due_date=_date(message.due_date), void_reason=message.void_reason,
            voided_at=from_timestamp(message.void_time), replaces_invoice_id=message.replaces_invoice_id,
            created_at=from_timestamp(message.create_time), notes=list(message.notes), projected=message.projected,
        )


FORECAST_METHODS = EnumNames.of(invoicing_pb2.ForecastMethod, "FORECAST_METHOD_")


class MetricForecast(BaseModel):
    metric_code: str
    aggregation: str = Field(description="sum and count are extrapolated; max, min, latest and unique_count are "
                                         "kept at their value so far")
    plan_version_id: str = Field(description="The segment of the period (a plan change splits it) ...")
    period_start: datetime | None = Field(description="... from here ...")
    period_end: datetime | None = Field(description="... to here")
    quantity_so_far: str = Field(examples=["17900"])
    projected_quantity: str = Field(description="At the segment's end if the trend holds", examples=["53975"])
    daily_rate: str = Field(description="Usage per local day the rest is extrapolated at", examples=["1850"])
    days_left: str = Field(description="Local days of the segment after now", examples=["19.5"])
    extrapolated: bool

    @classmethod
    def from_pb(cls, m: invoicing_pb2.MetricForecast) -> MetricForecast:
        return cls(metric_code=m.metric_code, aggregation=m.aggregation, plan_version_id=m.plan_version_id,
                   period_start=from_timestamp(m.period_start), period_end=from_timestamp(m.period_end),
                   quantity_so_far=m.quantity_so_far, projected_quantity=m.projected_quantity,
                   daily_rate=m.daily_rate, days_left=m.days_left, extrapolated=m.extrapolated)


class InvoiceForecast(BaseModel):
    """The period's invoice at its end if usage keeps its trend (docs/billing.md, "Usage forecast")."""

    method: Literal["actual", "elapsed_fraction", "daily_trend"] | None = Field(
        description="daily_trend: the mean of the last week's and the period's average per day; elapsed_fraction: "
                    "no complete day yet; actual: nothing left to bill")
    as_of: datetime | None = Field(description="The moment the forecast was made at")
    days_in_period: int = Field(examples=[30])
    days_elapsed: str = Field(examples=["10.5"])
    days_observed: int = Field(description="Complete days the trend was read from", examples=[10])
    window_days: int = Field(description="The last of them the recent average covers", examples=[7])
    invoice: Invoice = Field(description="Priced like every invoice: its lines carry the projected quantities "
                                         "and amounts, with tax and total, and the prepaid credit the balance "
                                         "now would pay of that total (grants expiring before the period ends "
                                         "left out)")
    metrics: list[MetricForecast]

    @classmethod
    def from_pb(cls, m: invoicing_pb2.InvoiceForecast) -> InvoiceForecast:
        return cls(method=FORECAST_METHODS.name(m.method), as_of=from_timestamp(m.as_of_time),
                   days_in_period=m.days_in_period, days_elapsed=m.days_elapsed, days_observed=m.days_observed,
                   window_days=m.window_days, invoice=Invoice.from_pb(m.invoice),
                   metrics=[MetricForecast.from_pb(metric) for metric in m.metrics])


class ProjectedInvoice(Invoice):
    """The current period so far, priced (``projected: true``), with the forecast of its end. Both carry what the
    period close would add if it ran now: earlier periods' late usage (``usage_adjustment`` lines) and the prepaid
    credit it would spend (``credit_lines``, ``credits``, ``amount_due``), each from the balance as it is now."""

    forecast: InvoiceForecast | None = Field(None, description="Absent when not asked for (forecast=false)")

    @classmethod
    def from_response(cls, reply: invoicing_pb2.GetProjectedInvoiceResponse) -> ProjectedInvoice:
        projected = cls.from_pb(reply.invoice)
        if reply.HasField("forecast"):
            projected.forecast = InvoiceForecast.from_pb(reply.forecast)
        return projected
