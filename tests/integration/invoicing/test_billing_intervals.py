"""Quarterly plans through the running invoicing service and PostgreSQL: the plan's interval terms over gRPC,
and three monthly invoice runs across a quarter (July to September 2026, Asia/Kolkata, 92 days), one quarter's
base fee in arrears on September's invoice, and one in advance on July's with a mid-quarter upgrade credited and
charged on August's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.conftest import (
    create_organisation,
    create_plan,
    invoices_of,
    record_usage,
    run_to_completion,
    subscribe,
    terms,
)

JUNE = datetime(2026, 6, 1, tzinfo=UTC)
JUL_START_IST = datetime(2026, 6, 30, 18, 30, tzinfo=UTC)  # 1 July 00:00 in Asia/Kolkata
AUG_START_IST = datetime(2026, 7, 31, 18, 30, tzinfo=UTC)
SEP_START_IST = datetime(2026, 8, 31, 18, 30, tzinfo=UTC)
OCT_START_IST = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
CALLS = [{"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.5"}}]
MONTHS = ("2026-07", "2026-08", "2026-09")


def quarterly(base_fee: str, timing: str) -> pb.PlanTerms:
    return terms(currency="INR", base_fee=base_fee, charges=CALLS, billing_interval="BILLING_INTERVAL_QUARTER",
                 base_fee_timing=timing)


async def quarter_of_usage(invoicing, invoicing_stub, metering_stub, jetstream) -> str:
    """An organisation (since June) with 10 API calls in each month of the quarter, one second inside each."""
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=JUNE)
    await record_usage(
        jetstream, metering_stub, organisation_id,
        [("api_calls", "10", start + timedelta(seconds=1)) for start in (JUL_START_IST, AUG_START_IST,
                                                                          SEP_START_IST)],
        expect={"api_calls": (JUL_START_IST, OCT_START_IST, "30")},
    )
    return organisation_id


def lines(invoice: pb.Invoice) -> list[tuple[int, int, str]]:
    return [(line.kind, line.amount_minor, line.quantity) for line in invoice.lines]


async def test_a_quarterly_plan_in_arrears_is_invoiced_once_in_the_quarter_with_usage_monthly(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    plan = await create_plan(invoicing_stub, quarterly("999", "BASE_FEE_TIMING_IN_ARREARS"), name="Team")
    version = plan.latest_version
    assert (version.terms.billing_interval, version.terms.base_fee_timing) == (
        pb.BILLING_INTERVAL_QUARTER, pb.BASE_FEE_TIMING_IN_ARREARS)
    organisation_id = await quarter_of_usage(invoicing, invoicing_stub, metering_stub, jetstream)
    await subscribe(invoicing_stub, organisation_id, version.id, start_date="2026-07-01")

    for key in MONTHS:
        run = await run_to_completion(invoicing_stub, key, organisation_id)
        assert (run.invoiced, run.failed) == (1, 0), run
    by_month = {i.period_key: i for i in await invoices_of(invoicing_stub, organisation_id)}
    usage = (pb.LINE_KIND_USAGE, 500, "10")  # 10 calls at 0.50, every month
    assert lines(by_month["2026-07"]) == [usage]
    assert lines(by_month["2026-08"]) == [usage]
    # The quarter's base fee, 3 x 999.00, on its last month, its service period the whole quarter.
    assert lines(by_month["2026-09"]) == [(pb.LINE_KIND_BASE_FEE, 299700, "1"), usage]
    base = by_month["2026-09"].lines[0]
    assert base.description == "Team plan base fee, quarter 2026-07-01 to 2026-09-30"
    assert (base.period_start.ToDatetime(tzinfo=UTC), base.period_end.ToDatetime(tzinfo=UTC)) == (
        JUL_START_IST, OCT_START_IST)
    assert by_month["2026-09"].subtotal_minor == 300200


async def test_an_in_advance_quarter_upgraded_mid_quarter_credits_and_charges_the_rest(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    team = await create_plan(invoicing_stub, quarterly("999", "BASE_FEE_TIMING_IN_ADVANCE"), name="Team")
    business = await create_plan(invoicing_stub, quarterly("1999", "BASE_FEE_TIMING_IN_ADVANCE"), name="Business")
    organisation_id = await quarter_of_usage(invoicing, invoicing_stub, metering_stub, jetstream)
    subscription = await subscribe(invoicing_stub, organisation_id, team.latest_version.id, start_date="2026-07-01")
    await invoicing_stub.ChangeSubscriptionPlan(pb.ChangeSubscriptionPlanRequest(
        subscription_id=subscription.id, plan_version_id=business.latest_version.id, effective_date="2026-08-16"))

    for key in MONTHS:
        run = await run_to_completion(invoicing_stub, key, organisation_id)
        assert (run.invoiced, run.failed) == (1, 0), run
    by_month = {i.period_key: i for i in await invoices_of(invoicing_stub, organisation_id)}
    assert lines(by_month["2026-07"])[0] == (pb.LINE_KIND_BASE_FEE, 299700, "1")
    # 16 August to 30 September is 46 of the quarter's 92 days: half of 2,997.00 back, half of 5,997.00 charged.
    august = by_month["2026-08"]
    assert [(line.kind, line.amount_minor, line.quantity) for line in august.lines[:2]] == [
        (pb.LINE_KIND_BASE_FEE, -149850, "46"), (pb.LINE_KIND_BASE_FEE, 299850, "46")]
    assert august.lines[0].description == (
        "Team plan base fee, quarter 2026-07-01 to 2026-09-30 (46 of 92 days unused, credited)"
    )
    assert [line.kind for line in by_month["2026-09"].lines] == [pb.LINE_KIND_USAGE]
    # August's subtotal nets the credit and the charge (2,998.50 - 1,498.50 = 1,500.00) with the month's usage, split
    # between the two plans at the change (10 calls on Team, none on Business).
    assert [(line.kind, line.amount_minor) for line in august.lines[2:]] == [
        (pb.LINE_KIND_USAGE, 500), (pb.LINE_KIND_USAGE, 0)]
    assert august.subtotal_minor == 150000 + 500


async def test_interval_terms_are_validated_naming_the_field(invoicing_stub):
    request = pb.CreatePlanRequest(code="bad-interval", name="Bad", terms=terms(
        currency="INR", base_fee="10", billing_interval="BILLING_INTERVAL_QUARTER", annual_discount_percent="10"))
    error = await expect_rpc_error(invoicing_stub.CreatePlan(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "annual_discount_percent"
    assert "yearly plan" in (error.details() or "")
