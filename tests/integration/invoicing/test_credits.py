"""Prepaid credit through gRPC against the real invoicing service and PostgreSQL: grants spent on issued invoices
after tax with a line per grant in priority order, expired grants never spent, a voided invoice's credit given back
and spent again by its reissue, periods closed at once never overspending a balance, a top-up credited once
when its invoice is paid, and its unspent credit taken back, once, when its payment is refunded. The
projected invoice shows the credit lines the period close then spends, spending nothing itself."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from functools import partial

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime import messaging
from services.invoicing.__main__ import issuing_policy
from services.invoicing.adapters.metering_usage import MeteringUsage
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.service.period_close import PeriodClose
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.conftest import (
    create_organisation,
    create_plan,
    run_to_completion,
    subscribe,
    terms,
)
from tests.integration.invoicing.test_coupons import live_invoice
from tests.integration.invoicing.test_settlement import Payments, invoice_when
from tests.integration.metering.conftest import eventually

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
TOTAL = 99900 + 2 * 8991  # 999.00 base fee + CGST and SGST 9 %: 1178.82


@pytest.fixture
async def payments_events(jetstream):
    """BILLING_PAYMENTS as the payments service creates it (it is not running in these tests)."""
    await messaging.ensure_stream(jetstream, messaging.stream_name("payments"), ["billing.payments.v1.>"])
    return jetstream


async def customer(stub, invoicing) -> str:
    plan = await create_plan(stub, terms(currency="INR", base_fee="999"))
    organisation_id = await create_organisation(stub, invoicing, since=APRIL)
    await subscribe(stub, organisation_id, plan.latest_version.id, start_date="2026-05-01")
    return organisation_id


async def grant(stub, organisation_id: str, amount: int, **fields) -> pb.CreditGrant:
    request = pb.GrantCreditRequest(organisation_id=organisation_id, amount_minor=amount, currency="INR", **fields)
    return (await stub.GrantCredit(request)).grant


async def balance(stub, organisation_id: str) -> pb.GetCreditBalanceResponse:
    return await stub.GetCreditBalance(pb.GetCreditBalanceRequest(organisation_id=organisation_id))


async def test_grants_pay_the_total_after_tax_a_line_per_grant_in_order(invoicing, invoicing_stub, metering):
    organisation_id = await customer(invoicing_stub, invoicing)
    late = await grant(invoicing_stub, organisation_id, 50_000, priority=5, description="goodwill")
    first = await grant(invoicing_stub, organisation_id, 30_000, priority=1)
    soon = pb.GrantCreditRequest(organisation_id=organisation_id, amount_minor=20_000, currency="INR", priority=0)
    soon.expire_time.FromDatetime(datetime.now(UTC) + timedelta(seconds=1))
    expiring = (await invoicing_stub.GrantCredit(soon)).grant
    await asyncio.sleep(1.2)  # expired before the period is closed: never spent

    run = await run_to_completion(invoicing_stub, "2026-05", organisation_id)
    assert (run.invoiced, run.failed) == (1, 0), run.failures
    invoice = await live_invoice(invoicing_stub, organisation_id, "2026-05")
    # GST stays on the full 999.00; the credit pays 800.00 of the 1178.82 total.
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (99900, 2 * 8991, TOTAL)
    assert [(line.number, line.kind, line.amount_minor, line.credit_grant_id) for line in invoice.credit_lines] == [
        (2, pb.LINE_KIND_CREDIT, -30_000, first.id), (3, pb.LINE_KIND_CREDIT, -50_000, late.id)]
    assert (invoice.credits_minor, invoice.amount_due_minor) == (80_000, TOTAL - 80_000)

    statement = await balance(invoicing_stub, organisation_id)
    assert [(b.currency, b.available_minor) for b in statement.balances] == [("INR", 0)]
    by_id = {g.id: g for g in statement.grants}
    assert (by_id[expiring.id].remaining_minor, by_id[expiring.id].expired) == (20_000, True)
    assert by_id[late.id].remaining_minor == 0
    assert sorted((c.grant_id, c.amount_minor) for c in statement.consumptions) == sorted(
        [(first.id, 30_000), (late.id, 50_000)])

    # Voided: the credit goes back; the reissue spends it again, once.
    await invoicing_stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=invoice.id, reason="wrong address"))
    assert (await balance(invoicing_stub, organisation_id)).balances[0].available_minor == 80_000
    reissued = (await invoicing_stub.ReissueInvoice(pb.ReissueInvoiceRequest(invoice_id=invoice.id))).invoice
    assert [line.amount_minor for line in reissued.credit_lines] == [-30_000, -50_000]
    assert (await balance(invoicing_stub, organisation_id)).balances[0].available_minor == 0
    fetched = (await invoicing_stub.GetInvoice(pb.GetInvoiceRequest(invoice_id=reissued.id))).invoice
    assert fetched.amount_due_minor == TOTAL - 80_000 and len(fetched.credit_lines) == 2


async def test_periods_closed_at_once_never_overspend(invoicing, invoicing_stub, metering):
    organisation_id = await customer(invoicing_stub, invoicing)
    await grant(invoicing_stub, organisation_id, 150_000)  # enough for one invoice and part of another
    keys = ("2026-05", "2026-06", "2026-07")
    runs = await asyncio.gather(*(run_to_completion(invoicing_stub, key, organisation_id) for key in keys))
    assert all((run.invoiced, run.failed) == (1, 0) for run in runs), [run.failures for run in runs]
    spent = [(await live_invoice(invoicing_stub, organisation_id, key)).credits_minor for key in keys]
    assert sum(spent) == 150_000 and sorted(spent) == [0, 150_000 - TOTAL, TOTAL]
    statement = await balance(invoicing_stub, organisation_id)
    assert statement.balances[0].available_minor == 0 and statement.grants[0].consumed_minor == 150_000
    again = await run_to_completion(invoicing_stub, "2026-06", organisation_id)
    assert (again.invoiced, again.already_invoiced) == (0, 1)
    assert (await balance(invoicing_stub, organisation_id)).grants[0].consumed_minor == 150_000


async def test_grants_are_idempotent_and_refusals_name_the_field(invoicing, invoicing_stub):
    organisation_id = await create_organisation(invoicing_stub, invoicing)
    key = f"g-{secrets.token_hex(4)}"
    first = await invoicing_stub.GrantCredit(pb.GrantCreditRequest(
        organisation_id=organisation_id, amount_minor=5000, currency="INR", idempotency_key=key))
    repeat = await invoicing_stub.GrantCredit(pb.GrantCreditRequest(
        organisation_id=organisation_id, amount_minor=5000, currency="INR", idempotency_key=key))
    assert first.created and not repeat.created and repeat.grant.id == first.grant.id
    note = f"cn_{secrets.token_hex(4)}"
    by_note = [await invoicing_stub.GrantCredit(pb.GrantCreditRequest(
        organisation_id=organisation_id, amount_minor=700, currency="INR", source=pb.CREDIT_GRANT_SOURCE_CREDIT_NOTE,
        source_id=note)) for _ in range(2)]
    assert by_note[0].created and not by_note[1].created and by_note[0].grant.id == by_note[1].grant.id
    assert by_note[0].grant.source == pb.CREDIT_GRANT_SOURCE_CREDIT_NOTE
    for request, field in (
        (pb.GrantCreditRequest(organisation_id=organisation_id, amount_minor=5, currency="USD"), "currency"),
        (pb.GrantCreditRequest(organisation_id=organisation_id, amount_minor=0, currency="INR"), "amount_minor"),
        (pb.GrantCreditRequest(organisation_id=organisation_id, amount_minor=5, currency="INR", priority=-1),
         "priority"),
        (pb.GrantCreditRequest(organisation_id=organisation_id, amount_minor=5, currency="INR",
                               source=pb.CREDIT_GRANT_SOURCE_PURCHASED), "source"),
    ):
        error = await expect_rpc_error(invoicing_stub.GrantCredit(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert error_field(error) == field
    await expect_rpc_error(invoicing_stub.GetCreditBalance(pb.GetCreditBalanceRequest(
        organisation_id="org_01KNOSUCHORGANISATION00000")), grpc.StatusCode.NOT_FOUND)
    voided = (await invoicing_stub.VoidCreditGrant(pb.VoidCreditGrantRequest(
        organisation_id=organisation_id, grant_id=first.grant.id, reason="granted by mistake"))).grant
    assert voided.status == pb.CREDIT_GRANT_STATUS_VOIDED and voided.HasField("void_time")
    statement = await balance(invoicing_stub, organisation_id)
    assert [(b.currency, b.available_minor) for b in statement.balances] == [("INR", 700)]


async def test_a_top_up_is_credited_once_when_its_invoice_is_paid(invoicing, invoicing_stub, payments_events):
    organisation_id = await create_organisation(invoicing_stub, invoicing)
    key = f"t-{secrets.token_hex(4)}"
    request = pb.TopUpCreditRequest(organisation_id=organisation_id, amount_minor=250_000, currency="INR",
                                    idempotency_key=key)
    top_up = await invoicing_stub.TopUpCredit(request)
    again = await invoicing_stub.TopUpCredit(request)
    assert top_up.created and not again.created and again.grant.id == top_up.grant.id
    invoice = top_up.invoice
    assert invoice.status == pb.INVOICE_STATUS_ISSUED and invoice.number
    assert [(line.kind, line.amount_minor) for line in invoice.lines] == [(pb.LINE_KIND_CREDIT_PURCHASE, 250_000)]
    assert (invoice.total_minor, invoice.amount_due_minor) == (250_000, 250_000)
    assert top_up.grant.status == pb.CREDIT_GRANT_STATUS_PENDING
    statement = await balance(invoicing_stub, organisation_id)
    assert [(b.available_minor, b.pending_minor) for b in statement.balances] == [(0, 250_000)]

    desk = Payments(payments_events, invoice)
    await desk.publish(desk.captured("p", 250_000))
    await invoice_when(invoicing_stub, invoice.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    await desk.publish(desk.captured("p2", 250_000, minutes=1))  # a second capture: over-paid, credited once
    await invoice_when(invoicing_stub, invoice.id, lambda i: i.amount_paid_minor == 500_000)
    statement = await eventually(lambda: balance(invoicing_stub, organisation_id),
                                 lambda s: s.balances[0].available_minor > 0, timeout=20.0)
    assert [(b.available_minor, b.pending_minor) for b in statement.balances] == [(250_000, 0)]
    assert [(g.status, g.source, g.amount_minor) for g in statement.grants] == [
        (pb.CREDIT_GRANT_STATUS_AVAILABLE, pb.CREDIT_GRANT_SOURCE_PURCHASED, 250_000)]


async def test_a_refunded_top_up_takes_back_its_unspent_credit_once(invoicing, invoicing_stub, metering,
                                                                     payments_events):
    organisation_id = await customer(invoicing_stub, invoicing)
    top_up = await invoicing_stub.TopUpCredit(pb.TopUpCreditRequest(
        organisation_id=organisation_id, amount_minor=150_000, currency="INR", idempotency_key=secrets.token_hex(4)))
    purchase, grant_id = top_up.invoice, top_up.grant.id
    desk = Payments(payments_events, purchase)
    await desk.publish(desk.captured("p", 150_000))
    await invoice_when(invoicing_stub, purchase.id, lambda i: i.status == pb.INVOICE_STATUS_PAID)
    await eventually(lambda: balance(invoicing_stub, organisation_id),
                     lambda s: s.balances[0].available_minor == 150_000, timeout=20.0)
    run = await run_to_completion(invoicing_stub, "2026-05", organisation_id)
    assert (run.invoiced, run.failed) == (1, 0), run.failures
    may = await live_invoice(invoicing_stub, organisation_id, "2026-05")
    assert may.credits_minor == TOTAL  # 1178.82 of the 1500.00 bought spent; 321.18 left

    # A partial refund takes back only its amount, once: a redelivery (a new NATS message id) changes nothing.
    partial = desk.refunded("r1", 20_000, minutes=5)
    await desk.publish(partial)
    await invoice_when(invoicing_stub, purchase.id, lambda i: i.amount_refunded_minor == 20_000)
    await desk.publish(partial, msg_id=f"again-{secrets.token_hex(4)}")
    statement = await balance(invoicing_stub, organisation_id)
    assert statement.balances[0].available_minor == 150_000 - TOTAL - 20_000
    [bought] = statement.grants
    assert (bought.consumed_minor, bought.clawed_back_minor) == (TOTAL, 20_000)

    # The rest refunded: what is left is taken (never below zero), what was spent goes to the review list.
    rest = desk.refunded("r2", 130_000, minutes=6)
    await desk.publish(rest)
    await invoice_when(invoicing_stub, purchase.id, lambda i: i.status == pb.INVOICE_STATUS_REFUNDED)
    statement = await balance(invoicing_stub, organisation_id)
    assert statement.balances[0].available_minor == 0
    [bought] = statement.grants
    assert (bought.id, bought.consumed_minor, bought.clawed_back_minor, bought.remaining_minor) == (
        grant_id, TOTAL, 150_000 - TOTAL, 0)
    ledger = sorted((c.kind, c.invoice_id, c.refund_id, c.amount_minor) for c in statement.consumptions)
    assert ledger == sorted([
        (pb.CREDIT_LEDGER_KIND_INVOICE, may.id, "", TOTAL),
        (pb.CREDIT_LEDGER_KIND_CLAWBACK, purchase.id, f"rfd_{desk.tag}_r1", 20_000),
        (pb.CREDIT_LEDGER_KIND_CLAWBACK, purchase.id, f"rfd_{desk.tag}_r2", 150_000 - TOTAL - 20_000),
    ])
    items = (await invoicing_stub.ListReviewItems(
        pb.ListReviewItemsRequest(organisation_id=organisation_id))).review_items
    [spent] = [i for i in items if i.kind == pb.REVIEW_ITEM_KIND_REFUNDED_CREDIT_SPENT]
    assert (spent.invoice_id, spent.event_id, spent.amount_minor) == (purchase.id, rest[1].event_id, TOTAL)
    assert may.id in spent.detail and f"rfd_{desk.tag}_r2" in spent.detail

    # Redelivered once more: no second claw-back, no second review; the May invoice keeps its credit.
    await desk.publish(rest, msg_id=f"again-{secrets.token_hex(4)}")
    await asyncio.sleep(1.0)
    again = await balance(invoicing_stub, organisation_id)
    assert len(again.consumptions) == 3 and again.grants[0].remaining_minor == 0
    items = (await invoicing_stub.ListReviewItems(
        pb.ListReviewItemsRequest(organisation_id=organisation_id))).review_items
    assert len([i for i in items if i.kind == pb.REVIEW_ITEM_KIND_REFUNDED_CREDIT_SPENT]) == 1
    assert (await live_invoice(invoicing_stub, organisation_id, "2026-05")).credits_minor == TOTAL


def credit_view(invoice: pb.Invoice):
    return ([(line.number, line.kind, line.description, line.credit_grant_id, line.amount_minor)
             for line in invoice.credit_lines], invoice.credits_minor, invoice.amount_due_minor, invoice.total_minor)


async def test_the_projected_invoice_shows_the_credit_its_period_close_spends_and_spends_none(
    invoicing, invoicing_stub, metering
):
    """The current period projected now, then closed (by a period close whose clock is a day after the period's
    end, over the same tables and metering): the same credit lines, amounts and what is left to pay."""
    organisation_id = await customer(invoicing_stub, invoicing)
    later = await grant(invoicing_stub, organisation_id, 50_000, priority=5, description="goodwill")
    first = await grant(invoicing_stub, organisation_id, 30_000, priority=1)

    projected = (await invoicing_stub.GetProjectedInvoice(
        pb.GetProjectedInvoiceRequest(organisation_id=organisation_id, include_forecast=True)))
    invoice = projected.invoice
    assert invoice.projected and credit_view(invoice) == (
        [(2, pb.LINE_KIND_CREDIT, f"Prepaid credit: granted credit ({first.id})", first.id, -30_000),
         (3, pb.LINE_KIND_CREDIT, f"Prepaid credit: goodwill ({later.id})", later.id, -50_000)],
        80_000, TOTAL - 80_000, TOTAL)
    # No usage: the forecast's total is the same, and so is the credit it would take (no grant expires).
    assert credit_view(projected.forecast.invoice) == credit_view(invoice)
    statement = await balance(invoicing_stub, organisation_id)
    assert statement.balances[0].available_minor == 80_000 and list(statement.consumptions) == []

    period_end = invoice.period_end.ToDatetime(tzinfo=UTC)
    usage = MeteringUsage(metering.address)
    try:
        close = PeriodClose(partial(InvoicingUnitOfWork, invoicing.engine), invoicing.outbox, usage,
                            issuing_policy(invoicing.settings), clock=lambda: period_end + timedelta(days=1))
        async with InvoicingUnitOfWork(invoicing.engine) as uow:
            organisation = await uow.organisations.get(organisation_id)
        progress = await close.close_batch([organisation], invoice.period_key)
    finally:
        await usage.close()
    assert (progress.invoiced, progress.failed) == (1, 0), progress.failures
    closed = await live_invoice(invoicing_stub, organisation_id, invoice.period_key)
    assert closed.status == pb.INVOICE_STATUS_ISSUED and credit_view(closed) == credit_view(invoice)
    assert (await balance(invoicing_stub, organisation_id)).balances[0].available_minor == 0
