"""The usage forecast through gRPC: real usage metered by the real metering service on each complete day of the
current billing period, read back per local day by invoicing, projected to the period's end and priced."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from zoneinfo import ZoneInfo

import grpc

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2
from services.invoicing.domain.billing_period import period_containing, start_of_day
from services.invoicing.domain.usage_forecast import day_position
from tests.integration.helpers import expect_rpc_error
from tests.integration.invoicing.conftest import create_organisation, create_plan, terms
from tests.integration.metering.conftest import E, batch, define, eventually, project_id, publish, whole_usage

ZONE = "Asia/Kolkata"
PLAN = dict(
    currency="INR",
    base_fee="100",
    charges=[
        {"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.01"}},
        {"metric_code": "seats", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "5"}},
    ],
)


def minor(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), ROUND_HALF_UP))


async def test_the_projected_invoice_carries_the_forecast_of_the_period_end(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    asked_at = datetime.now(UTC)
    today = asked_at.astimezone(ZoneInfo(ZONE)).date()
    # More complete days behind us than the 7-day window, whatever the date: periods anchored on the 1st, or
    # early in a month on the 20th (the period then began on the 20th of the month before).
    anchor = 1 if today.day >= 9 else 20
    period = period_containing(asked_at, ZONE, anchor)
    first = period.start.astimezone(ZoneInfo(ZONE)).date()
    observed = (today - first).days
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=period.start - timedelta(days=70))
    plan = await create_plan(invoicing_stub, terms(**PLAN))
    await invoicing_stub.CreateSubscription(pb.CreateSubscriptionRequest(
        organisation_id=organisation_id, plan_version_id=plan.latest_version.id, start_date=first.isoformat(),
        billing_anchor_day=anchor))

    # A growing customer: 1,000 calls on the first day, 100 more every day; 300 so far today. Seats peak at 7.
    daily = [Decimal(1000 + 100 * n) for n in range(observed)]
    today_start = start_of_day(today, ZONE)
    events = [E(f"c{n}", str(value), start_of_day(first + timedelta(days=n), ZONE) + timedelta(hours=3),
                metric="api_calls") for n, value in enumerate(daily)]
    events.append(E("today", "300", today_start + (asked_at - today_start) / 2, metric="api_calls"))
    events += [E(f"s{n}", seats, period.start + timedelta(minutes=n), metric="seats")
               for n, seats in enumerate(["3", "7", "5"])]
    await define(metering_stub, organisation_id, "api_calls", metering_pb2.AGGREGATION_SUM)
    await define(metering_stub, organisation_id, "seats", metering_pb2.AGGREGATION_MAX)
    await publish(jetstream, batch(organisation_id, project_id(), events))
    so_far = sum(daily, Decimal(0)) + 300
    await eventually(lambda: whole_usage(metering_stub, organisation_id, "api_calls", period.start, asked_at),
                     lambda found: found[0] != "" and Decimal(found[0]) == so_far)

    response = await invoicing_stub.GetProjectedInvoice(
        pb.GetProjectedInvoiceRequest(organisation_id=organisation_id, include_forecast=True))
    invoice, forecast = response.invoice, response.forecast
    as_of = forecast.as_of_time.ToDatetime(tzinfo=UTC)
    assert asked_at <= as_of <= datetime.now(UTC)
    assert forecast.method == pb.FORECAST_METHOD_DAILY_TREND
    assert (forecast.days_observed, forecast.window_days) == (observed, 7) and observed > 7
    assert forecast.days_in_period == (period.end - period.start).days

    # The method of docs/billing.md, recomputed here: the mean of the last week's and the period's averages.
    with localcontext(Context(prec=60)):
        recent = daily[-7:]
        rate = (sum(recent) / len(recent) + sum(daily) / len(daily)) / 2
        days_left = day_position(period.end, ZONE) - day_position(as_of, ZONE)
        projected = so_far + (rate * days_left).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    calls, seats = forecast.metrics
    assert (calls.metric_code, calls.aggregation, calls.extrapolated) == ("api_calls", "sum", True)
    assert Decimal(calls.quantity_so_far) == so_far and Decimal(calls.projected_quantity) == projected
    assert Decimal(calls.daily_rate) == rate.quantize(Decimal("0.000001"), ROUND_HALF_UP)
    assert calls.plan_version_id == plan.latest_version.id and calls.period_end == invoice.period_end
    assert (seats.aggregation, seats.extrapolated, seats.projected_quantity) == ("max", False, "7")

    # The invoice so far, and the forecast invoice priced from the projection by the same rules.
    assert [line.amount_minor for line in invoice.lines] == [10000, minor(so_far / 100), 3500]
    end = forecast.invoice
    assert end.projected and end.number == "" and end.period_key == invoice.period_key
    assert [line.amount_minor for line in end.lines] == [10000, minor(projected / 100), 3500]
    assert Decimal(end.lines[1].quantity) == projected
    assert end.subtotal_minor == sum(line.amount_minor for line in end.lines)
    half = int((Decimal(end.subtotal_minor) * 9 / 100).quantize(Decimal(1), ROUND_HALF_UP))
    assert [t.amount_minor for t in end.tax_lines] == [half, half]  # CGST + SGST within Karnataka
    assert end.total_minor == end.subtotal_minor + 2 * half > invoice.total_minor

    # Without include_forecast the answer is what it always was.
    plain = await invoicing_stub.GetProjectedInvoice(pb.GetProjectedInvoiceRequest(organisation_id=organisation_id))
    assert not plain.HasField("forecast") and plain.invoice.total_minor == invoice.total_minor


async def test_an_organisation_without_a_subscription_has_no_forecast_either(invoicing, invoicing_stub):
    organisation_id = await create_organisation(invoicing_stub, name=f"No plan {secrets.token_hex(3)}")
    await expect_rpc_error(invoicing_stub.GetProjectedInvoice(
        pb.GetProjectedInvoiceRequest(organisation_id=organisation_id, include_forecast=True)),
        grpc.StatusCode.FAILED_PRECONDITION)
