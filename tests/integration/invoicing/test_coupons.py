"""Coupons through gRPC against the real invoicing service and PostgreSQL: a discount line on issued invoices for
exactly the coupon's periods, GST on the discounted amount, a period used once however often it is closed or
reissued, two periods closed at once sharing a one-period coupon, and every refusal with its status code."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import grpc

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.conftest import (
    create_organisation,
    create_plan,
    invoices_of,
    run_to_completion,
    subscribe,
    terms,
)

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
BASE_ONLY = dict(currency="INR", base_fee="999")


def unique(code: str) -> str:
    return f"{code}-{secrets.token_hex(3).upper()}"


async def create_coupon(stub, **fields) -> pb.Coupon:
    request = pb.CreateCouponRequest(**({"name": "Launch offer", "duration": pb.COUPON_DURATION_ONCE} | fields))
    return (await stub.CreateCoupon(request)).coupon


async def customer(stub, invoicing, plan: pb.Plan | None = None, **overrides) -> tuple[str, pb.Plan]:
    """An organisation (since April 2026) on a base-fee-only INR plan from 1 May 2026."""
    plan = plan or await create_plan(stub, terms(**BASE_ONLY))
    organisation_id = await create_organisation(stub, invoicing, since=APRIL, **overrides)
    await subscribe(stub, organisation_id, plan.latest_version.id, start_date="2026-05-01")
    return organisation_id, plan


def discount_lines(invoice: pb.Invoice) -> list[pb.InvoiceLine]:
    return [line for line in invoice.lines if line.kind == pb.LINE_KIND_DISCOUNT]


async def live_invoice(stub, organisation_id: str, period_key: str) -> pb.Invoice:
    (invoice,) = [i for i in await invoices_of(stub, organisation_id, period_key) if i.status != pb.INVOICE_STATUS_VOID]
    return invoice


async def test_a_repeating_coupon_discounts_exactly_its_periods_before_gst(
    invoicing, invoicing_stub, metering, metering_stub
):
    organisation_id, _ = await customer(invoicing_stub, invoicing)
    code = unique("LAUNCH20")
    coupon = await create_coupon(invoicing_stub, code=code.lower(), percent_off="20",
                                 duration=pb.COUPON_DURATION_REPEATING, duration_periods=3)
    assert (coupon.code, coupon.percent_off, coupon.duration_periods) == (code, "20", 3)
    applied = await invoicing_stub.ApplyCoupon(pb.ApplyCouponRequest(
        organisation_id=organisation_id, coupon_code=code, start_period_key="2026-06", idempotency_key=f"a-{code}"))
    assert applied.created and applied.coupon_redemption.state == pb.COUPON_REDEMPTION_STATE_ACTIVE
    redemption_id = applied.coupon_redemption.id

    for key in ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09"):
        run = await run_to_completion(invoicing_stub, key, organisation_id)
        assert (run.invoiced, run.failed) == (1, 0), run.failures
    invoices = {key: await live_invoice(invoicing_stub, organisation_id, key)
                for key in ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09")}
    for key in ("2026-05", "2026-09"):  # before its start, and after its three periods
        assert discount_lines(invoices[key]) == [] and invoices[key].total_minor == 99900 + 2 * 8991
    for key in ("2026-06", "2026-07", "2026-08"):
        invoice = invoices[key]
        assert invoice.status == pb.INVOICE_STATUS_ISSUED
        # 20% of 999.00 = 199.80 off before tax; CGST and SGST 9% of 799.20 = 71.928 -> 71.93 each.
        (line,) = discount_lines(invoice)
        assert (line.description, line.amount_minor, line.coupon_code, line.coupon_redemption_id, line.gst_rate) == (
            f"Launch offer ({code}): 20% off", -19980, code, redemption_id, "18")
        assert invoice.subtotal_minor == 79920
        assert [(t.kind, t.taxable_minor, t.amount_minor) for t in invoice.tax_lines] == [
            (pb.TAX_KIND_CGST, 79920, 7193), (pb.TAX_KIND_SGST, 79920, 7193)]
        assert invoice.total_minor == 79920 + 2 * 7193

    # Closing a period again, or reissuing a voided one, never uses another period.
    again = await run_to_completion(invoicing_stub, "2026-07", organisation_id)
    assert (again.invoiced, again.already_invoiced) == (0, 1)
    july = invoices["2026-07"]
    await invoicing_stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=july.id, reason="wrong address"))
    reissued = (await invoicing_stub.ReissueInvoice(pb.ReissueInvoiceRequest(invoice_id=july.id))).invoice
    assert [line.amount_minor for line in discount_lines(reissued)] == [-19980]
    assert reissued.total_minor == july.total_minor and reissued.number != july.number
    (listed,) = (await invoicing_stub.ListOrganisationCoupons(
        pb.ListOrganisationCouponsRequest(organisation_id=organisation_id))).coupon_redemptions
    assert listed.state == pb.COUPON_REDEMPTION_STATE_COMPLETED
    assert (list(listed.used_period_keys), listed.periods_used, listed.periods_remaining) == (
        ["2026-06", "2026-07", "2026-08"], 3, 0)

    html = (await invoicing_stub.RenderInvoice(
        pb.RenderInvoiceRequest(invoice_id=invoices["2026-06"].id, format=pb.INVOICE_FORMAT_HTML))).content.decode()
    assert f"Launch offer ({code}): 20% off" in html and "-199.80" in html and "CGST 9% on INR 799.20" in html
    retried = await invoicing_stub.ApplyCoupon(pb.ApplyCouponRequest(
        organisation_id=organisation_id, coupon_code=code, start_period_key="2026-06", idempotency_key=f"a-{code}"))
    assert (retried.created, retried.coupon_redemption.id) == (False, redemption_id)


async def test_two_periods_closed_at_once_share_a_one_period_coupon_once(
    invoicing, invoicing_stub, metering, metering_stub
):
    organisation_id, _ = await customer(invoicing_stub, invoicing)
    code = unique("ONCE")
    await create_coupon(invoicing_stub, code=code, amount_off="100", currency="INR")
    await invoicing_stub.ApplyCoupon(pb.ApplyCouponRequest(organisation_id=organisation_id, coupon_code=code,
                                                           start_period_key="2026-05"))
    runs = await asyncio.gather(*(run_to_completion(invoicing_stub, key, organisation_id)
                                  for key in ("2026-05", "2026-06", "2026-07")))
    for key, run in zip(("2026-05", "2026-06", "2026-07"), runs, strict=True):
        if run.failed:  # priced with the coupon while another period used it: priced afresh by the next run
            assert "used up or removed while the invoice was priced" in run.failures[0].message
            assert (await run_to_completion(invoicing_stub, key, organisation_id)).invoiced == 1
    discounted = [key for key in ("2026-05", "2026-06", "2026-07")
                  if discount_lines(await live_invoice(invoicing_stub, organisation_id, key))]
    assert len(discounted) == 1
    (listed,) = (await invoicing_stub.ListOrganisationCoupons(
        pb.ListOrganisationCouponsRequest(organisation_id=organisation_id))).coupon_redemptions
    assert list(listed.used_period_keys) == discounted and listed.state == pb.COUPON_REDEMPTION_STATE_COMPLETED


async def test_the_projected_invoice_shows_the_discount_and_uses_no_period(
    invoicing, invoicing_stub, metering, metering_stub
):
    now = datetime.now(UTC)
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=now - timedelta(days=62),
                                                timezone="UTC")
    plan = await create_plan(invoicing_stub, terms(**BASE_ONLY))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id, start_date=f"{now:%Y-%m}-01")
    code = unique("FIXED")
    await create_coupon(invoicing_stub, code=code, name="Goodwill", amount_off="250", currency="INR",
                        duration=pb.COUPON_DURATION_FOREVER, plan_codes=[plan.code])
    applied = await invoicing_stub.ApplyCoupon(pb.ApplyCouponRequest(organisation_id=organisation_id,
                                                                     coupon_code=code))
    assert applied.coupon_redemption.start_period_key == f"{now:%Y-%m}"
    assert applied.coupon_redemption.periods_remaining == -1  # forever
    projected = (await invoicing_stub.GetProjectedInvoice(
        pb.GetProjectedInvoiceRequest(organisation_id=organisation_id))).invoice
    assert [(line.kind, line.amount_minor) for line in projected.lines] == [
        (pb.LINE_KIND_BASE_FEE, 99900), (pb.LINE_KIND_DISCOUNT, -25000)]
    assert projected.subtotal_minor == 74900 and projected.total_minor == 74900 + 2 * 6741
    (listed,) = (await invoicing_stub.ListOrganisationCoupons(
        pb.ListOrganisationCouponsRequest(organisation_id=organisation_id))).coupon_redemptions
    assert listed.periods_used == 0


async def test_refusals_have_clear_status_codes_and_change_nothing(invoicing, invoicing_stub, metering):
    organisation_id, plan = await customer(invoicing_stub, invoicing)
    # Not subscribed: invoice runs of every organisation (other tests') would need an INR to USD rate for it.
    dollars_id = await create_organisation(invoicing_stub, invoicing, billing_currency="USD", country="US",
                                           state_code="", gstin="")
    code = unique("ONE")
    created = await invoicing_stub.CreateCoupon(pb.CreateCouponRequest(
        code=code, name="Only one", percent_off="10", duration=pb.COUPON_DURATION_FOREVER, max_redemptions=1,
        idempotency_key=f"c-{code}"))
    repeat = await invoicing_stub.CreateCoupon(pb.CreateCouponRequest(
        code=code, name="Only one", percent_off="10", duration=pb.COUPON_DURATION_FOREVER, max_redemptions=1,
        idempotency_key=f"c-{code}"))
    assert created.created and not repeat.created and repeat.coupon.id == created.coupon.id
    await expect_rpc_error(invoicing_stub.CreateCoupon(pb.CreateCouponRequest(
        code=code, name="Again", percent_off="5", duration=pb.COUPON_DURATION_ONCE)), grpc.StatusCode.ALREADY_EXISTS)
    for request, field in (
        (pb.CreateCouponRequest(code=unique("BAD"), name="x", percent_off="0", duration=pb.COUPON_DURATION_ONCE),
         "percent_off"),
        (pb.CreateCouponRequest(code=unique("BAD"), name="x", amount_off="1.5", currency="JPY",
                                duration=pb.COUPON_DURATION_ONCE), "amount_off"),
        (pb.CreateCouponRequest(code=unique("BAD"), name="x", percent_off="5", duration=pb.COUPON_DURATION_REPEATING),
         "duration_periods"),
        (pb.CreateCouponRequest(code=unique("BAD"), name="x", percent_off="5"), "duration"),
    ):
        error = await expect_rpc_error(invoicing_stub.CreateCoupon(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert error_field(error) == field

    expired = unique("OLD")
    old = pb.CreateCouponRequest(code=expired, name="Old", percent_off="5", duration=pb.COUPON_DURATION_ONCE)
    old.expire_time.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    await invoicing_stub.CreateCoupon(old)
    rupees = unique("RUPEES")
    await create_coupon(invoicing_stub, code=rupees, amount_off="100", currency="INR")
    other_plan = unique("OTHERPLAN")
    await create_coupon(invoicing_stub, code=other_plan, percent_off="5", plan_codes=["no-such-plan"])

    def apply(coupon_code: str, organisation: str = organisation_id):
        return invoicing_stub.ApplyCoupon(pb.ApplyCouponRequest(organisation_id=organisation,
                                                                coupon_code=coupon_code))

    await expect_rpc_error(apply("NO-SUCH-COUPON"), grpc.StatusCode.NOT_FOUND)
    await expect_rpc_error(apply(code, "org_01KNOSUCHORGANISATION00000"), grpc.StatusCode.NOT_FOUND)
    for coupon_code, organisation, detail in ((expired, organisation_id, "expired"),
                                              (rupees, dollars_id, "billed in USD"),
                                              (other_plan, organisation_id, f"is on plan {plan.code}")):
        error = await expect_rpc_error(apply(coupon_code, organisation), grpc.StatusCode.FAILED_PRECONDITION)
        assert detail in error.details()
    await apply(code)
    await expect_rpc_error(apply(code), grpc.StatusCode.ALREADY_EXISTS)
    error = await expect_rpc_error(apply(code, dollars_id), grpc.StatusCode.FAILED_PRECONDITION)
    assert "redemption limit (1)" in error.details()
    redemptions = (await invoicing_stub.ListOrganisationCoupons(
        pb.ListOrganisationCouponsRequest(organisation_id=organisation_id))).coupon_redemptions
    assert [r.coupon.code for r in redemptions] == [code]
    assert (await invoicing_stub.GetCoupon(pb.GetCouponRequest(code=code.lower()))).coupon.times_redeemed == 1

    removed = (await invoicing_stub.RemoveCoupon(pb.RemoveCouponRequest(
        organisation_id=organisation_id, coupon_redemption_id=redemptions[0].id))).coupon_redemption
    assert removed.state == pb.COUPON_REDEMPTION_STATE_REMOVED and removed.HasField("remove_time")
    await expect_rpc_error(invoicing_stub.RemoveCoupon(pb.RemoveCouponRequest(
        organisation_id=dollars_id, coupon_redemption_id=redemptions[0].id)), grpc.StatusCode.NOT_FOUND)
    archived = (await invoicing_stub.ArchiveCoupon(pb.ArchiveCouponRequest(coupon_id=created.coupon.id))).coupon
    assert archived.HasField("archive_time")
    error = await expect_rpc_error(apply(code), grpc.StatusCode.FAILED_PRECONDITION)
    assert "archived" in error.details()


async def test_a_quote_shows_what_a_discount_takes_off(invoicing_stub):
    charge = pb.Charge(model=pb.CHARGE_MODEL_PER_UNIT, unit_price="0.05")
    quote = await invoicing_stub.QuotePrice(pb.QuotePriceRequest(currency="INR", charge=charge, quantity="12345",
                                                                 percent_off="15"))
    # 617.25, 15% = 92.5875 -> 92.59 off: 524.66 left.
    assert (quote.total_minor, quote.discount_minor, quote.discounted_total_minor) == (61725, 9259, 52466)
    capped = await invoicing_stub.QuotePrice(pb.QuotePriceRequest(currency="INR", charge=charge, quantity="10",
                                                                  amount_off="5"))
    assert (capped.total_minor, capped.discount_minor, capped.discounted_total_minor) == (50, 50, 0)
    error = await expect_rpc_error(invoicing_stub.QuotePrice(pb.QuotePriceRequest(
        currency="JPY", charge=charge, quantity="1", amount_off="0.5")), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "amount_off"
