"""Closing the months of an annual plan through the period close: the year's fee lands on the first month's
invoice (in advance), a mid-year upgrade credits and charges the rest of the year on the month it takes effect,
and usage is invoiced every month."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from services.invoicing.domain.credit import GrantSource, GrantStatus
from services.invoicing.domain.invoice import LineKind
from services.invoicing.service import catalog, invoices, subscriptions
from services.invoicing.service.period_close import PeriodClose
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables
from tests.unit.services.invoicing.service.test_period_close import POLICY, FakeUsage, organisation

NOW = datetime(2027, 4, 5, 6, 0, tzinfo=UTC)  # March 2027 has ended
CALLS = [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.5"}}]


def annual(base_fee: str) -> dict:
    return {"currency": "INR", "base_fee": base_fee, "charges": CALLS, "billing_interval": "year",
            "base_fee_timing": "in_advance", "annual_discount_percent": "10"}


async def test_an_annual_plan_upgraded_mid_year_is_invoiced_month_by_month() -> None:
    tables = Tables()
    uow = lambda: FakeUnitOfWork(tables)  # noqa: E731
    await catalog.create_plan(uow(), code="standard", name="Growth", terms=annual("10000"))
    await catalog.create_plan(uow(), code="scale", name="Scale", terms=annual("20000"))
    organisation_id = await organisation(tables, "Acme", subscribed_from=None)
    held = tables.organisations[organisation_id]
    held.value = replace(held.value, created_at=datetime(2026, 3, 1, tzinfo=UTC))  # a customer since March
    await subscriptions.create_subscription(uow(), FakeOutbox(), organisation_id=organisation_id,
                                            plan_code="standard", start_date="2026-04-01", now=NOW)
    [subscription_id] = [s.value.id for s in tables.subscriptions.values()]
    await subscriptions.change_plan(uow(), FakeOutbox(), subscription_id=subscription_id, plan_code="scale",
                                    effective_date="2026-10-01", now=datetime(2026, 9, 20, tzinfo=UTC))
    close = PeriodClose(uow, FakeOutbox(), FakeUsage("200"), POLICY, clock=lambda: NOW)
    acme = tables.organisations[organisation_id].value
    months = ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12",
              "2027-01", "2027-02", "2027-03"]
    for key in months:
        progress = await close.close_batch([acme], key)
        assert (progress.invoiced, progress.failed) == (1, 0), (key, progress.failures)
    by_month = {i.period_key: i for i in tables.invoices.values() if i.organisation_id == organisation_id}
    base_fees = {key: [line.amount_minor for line in by_month[key].lines if line.kind is LineKind.BASE_FEE]
                 for key in months}
    assert base_fees["2026-04"] == [108_000_00]
    assert base_fees["2026-10"] == [-53_852_05, 107_704_10]
    assert all(base_fees[key] == [] for key in months if key not in ("2026-04", "2026-10"))
    # Usage every month, in arrears: 200 calls at 0.50.
    assert all([line.amount_minor for line in by_month[key].lines if line.kind is LineKind.USAGE] == [100_00]
               for key in months)


async def test_a_downgrade_mid_year_owes_the_customer_credit_spent_on_the_next_invoices() -> None:
    tables = Tables()
    uow = lambda: FakeUnitOfWork(tables)  # noqa: E731
    await catalog.create_plan(uow(), code="scale", name="Scale", terms=annual("20000"))
    await catalog.create_plan(uow(), code="standard", name="Growth", terms=annual("10000"))
    organisation_id = await organisation(tables, "Acme", subscribed_from=None)
    held = tables.organisations[organisation_id]
    held.value = replace(held.value, created_at=datetime(2026, 3, 1, tzinfo=UTC))
    await subscriptions.create_subscription(uow(), FakeOutbox(), organisation_id=organisation_id,
                                            plan_code="scale", start_date="2026-04-01", now=NOW)
    [subscription_id] = [s.value.id for s in tables.subscriptions.values()]
    await subscriptions.change_plan(uow(), FakeOutbox(), subscription_id=subscription_id, plan_code="standard",
                                    effective_date="2026-10-01", now=datetime(2026, 9, 20, tzinfo=UTC))
    close = PeriodClose(uow, FakeOutbox(), FakeUsage("200"), POLICY, clock=lambda: NOW)
    acme = tables.organisations[organisation_id].value
    for key in ("2026-09", "2026-10", "2026-11"):
        assert (await close.close_batch([acme], key)).failed == 0
    by_month = {i.period_key: i for i in tables.invoices.values() if i.organisation_id == organisation_id}
    october, november = by_month["2026-10"], by_month["2026-11"]
    # Half a year of Scale credited (-1,07,704.10), half a year of Growth charged (53,852.05), 200 calls (100.00):
    # the invoice owes the customer, and owes nothing.
    assert october.total_minor < 0 and october.amount_due_minor == 0
    (grant,) = [g.value for g in tables.grants.values()]
    assert (grant.source, grant.source_id, grant.amount_minor) == (GrantSource.INVOICE, october.id,
                                                                    -october.total_minor)
    # November's usage (100.00 + GST) is paid from that credit.
    assert november.credits_minor == november.total_minor and november.amount_due_minor == 0
    # Voiding October withdraws what is left of its credit; what November spent stays spent.
    await invoices.void_invoice(uow(), FakeOutbox(), invoice_id=october.id, reason="wrong plan", now=NOW)
    assert tables.grants[grant.id].value.status is GrantStatus.VOIDED
