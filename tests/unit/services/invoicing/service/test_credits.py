"""Prepaid credit use cases against in-memory repositories: grants idempotent by key and by credit note, refusals
that change nothing, the period close spending credit once per (grant, invoice) and a void giving it back, and a
top-up whose grant becomes available when its invoice is paid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing_runtime.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from services.invoicing.domain.credit import GrantSource, GrantStatus, LedgerKind
from services.invoicing.domain.invoice import InvoiceStatus, LineKind
from services.invoicing.domain.settlement import ReviewKind, Settlement, SettlementKind
from services.invoicing.service import credits, invoices
from services.invoicing.service.period_close import PeriodClose
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables
from tests.unit.services.invoicing.service.test_coupons import close_periods, customer
from tests.unit.services.invoicing.service.test_coupons import tables as tables  # noqa: F401 - the fixture
from tests.unit.services.invoicing.service.test_period_close import NOW, POLICY, FakeUsage, close_for

TOTAL = 110000 + 2 * 9900  # 1,000.00 + 200 x 0.50, CGST and SGST 9 %: 1,298.00


async def grant(tables: Tables, organisation_id: str, amount: int, **options):
    return await credits.grant_credit(FakeUnitOfWork(tables), organisation_id=organisation_id, amount_minor=amount,
                                      currency="INR", now=NOW, **options)


async def test_grants_are_idempotent_by_key_and_by_credit_note(tables):
    organisation_id = await customer(tables)
    first, created = await grant(tables, organisation_id, 5000, idempotency_key="k1")
    again, created_again = await grant(tables, organisation_id, 5000, idempotency_key="k1")
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict):
        await grant(tables, organisation_id, 6000, idempotency_key="k1")
    note, _ = await grant(tables, organisation_id, 700, source="credit_note", source_id="cn_1")
    repeat, created = await grant(tables, organisation_id, 700, source="credit_note", source_id="cn_1")
    assert (repeat.id, created, repeat.source) == (note.id, False, GrantSource.CREDIT_NOTE)
    with pytest.raises(FailedPrecondition, match="already gave grant"):
        await grant(tables, organisation_id, 900, source="credit_note", source_id="cn_1")
    assert len(tables.grants) == 2


async def test_refusals_name_the_field_and_change_nothing(tables):
    organisation_id = await customer(tables)
    for options, field in (({"source": "purchased"}, "source"), ({"priority": 2000}, "priority"),
                           ({"expires_at": NOW - timedelta(days=1)}, "expires_at")):
        with pytest.raises(InvalidArgument) as caught:
            await grant(tables, organisation_id, 100, **options)
        assert caught.value.field == field
    with pytest.raises(NotFound):
        await grant(tables, "org_none", 100)
    assert tables.grants == {}


async def test_the_period_close_spends_credit_once_and_a_void_gives_it_back(tables):
    organisation_id = await customer(tables)
    big, _ = await grant(tables, organisation_id, 100000, priority=1)
    small, _ = await grant(tables, organisation_id, 50000)
    close = close_for(tables, FakeUsage("200"))
    (october,) = await close_periods(close, tables, organisation_id, "2026-10")
    assert [(line.kind, line.credit_grant_id, line.amount_minor) for line in october.credit_lines] == [
        (LineKind.CREDIT, small.id, -50000), (LineKind.CREDIT, big.id, -(TOTAL - 50000))]
    # 1,298.00: 500.00 from the first (priority 0), 798.00 of the second; nothing left to pay.
    assert (october.total_minor, october.credits_minor, october.amount_due_minor) == (TOTAL, TOTAL, 0)
    statement = await credits.credit_statement(FakeUnitOfWork(tables), organisation_id=organisation_id, now=NOW)
    assert statement.balances[0].available_minor == 150000 - TOTAL == 20200
    assert sorted(c.amount_minor for c in statement.consumptions) == [50000, TOTAL - 50000]
    # Running the period again spends nothing more.
    again = await close.close_batch([tables.organisations[organisation_id].value], "2026-10")
    assert again.already_invoiced == 1 and len(tables.consumptions) == 2
    # Voided: the credit goes back; the reissue spends it again.
    await invoices.void_invoice(FakeUnitOfWork(tables), FakeOutbox(), invoice_id=october.id, reason="typo", now=NOW)
    statement = await credits.credit_statement(FakeUnitOfWork(tables), organisation_id=organisation_id, now=NOW)
    assert statement.balances[0].available_minor == 150000
    reissued, _ = await close.reissue(october.id)
    assert reissued.credits_minor == october.credits_minor
    voided = await credits.void_grant(FakeUnitOfWork(tables), organisation_id=organisation_id, grant_id=big.id,
                                      reason="mistake", now=NOW)
    assert voided.status is GrantStatus.VOIDED
    with pytest.raises(NotFound):
        await credits.void_grant(FakeUnitOfWork(tables), organisation_id="org_other", grant_id=big.id,
                                 reason="x", now=NOW)


async def test_a_draft_priced_again_in_its_grace_period_spends_its_credit_once(tables):
    organisation_id = await customer(tables)
    grant_, _ = await grant(tables, organisation_id, 100000)
    october_end = datetime(2026, 10, 31, 18, 30, tzinfo=UTC)  # midnight in Asia/Kolkata
    moment = [october_end + timedelta(hours=1)]
    usage = FakeUsage("200")
    close = PeriodClose(lambda: FakeUnitOfWork(tables), FakeOutbox(), usage, POLICY, clock=lambda: moment[0],
                        grace=timedelta(hours=24))
    acme = tables.organisations[organisation_id].value
    for total, moment[0] in (("200", october_end + timedelta(hours=1)), ("400", october_end + timedelta(hours=2)),
                             ("400", october_end + timedelta(hours=25))):
        usage.total = Decimal(total)
        assert (await close.close_batch([acme], "2026-10")).failed == 0
        [october] = [i for i in tables.invoices.values() if i.period_key == "2026-10"]
        consumed = [(row.grant_id, row.amount_minor) for row in tables.consumptions.values()]
        assert consumed == [(grant_.id, 100000)] == [(line.credit_grant_id, -line.amount_minor)
                                                     for line in october.credit_lines]
    assert october.status is InvoiceStatus.ISSUED and october.amount_due_minor == october.total_minor - 100000


async def test_a_top_up_is_an_issued_invoice_and_its_grant_is_pending_until_paid(tables):
    organisation_id = await customer(tables)
    close = close_for(tables, FakeUsage("0"))
    top_up = await credits.top_up_credit(FakeUnitOfWork(tables), close, organisation_id=organisation_id,
                                         amount_minor=250000, currency="INR", idempotency_key="t1", now=NOW)
    assert top_up.created and top_up.grant.status is GrantStatus.PENDING
    invoice = top_up.invoice
    assert invoice.status is InvoiceStatus.ISSUED and invoice.number
    assert [(line.kind, line.amount_minor) for line in invoice.lines] == [(LineKind.CREDIT_PURCHASE, 250000)]
    assert invoice.total_minor == 250000 and invoice.tax_minor == 0
    again = await credits.top_up_credit(FakeUnitOfWork(tables), close, organisation_id=organisation_id,
                                        amount_minor=250000, currency="INR", idempotency_key="t1", now=NOW)
    assert (again.created, again.grant.id, again.invoice.id) == (False, top_up.grant.id, invoice.id)
    with pytest.raises(Conflict):
        await credits.top_up_credit(FakeUnitOfWork(tables), close, organisation_id=organisation_id,
                                    amount_minor=1, currency="INR", idempotency_key="t1", now=NOW)
    async with FakeUnitOfWork(tables) as uow:
        assert await uow.credits.make_purchase_available(invoice.id) == top_up.grant.id
        assert await uow.credits.make_purchase_available(invoice.id) is None
    statement = await credits.credit_statement(FakeUnitOfWork(tables), organisation_id=organisation_id, now=NOW)
    assert [(b.available_minor, b.pending_minor) for b in statement.balances] == [(250000, 0)]


def refund(refund_id: str, amount: int, *, event: str = "") -> Settlement:
    return Settlement(event or f"evt_{refund_id}", SettlementKind.REFUND_PROCESSED, NOW, amount, "INR", "pay_1",
                      refund_id, "razorpay")


async def paid_top_up(tables: Tables, close, organisation_id: str, amount: int):
    top_up = await credits.top_up_credit(FakeUnitOfWork(tables), close, organisation_id=organisation_id,
                                         amount_minor=amount, currency="INR", now=NOW)
    async with FakeUnitOfWork(tables) as uow:
        await uow.credits.make_purchase_available(top_up.invoice.id)
    return top_up


async def grant_of(tables: Tables, grant_id: str):
    async with FakeUnitOfWork(tables) as uow:
        return await uow.credits.get(grant_id)


async def claw_back(tables: Tables, invoice_id: str, refunds, failed=()):
    async with FakeUnitOfWork(tables) as uow:
        return await credits.claw_back_refunds(uow.credits, invoice_id, refunds, list(failed), NOW)


async def test_a_refunded_top_up_takes_back_its_amount_once_per_refund(tables):
    organisation_id = await customer(tables)
    top_up = await paid_top_up(tables, close_for(tables, FakeUsage("0")), organisation_id, 250000)
    invoice_id = top_up.invoice.id
    first = refund("rfnd_1", 100000)
    assert await claw_back(tables, invoice_id, [first]) == []
    statement = await credits.credit_statement(FakeUnitOfWork(tables), organisation_id=organisation_id, now=NOW)
    assert statement.balances[0].available_minor == 150000
    assert [(c.kind, c.invoice_id, c.refund_id, c.amount_minor) for c in statement.consumptions] == [
        (LedgerKind.CLAWBACK, invoice_id, "rfnd_1", 100000)]
    # Redelivered (the same event, or another event naming the same refund), and reordered behind a later
    # refund: each refund takes back once, only its own amount.
    second = refund("rfnd_2", 50000)
    assert await claw_back(tables, invoice_id, [second, first, refund("rfnd_1", 100000, event="evt_again")]) == []
    assert await claw_back(tables, invoice_id, [first, second]) == []
    grant_ = await grant_of(tables, top_up.grant.id)
    assert (grant_.clawed_back_minor, grant_.consumed_minor, grant_.remaining_minor) == (150000, 0, 100000)
    # A refund that failed gives back what it took.
    assert await claw_back(tables, invoice_id, [first], failed=["rfnd_2"]) == []
    grant_ = await grant_of(tables, top_up.grant.id)
    assert (grant_.clawed_back_minor, grant_.remaining_minor) == (100000, 150000)


async def test_a_refund_of_spent_credit_takes_what_is_left_and_asks_an_operator_for_the_rest(tables):
    organisation_id = await customer(tables)
    close = close_for(tables, FakeUsage("200"))
    top_up = await paid_top_up(tables, close, organisation_id, 150000)
    (october,) = await close_periods(close, tables, organisation_id, "2026-10")
    assert october.credits_minor == TOTAL  # 1,298.00 of the 1,500.00 bought was spent; 202.00 left
    reviews = await claw_back(tables, top_up.invoice.id, [refund("rfnd_all", 150000)])
    [review] = reviews
    assert (review.kind, review.event_id, review.amount_minor, review.currency) == (
        ReviewKind.REFUNDED_CREDIT_SPENT, "evt_rfnd_all", TOTAL, "INR")
    assert october.id in review.detail and "rfnd_all" in review.detail and "202.00 INR" in review.detail
    statement = await credits.credit_statement(FakeUnitOfWork(tables), organisation_id=organisation_id, now=NOW)
    assert statement.balances[0].available_minor == 0  # never negative
    [grant_] = statement.grants
    assert (grant_.consumed_minor, grant_.clawed_back_minor, grant_.remaining_minor) == (TOTAL, 150000 - TOTAL, 0)
    # Redelivered: no second claw-back, no second review.
    assert await claw_back(tables, top_up.invoice.id, [refund("rfnd_all", 150000)]) == []
    assert len([c for c in tables.consumptions.values() if c.kind is LedgerKind.CLAWBACK]) == 1
    # A second refund once nothing is left takes nothing (recorded once, as 0) and reports what was spent.
    [later] = await claw_back(tables, top_up.invoice.id, [refund("rfnd_late", 1000)])
    assert (later.event_id, later.amount_minor) == ("evt_rfnd_late", 1000)
    assert (await grant_of(tables, top_up.grant.id)).remaining_minor == 0


async def test_a_refund_of_an_ordinary_invoice_takes_no_credit(tables):
    organisation_id = await customer(tables)
    close = close_for(tables, FakeUsage("200"))
    granted, _ = await grant(tables, organisation_id, 50000)
    (october,) = await close_periods(close, tables, organisation_id, "2026-10")
    before = dict(tables.consumptions)
    assert await claw_back(tables, october.id, [refund("rfnd_1", 10000)]) == []
    assert tables.consumptions == before
    assert (await grant_of(tables, granted.id)).clawed_back_minor == 0


def credit_view(invoice):
    return ([(line.number, line.kind, line.credit_grant_id, line.description, line.amount_minor)
             for line in invoice.credit_lines], invoice.credits_minor, invoice.amount_due_minor)


async def test_the_projected_invoice_shows_the_credit_the_period_close_then_spends_and_spends_none(tables):
    """January 2027 so far (at NOW, 5 January) and January closed on 5 February, from the same usage: the same
    credit lines, by the same grants in the same order, and the same amount left to pay."""
    organisation_id = await customer(tables, subscribed_from="2027-01-01")
    small, _ = await grant(tables, organisation_id, 50000, priority=1)
    first, _ = await grant(tables, organisation_id, 30000, expires_at=NOW + timedelta(days=60))
    pending = await credits.top_up_credit(FakeUnitOfWork(tables), close_for(tables, FakeUsage()),
                                          organisation_id=organisation_id, amount_minor=90000, currency="INR", now=NOW)
    projected = (await close_for(tables, FakeUsage("200")).projected(organisation_id)).invoice
    # 1,298.00: 300.00 from the grant expiring first, 500.00 of the next priority; 498.00 left to pay. The unpaid
    # top-up's grant is not spent.
    assert credit_view(projected) == ([(3, LineKind.CREDIT, first.id, first.describe(), -30000),
                                       (4, LineKind.CREDIT, small.id, small.describe(), -50000)],
                                      80000, TOTAL - 80000)
    assert tables.consumptions == {} and pending.grant.status is GrantStatus.PENDING
    statement = await credits.credit_statement(FakeUnitOfWork(tables), organisation_id=organisation_id, now=NOW)
    assert statement.balances[0].available_minor == 80000

    february = datetime(2027, 2, 5, 6, 0, tzinfo=UTC)
    close = PeriodClose(lambda: FakeUnitOfWork(tables), FakeOutbox(), FakeUsage("200"), POLICY,
                        clock=lambda: february)
    (january,) = await close_periods(close, tables, organisation_id, "2027-01")
    assert january.total_minor == projected.total_minor == TOTAL
    assert credit_view(january) == credit_view(projected)
    assert sorted((row.grant_id, row.amount_minor) for row in tables.consumptions.values()) == sorted(
        [(first.id, 30000), (small.id, 50000)])


async def test_the_forecast_spends_the_same_balance_without_the_grants_expiring_before_the_period_ends(tables):
    organisation_id = await customer(tables, subscribed_from="2027-01-01")
    soon, _ = await grant(tables, organisation_id, 20000, expires_at=NOW + timedelta(days=3))
    later, _ = await grant(tables, organisation_id, 200000, priority=5)
    projected = await close_for(tables, FakeUsage("200", per_day="100")).projected(organisation_id,
                                                                                   with_forecast=True)
    assert [line.credit_grant_id for line in projected.invoice.credit_lines] == [soon.id, later.id]
    assert projected.invoice.amount_due_minor == 0
    forecast = projected.forecast.invoice
    assert [line.credit_grant_id for line in forecast.credit_lines] == [later.id]
    assert forecast.credits_minor == 200000 and forecast.amount_due_minor == forecast.total_minor - 200000
    assert tables.consumptions == {}
