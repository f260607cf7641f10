"""Coupon use cases against in-memory repositories: creating (idempotent by key, one per code), applying to an
organisation with every refusal, removing, and the period close using a redemption once per billing period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from billing_runtime.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound
from services.invoicing.domain.coupon import RedemptionState
from services.invoicing.domain.invoice import InvoiceStatus, LineKind
from services.invoicing.service import catalog, coupons, invoices, subscriptions
from services.invoicing.service.period_close import PeriodClose
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables
from tests.unit.services.invoicing.service.test_period_close import (
    NOW,
    TERMS,
    FakeUsage,
    close_for,
    organisation,
)

LAUNCH = {"code": "launch20", "name": "Launch offer", "percent_off": "20", "duration": "repeating",
          "duration_periods": 2}


@pytest.fixture
async def tables() -> Tables:
    tables = Tables()
    await catalog.create_plan(FakeUnitOfWork(tables), code="standard", name="Standard", terms=TERMS)
    await catalog.create_plan(FakeUnitOfWork(tables), code="enterprise", name="Enterprise", terms=TERMS)
    return tables


async def customer(tables: Tables, name: str = "Acme", subscribed_from: str | None = "2026-10-01") -> str:
    """An organisation on Standard since 1 October 2026 (created in September)."""
    organisation_id = await organisation(tables, name, subscribed_from=None)
    stored = tables.organisations[organisation_id]
    stored.value = replace(stored.value, created_at=datetime(2026, 9, 1, tzinfo=UTC))
    if subscribed_from:
        await subscriptions.create_subscription(FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id,
                                                plan_code="standard", start_date=subscribed_from, now=NOW)
    return organisation_id


async def apply(tables: Tables, organisation_id: str, code: str = "LAUNCH20", **options):
    return await coupons.apply_coupon(FakeUnitOfWork(tables), organisation_id=organisation_id, coupon_code=code,
                                      now=options.pop("now", NOW), **options)


async def test_creating_is_idempotent_by_key_and_a_code_is_taken_once(tables):
    first, created = await coupons.create_coupon(FakeUnitOfWork(tables), **LAUNCH, idempotency_key="k1")
    assert created and first.code == "LAUNCH20" and first.terms.periods == 2
    again, created_again = await coupons.create_coupon(FakeUnitOfWork(tables), **LAUNCH, idempotency_key="k1")
    assert (again.id, created_again) == (first.id, False)
    with pytest.raises(Conflict):
        await coupons.create_coupon(FakeUnitOfWork(tables), **(LAUNCH | {"percent_off": "25"}), idempotency_key="k1")
    with pytest.raises(AlreadyExists, match="a coupon with code 'LAUNCH20' exists") as error:
        await coupons.create_coupon(FakeUnitOfWork(tables), **(LAUNCH | {"code": "Launch20"}))
    assert error.value.field == "code"
    assert (await coupons.get_coupon(FakeUnitOfWork(tables), code="launch20")).id == first.id
    page, token = await coupons.list_coupons(FakeUnitOfWork(tables), 0, "")
    assert [c.id for c in page] == [first.id] and token == ""
    with pytest.raises(NotFound):
        await coupons.get_coupon(FakeUnitOfWork(tables), code="NOPE")
    with pytest.raises(InvalidArgument):
        await coupons.get_coupon(FakeUnitOfWork(tables))


async def test_applying_is_refused_with_a_clear_reason_and_changes_nothing(tables):
    organisation_id = await customer(tables)
    await coupons.create_coupon(FakeUnitOfWork(tables), **LAUNCH)
    await coupons.create_coupon(FakeUnitOfWork(tables), code="OLD", name="Old", percent_off="5", duration="once",
                                expires_at=NOW - timedelta(days=1))
    await coupons.create_coupon(FakeUnitOfWork(tables), code="USD10", name="Ten dollars", amount_off="10",
                                currency="USD", duration="once")
    await coupons.create_coupon(FakeUnitOfWork(tables), code="ENT", name="Enterprise only", percent_off="5",
                                duration="forever", plan_codes=["enterprise"])
    await coupons.create_coupon(FakeUnitOfWork(tables), code="ONE", name="Just one", percent_off="5",
                                duration="forever", max_redemptions=1)
    with pytest.raises(NotFound, match="no coupon with code 'NOPE'"):
        await apply(tables, organisation_id, "nope")
    with pytest.raises(NotFound):
        await apply(tables, "org_01KNOSUCHORGANISATION00000")
    for code, message in (("OLD", "expired"), ("USD10", "billed in INR"), ("ENT", "is on plan standard")):
        with pytest.raises(FailedPrecondition, match=message):
            await apply(tables, organisation_id, code)
    await apply(tables, organisation_id, "ONE")
    with pytest.raises(FailedPrecondition, match="redemption limit"):
        await apply(tables, await customer(tables, "Other"), "ONE")
    await apply(tables, organisation_id)
    with pytest.raises(AlreadyExists, match="already has coupon LAUNCH20"):
        await apply(tables, organisation_id)
    with pytest.raises(InvalidArgument) as error:
        await apply(tables, organisation_id, start_period_key="2026-13")
    assert error.value.field == "start_period_key"
    assert len(tables.redemptions) == 2


async def test_a_retry_with_the_same_key_returns_the_first_redemption_even_at_the_limit(tables):
    organisation_id = await customer(tables)
    await coupons.create_coupon(FakeUnitOfWork(tables), **(LAUNCH | {"max_redemptions": 1}))
    first, created = await apply(tables, organisation_id, "launch20", idempotency_key="apply-1")
    # By default from the organisation's current period: January 2027 in Kolkata.
    assert created and first.start_period_key == "2027-01" and first.state is RedemptionState.ACTIVE
    again, created_again = await apply(tables, organisation_id, idempotency_key="apply-1",
                                       now=NOW + timedelta(days=40))
    assert (again.id, created_again) == (first.id, False)
    with pytest.raises(Conflict):
        await apply(tables, organisation_id, idempotency_key="apply-1", start_period_key="2026-10")


async def test_removing_stops_it_and_lets_it_be_applied_again(tables):
    organisation_id = await customer(tables)
    await coupons.create_coupon(FakeUnitOfWork(tables), **LAUNCH)
    redemption, _ = await apply(tables, organisation_id)
    removed = await coupons.remove_coupon(FakeUnitOfWork(tables), organisation_id=organisation_id,
                                          redemption_id=redemption.id, now=NOW)
    assert removed.state is RedemptionState.REMOVED and removed.removed_at == NOW
    assert await coupons.remove_coupon(FakeUnitOfWork(tables), organisation_id=organisation_id,
                                       redemption_id=redemption.id, now=NOW + timedelta(days=1)) == removed
    with pytest.raises(NotFound):
        await coupons.remove_coupon(FakeUnitOfWork(tables), organisation_id=await customer(tables, "Other"),
                                    redemption_id=redemption.id)
    again, created = await apply(tables, organisation_id)
    assert created and again.id != redemption.id
    listed = await coupons.list_organisation_coupons(FakeUnitOfWork(tables), organisation_id)
    assert [r.id for r in listed] == [redemption.id, again.id]


async def test_archiving_stops_new_redemptions_only(tables):
    organisation_id = await customer(tables)
    coupon, _ = await coupons.create_coupon(FakeUnitOfWork(tables), **LAUNCH)
    await apply(tables, organisation_id)
    archived = await coupons.archive_coupon(FakeUnitOfWork(tables), coupon.id, now=NOW)
    assert archived.archived_at == NOW and archived.times_redeemed == 1
    assert (await coupons.archive_coupon(FakeUnitOfWork(tables), coupon.id)).archived_at == NOW
    with pytest.raises(FailedPrecondition, match="archived"):
        await apply(tables, await customer(tables, "Other"))
    [kept] = await coupons.list_organisation_coupons(FakeUnitOfWork(tables), organisation_id)
    assert kept.state is RedemptionState.ACTIVE


def discounts(invoice) -> list[int]:
    return [line.amount_minor for line in invoice.lines if line.kind is LineKind.DISCOUNT]


async def close_periods(close: PeriodClose, tables: Tables, organisation_id: str, *keys: str):
    found = []
    for key in keys:
        progress = await close.close_batch([tables.organisations[organisation_id].value], key)
        assert progress.failed == 0, progress.failures
        found.append(next(i for i in tables.invoices.values() if i.period_key == key
                          and i.status is not InvoiceStatus.VOID))
    return found


async def test_the_period_close_uses_a_redemption_once_per_period_for_its_duration(tables):
    organisation_id = await customer(tables)
    await coupons.create_coupon(FakeUnitOfWork(tables), **LAUNCH)
    redemption, _ = await apply(tables, organisation_id, start_period_key="2026-10")
    close = close_for(tables, FakeUsage("200"))
    october, november, december = await close_periods(close, tables, organisation_id, "2026-10", "2026-11", "2026-12")
    # 1,000.00 + 200 x 0.50 = 1,100.00; 20% = 220.00 for two periods, then nothing.
    assert discounts(october) == discounts(november) == [-22000] and discounts(december) == []
    assert october.subtotal_minor == 88000 and october.total_minor == 88000 + 2 * 7920
    assert tables.redemption_periods == {(redemption.id, "2026-10"): october.id,
                                         (redemption.id, "2026-11"): november.id}
    # Running a period again changes nothing and uses nothing.
    again = await close.close_batch([tables.organisations[organisation_id].value], "2026-11")
    assert again.already_invoiced == 1 and len(tables.redemption_periods) == 2
    # A reissue of a discounted period is discounted again, without using a third period.
    await invoices.void_invoice(FakeUnitOfWork(tables), FakeOutbox(), invoice_id=november.id, reason="typo", now=NOW)
    reissued, _ = await close.reissue(november.id)
    assert discounts(reissued) == [-22000] and len(tables.redemption_periods) == 2
    [listed] = await coupons.list_organisation_coupons(FakeUnitOfWork(tables), organisation_id)
    assert listed.state is RedemptionState.COMPLETED and listed.used_periods == {"2026-10", "2026-11"}


async def test_the_projected_invoice_shows_the_discount_and_uses_nothing(tables):
    organisation_id = await customer(tables)
    await coupons.create_coupon(FakeUnitOfWork(tables), **LAUNCH)
    await apply(tables, organisation_id)
    projected = (await close_for(tables, FakeUsage("200")).projected(organisation_id)).invoice
    assert projected.period_key == "2027-01" and discounts(projected) == [-22000]
    assert tables.redemption_periods == {} and tables.invoices == {}


async def test_a_redemption_used_up_while_an_invoice_was_priced_is_not_stored(tables, monkeypatch):
    organisation_id = await customer(tables)
    await coupons.create_coupon(FakeUnitOfWork(tables), **(LAUNCH | {"duration": "once", "duration_periods": 0}))
    redemption, _ = await apply(tables, organisation_id, start_period_key="2026-10")
    close = close_for(tables, FakeUsage("200"))
    real_price = PeriodClose._price

    def price_then_race(self, *args, **kwargs):
        priced = real_price(self, *args, **kwargs)
        # Another run of another period stored its invoice with the coupon meanwhile.
        tables.redemption_periods[(redemption.id, "2026-10")] = "inv_elsewhere"
        return priced

    monkeypatch.setattr(PeriodClose, "_price", price_then_race)
    progress = await close.close_batch([tables.organisations[organisation_id].value], "2026-11")
    assert (progress.invoiced, progress.failed) == (0, 1)
    assert "was used up or removed while the invoice was priced" in progress.failures[0]["message"]
    assert tables.invoices == {}
    monkeypatch.setattr(PeriodClose, "_price", real_price)
    [november] = await close_periods(close, tables, organisation_id, "2026-11")  # the next run prices it afresh
    assert discounts(november) == []
