"""Invoice runs end to end inside the mesh's services: usage in metering -> priced, taxed, numbered invoice."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, date, datetime, timedelta

import grpc
import sqlalchemy as sa
from prometheus_client import REGISTRY

from billing.invoicing.v1 import events_pb2
from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.metering.v1 import metering_pb2
from services.invoicing.adapters.tables import invoice_number_series, invoices
from tests.integration.helpers import expect_rpc_error
from tests.integration.invoicing.conftest import (
    create_organisation,
    create_plan,
    invoices_of,
    record_usage,
    run_to_completion,
    subscribe,
    terms,
)
from tests.integration.metering.conftest import E, batch, define, eventually, publish, whole_usage

SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
OCT_START_IST = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)  # 1 October 00:00 in Asia/Kolkata
NOV_START_IST = datetime(2026, 10, 31, 18, 30, tzinfo=UTC)  # 1 November 00:00 in Asia/Kolkata

STANDARD = dict(
    currency="INR",
    base_fee="999",
    charges=[
        {
            "metric_code": "api_calls",
            "display_name": "API calls",
            "charge": {
                "model": "CHARGE_MODEL_GRADUATED",
                "tiers": [{"up_to": "1000", "unit_price": "0"}, {"up_to": "10000", "unit_price": "0.05"},
                          {"unit_price": "0.02"}],
            },
        },
        {
            "metric_code": "llm_tokens",
            "display_name": "LLM tokens",
            "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.0004", "minimum_amount": "50"},
        },
    ],
    quotas=[{"metric_code": "api_calls", "limit": "1000000", "cap": "QUOTA_CAP_SOFT"}],
)


async def billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream, **overrides) -> str:
    """An organisation on STANDARD since 1 October (IST) with 12,345 API calls and 100,000 tokens in October,
    plus events just outside October that must not count."""
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER, **overrides)
    plan = await create_plan(invoicing_stub, terms(**STANDARD))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
    await record_usage(
        jetstream,
        metering_stub,
        organisation_id,
        [
            ("api_calls", "5", OCT_START_IST + timedelta(minutes=30)),  # 00:30 IST on 1 October: counts
            ("api_calls", "12340", datetime(2026, 10, 15, 6, tzinfo=UTC)),
            ("api_calls", "1000", NOV_START_IST),  # 00:00 IST on 1 November: the next period
            ("api_calls", "7", OCT_START_IST - timedelta(seconds=1)),  # 23:59:59 IST on 30 September
            ("llm_tokens", "100000", datetime(2026, 10, 20, tzinfo=UTC)),
        ],
        expect={
            "api_calls": (OCT_START_IST, NOV_START_IST, "12345"),
            "llm_tokens": (OCT_START_IST, NOV_START_IST, "100000"),
        },
    )
    return organisation_id


async def test_a_run_issues_one_exact_gst_invoice_and_a_second_run_changes_nothing(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)

    run = await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    assert (run.state, run.invoiced, run.failed, run.organisations_total) == (
        pb.INVOICE_RUN_STATE_COMPLETED, 1, 0, 1), run

    (invoice,) = await invoices_of(invoicing_stub, organisation_id)
    assert invoice.status == pb.INVOICE_STATUS_ISSUED
    assert invoice.currency == "INR" and invoice.period_key == "2026-10"
    assert invoice.period_start.ToDatetime(tzinfo=UTC) == OCT_START_IST
    assert [(line.kind, line.amount_minor) for line in invoice.lines] == [
        (pb.LINE_KIND_BASE_FEE, 99900),
        # 1,000 free + 9,000 x 0.05 + 2,345 x 0.02 = 450 + 46.90
        (pb.LINE_KIND_USAGE, 49690),
        # 100,000 x 0.0004 = 40.00, brought up to the 50.00 minimum
        (pb.LINE_KIND_USAGE, 4000),
        (pb.LINE_KIND_MINIMUM_SPEND, 1000),
    ]
    assert invoice.lines[1].quantity == "12345"
    assert invoice.lines[1].unit_price == "0.0402511138"  # the average, to 10 places: 496.90 / 12,345
    assert [len(line.breakdown) for line in invoice.lines[1:2]] == [3]
    assert invoice.subtotal_minor == 154590
    # Karnataka to Karnataka: CGST 9 % + SGST 9 %, each 13,913.1 paise rounded half-up.
    assert [(t.kind, t.rate, t.taxable_minor, t.amount_minor) for t in invoice.tax_lines] == [
        (pb.TAX_KIND_CGST, "9", 154590, 13913),
        (pb.TAX_KIND_SGST, "9", 154590, 13913),
    ]
    assert (invoice.tax_minor, invoice.total_minor) == (27826, 182416)
    assert invoice.tax_regime == pb.TAX_REGIME_INTRA_STATE and invoice.place_of_supply == "29"
    assert re.fullmatch(r"INV/\d{4}/\d{5}", invoice.number) and len(invoice.number) <= 16
    issue = date.fromisoformat(invoice.issue_date)
    assert date.fromisoformat(invoice.due_date) - issue == timedelta(days=15)

    again = await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    assert (again.invoiced, again.already_invoiced) == (0, 1)
    assert [i.id for i in await invoices_of(invoicing_stub, organisation_id)] == [invoice.id]


async def test_issuing_publishes_invoice_issued_through_the_outbox(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)
    subscription = await jetstream.subscribe("billing.invoicing.v1.invoice.issued", stream="BILLING_INVOICING")
    watched = {
        "planned": ("billing_invoicing_run_organisations_planned_total", {}),
        "invoiced": ("billing_invoicing_run_organisations_total", {"result": "invoiced"}),
        "completed": ("billing_invoicing_runs_finished_total", {"state": "completed"}),
        "issued": ("billing_outbox_events_recorded_total", {"subject": "billing.invoicing.v1.invoice.issued"}),
    }
    before = {key: REGISTRY.get_sample_value(name, labels) or 0.0 for key, (name, labels) in watched.items()}
    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    after = {key: REGISTRY.get_sample_value(name, labels) or 0.0 for key, (name, labels) in watched.items()}
    # What the dashboard's invoice-run and outbox panels show.
    assert {key: after[key] - before[key] for key in watched} == {"planned": 1, "invoiced": 1, "completed": 1,
                                                                   "issued": 1}
    (invoice,) = await invoices_of(invoicing_stub, organisation_id)
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        message = await subscription.next_msg(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        event = events_pb2.InvoiceIssued.FromString(message.data)
        if event.invoice.id == invoice.id:
            break
    await subscription.unsubscribe()
    assert event.invoice.number == invoice.number and event.invoice.total_minor == 182416
    assert message.headers["Nats-Msg-Id"] == event.event_id


async def test_the_same_run_twice_at_once_issues_one_invoice_each_with_gapless_numbers(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    plan = await create_plan(invoicing_stub, terms(currency="INR", base_fee="100", charges=[]))
    organisation_ids = []
    for _ in range(12):
        organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
        await subscribe(invoicing_stub, organisation_id, plan.latest_version.id, start_date="2026-09-01")
        organisation_ids.append(organisation_id)

    # Two runs of September for everyone, started together: both work through every organisation at once.
    first, second = await asyncio.gather(
        run_to_completion(invoicing_stub, "2026-09", key="concurrent-a"),
        run_to_completion(invoicing_stub, "2026-09", key="concurrent-b"),
    )
    assert first.failed == second.failed == 0, (first.failures, second.failures)
    for organisation_id in organisation_ids:
        issued = await invoices_of(invoicing_stub, organisation_id, "2026-09")
        assert len(issued) == 1 and issued[0].status == pb.INVOICE_STATUS_ISSUED
        assert issued[0].total_minor == 11800  # 100.00 + 18 % GST
    # Every invoice issued in this database, by any test: its series has no gap and no number twice.
    async with invoicing.engine.connect() as conn:
        numbers = (await conn.execute(sa.select(invoices.c.number).where(invoices.c.number.is_not(None)))).scalars()
        numbers = list(numbers)
        # Per (series, financial year); credit notes have series of their own ("credit_note:CN").
        lasts = dict((await conn.execute(
            sa.select(invoice_number_series.c.financial_year, invoice_number_series.c.last_sequence)
            .where(invoice_number_series.c.series == "INV")
        )).all())
    assert lasts
    for year, last in lasts.items():
        sequences = sorted(int(n.rsplit("/", 1)[1]) for n in numbers if n.split("/")[1] == year)
        assert sequences == list(range(1, last + 1)), year


async def test_void_then_reissue_gives_a_new_number_and_runs_leave_the_period_alone(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)
    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    (invoice,) = await invoices_of(invoicing_stub, organisation_id)

    await expect_rpc_error(
        invoicing_stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=invoice.id, reason=" ")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await expect_rpc_error(
        invoicing_stub.ReissueInvoice(pb.ReissueInvoiceRequest(invoice_id=invoice.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    voided = (await invoicing_stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=invoice.id, reason="wrong GSTIN")))
    again = await invoicing_stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=invoice.id, reason="other"))
    assert voided.invoice.status == again.invoice.status == pb.INVOICE_STATUS_VOID
    assert again.invoice.void_reason == "wrong GSTIN"

    rerun = await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    assert (rerun.invoiced, rerun.already_invoiced) == (0, 1)

    reissued = await invoicing_stub.ReissueInvoice(pb.ReissueInvoiceRequest(invoice_id=invoice.id))
    assert reissued.created and reissued.invoice.replaces_invoice_id == invoice.id
    assert reissued.invoice.number != invoice.number and reissued.invoice.status == pb.INVOICE_STATUS_ISSUED
    assert reissued.invoice.total_minor == invoice.total_minor
    repeat = await invoicing_stub.ReissueInvoice(pb.ReissueInvoiceRequest(invoice_id=invoice.id))
    assert (repeat.created, repeat.invoice.id) == (False, reissued.invoice.id)
    statuses = sorted(i.status for i in await invoices_of(invoicing_stub, organisation_id))
    assert statuses == [pb.INVOICE_STATUS_ISSUED, pb.INVOICE_STATUS_VOID]


async def test_a_customer_abroad_gets_a_zero_rated_invoice_converted_at_the_stored_rate(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    # Kuwaiti dinars: three decimals (fils), and a pair no other test gives a rate for.
    organisation_id = await billed_organisation(
        invoicing, invoicing_stub, metering_stub, jetstream,
        billing_currency="KWD", country="KW", state_code="", gstin="", timezone="Asia/Kolkata",
    )
    missing = await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    assert missing.failed == 1 and "no exchange rate from INR to KWD" in missing.failures[0].message
    assert await invoices_of(invoicing_stub, organisation_id) == []

    rate = pb.CreateExchangeRateRequest(base_currency="INR", quote_currency="KWD", rate="0.0037", source="test desk")
    rate.effective_time.FromDatetime(SEPTEMBER)
    await invoicing_stub.CreateExchangeRate(rate)
    run = await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    assert (run.invoiced, run.failed) == (1, 0), run.failures
    (invoice,) = await invoices_of(invoicing_stub, organisation_id)
    assert invoice.currency == "KWD" and invoice.tax_regime == pb.TAX_REGIME_EXPORT
    assert invoice.place_of_supply == "96" and list(invoice.tax_lines) == [] and invoice.tax_minor == 0
    assert invoice.exchange_rate.rate == "0.0037" and invoice.exchange_rate.source == "test desk"
    # In fils: 999 INR x 0.0037 = 3.6963 -> 3.696; 496.90 x 0.0037 = 1.83853 -> 1.839; 40 x 0.0037 = 0.148;
    # the 50 INR minimum is 0.185 KWD, so the minimum-spend line is 0.037.
    assert [line.amount_minor for line in invoice.lines] == [3696, 1839, 148, 37]
    assert invoice.total_minor == 5720
    assert any("export" in note.lower() for note in invoice.notes)


async def test_a_plan_change_prorates_base_fees_by_day_and_prices_usage_on_the_plan_in_force(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
    per_call = {"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.10"}}
    small = await create_plan(invoicing_stub, terms(currency="INR", base_fee="310", charges=[per_call]))
    per_call_cheap = {"metric_code": "api_calls", "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.01"}}
    large = await create_plan(invoicing_stub, terms(currency="INR", base_fee="3100", charges=[per_call_cheap]))
    subscription = await subscribe(invoicing_stub, organisation_id, small.latest_version.id)
    changed = await invoicing_stub.ChangeSubscriptionPlan(
        pb.ChangeSubscriptionPlanRequest(
            subscription_id=subscription.id, plan_version_id=large.latest_version.id, effective_date="2026-10-13"
        )
    )
    repeat = await invoicing_stub.ChangeSubscriptionPlan(
        pb.ChangeSubscriptionPlanRequest(
            subscription_id=subscription.id, plan_version_id=large.latest_version.id, effective_date="2026-10-13"
        )
    )
    assert changed.changed and not repeat.changed and len(repeat.subscription.phases) == 2
    change_at = datetime(2026, 10, 12, 18, 30, tzinfo=UTC)  # 13 October 00:00 IST
    await record_usage(
        jetstream, metering_stub, organisation_id,
        [("api_calls", "100", change_at - timedelta(hours=1)), ("api_calls", "1000", change_at)],
        expect={"api_calls": (OCT_START_IST, NOV_START_IST, "1100")},
    )
    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    (invoice,) = await invoices_of(invoicing_stub, organisation_id)
    assert [(line.kind, line.amount_minor) for line in invoice.lines] == [
        (pb.LINE_KIND_BASE_FEE, 12000),  # 310 x 12 / 31 days
        (pb.LINE_KIND_USAGE, 1000),  # 100 calls x 0.10 before the change
        (pb.LINE_KIND_BASE_FEE, 190000),  # 3,100 x 19 / 31 days
        (pb.LINE_KIND_USAGE, 1000),  # 1,000 calls x 0.01 after it
    ]


async def test_a_gauge_charge_bills_value_hours_with_the_value_carried_into_the_period(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    """Storage in GB as a weighted_sum metric, priced per GB-hour: the value set in September is carried into
    October, one at the same instant as another loses to the greater event id, a duplicate counts once, and the
    value set at the first instant of November belongs to November."""
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=SEPTEMBER)
    storage = {"metric_code": "storage_gb", "display_name": "Storage",
               "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.0125"}}
    plan = await create_plan(invoicing_stub, terms(currency="INR", base_fee="0", charges=[storage]))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id)
    await define(metering_stub, organisation_id, "storage_gb", metering_pb2.AGGREGATION_WEIGHTED_SUM, unit="GB")
    changed = datetime(2026, 10, 15, 6, tzinfo=UTC)
    gauge = [
        E("s1", "100", datetime(2026, 9, 10, tzinfo=UTC), "storage_gb"),
        E("s2", "250", changed, "storage_gb"),
        E("s0", "999", changed, "storage_gb"),
        E("s3", "40", NOV_START_IST - timedelta(milliseconds=500), "storage_gb"),
        E("s4", "1000", NOV_START_IST, "storage_gb"),
    ]
    project = f"prj_test{secrets.token_hex(8)}"
    await publish(jetstream, batch(organisation_id, project, gauge))
    await publish(jetstream, batch(organisation_id, project, gauge[1:2]))
    # 100 GB x 347.5 h + 250 GB x (396.5 h - 0.5 s) + 40 GB x 0.5 s = 481,949,895 GB-s = 133,874.9708333... GB-h
    await eventually(lambda: whole_usage(metering_stub, organisation_id, "storage_gb", OCT_START_IST, NOV_START_IST),
                     lambda found: found == ("133874.970833333333", 3))

    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    (invoice,) = await invoices_of(invoicing_stub, organisation_id)
    usage = [line for line in invoice.lines if line.kind == pb.LINE_KIND_USAGE]
    # 133,874.970833333333 x 0.0125 = 1,673.437135416666..., rounded half up once, on the line: 1,673.44
    assert [(line.quantity, line.amount_minor) for line in usage] == [("133874.970833333333", 167344)]


async def test_the_projected_invoice_prices_usage_so_far_and_stores_nothing(
    invoicing, invoicing_stub, metering, metering_stub, jetstream
):
    now = datetime.now(UTC)
    organisation_id = await create_organisation(invoicing_stub, invoicing, since=now - timedelta(days=62),
                                                timezone="UTC")
    plan = await create_plan(invoicing_stub, terms(**STANDARD))
    await subscribe(invoicing_stub, organisation_id, plan.latest_version.id, start_date=f"{now:%Y-%m}-01")
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    await record_usage(
        jetstream, metering_stub, organisation_id,
        [("api_calls", "2000", now - timedelta(seconds=5)), ("llm_tokens", "250000", now - timedelta(seconds=5))],
        expect={"api_calls": (month_start, now, "2000"), "llm_tokens": (month_start, now, "250000")},
    )
    projected = (
        await invoicing_stub.GetProjectedInvoice(pb.GetProjectedInvoiceRequest(organisation_id=organisation_id))
    ).invoice
    assert projected.projected and projected.number == "" and projected.period_key == f"{now:%Y-%m}"
    # 999 base; 1,000 x 0.05 = 50.00; 250,000 x 0.0004 = 100.00 (above the minimum)
    assert [line.amount_minor for line in projected.lines] == [99900, 5000, 10000]
    assert projected.subtotal_minor == 114900
    assert await invoices_of(invoicing_stub, organisation_id) == []


async def test_invoices_render_as_pdf_and_html(invoicing, invoicing_stub, metering, metering_stub, jetstream):
    organisation_id = await billed_organisation(invoicing, invoicing_stub, metering_stub, jetstream)
    await run_to_completion(invoicing_stub, "2026-10", organisation_id)
    (invoice,) = await invoices_of(invoicing_stub, organisation_id)
    pdf = await invoicing_stub.RenderInvoice(
        pb.RenderInvoiceRequest(invoice_id=invoice.id, format=pb.INVOICE_FORMAT_PDF)
    )
    assert pdf.content.startswith(b"%PDF-") and pdf.content_type == "application/pdf"
    assert pdf.filename == invoice.number.replace("/", "-") + ".pdf"
    html = await invoicing_stub.RenderInvoice(
        pb.RenderInvoiceRequest(invoice_id=invoice.id, format=pb.INVOICE_FORMAT_HTML)
    )
    text = html.content.decode()
    assert invoice.number in text and "1,824.16" in text
    assert "1 Oct 2026 - 31 Oct 2026" in text  # the period in the organisation's zone, not UTC's 30 Sep


async def test_bad_periods_and_unknown_organisations_are_refused(invoicing_stub):
    for period in ("2026-13", "Oct 2026", ""):
        await expect_rpc_error(
            invoicing_stub.StartInvoiceRun(pb.StartInvoiceRunRequest(period_key=period)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    await expect_rpc_error(
        invoicing_stub.StartInvoiceRun(pb.StartInvoiceRunRequest(period_key="2026-10", organisation_id="org_nope")),
        grpc.StatusCode.NOT_FOUND,
    )
