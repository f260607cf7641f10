"""Pricing earlier periods' late usage for the invoices a run is about to store (``domain/late_usage.py``).

For each organisation the run prices, every earlier period with an issued invoice whose events ingest may still
accept (its end within the late window before this period starts) is priced again from metering's usage as it
is now: one usage call for the whole batch per earlier period, like the run's own. What that adds beyond its
invoice and the adjustments already on other live invoices goes on this one.

The adjustments are stored with the draft that carries them, in one transaction that first locks the earlier
invoices and checks that no other invoice billed their late usage meanwhile (a run of another period, or a
reissue); if one did, the draft is not stored and the organisation is priced again by the next run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.invoicing.domain.invoice import ExchangeRate, Invoice, InvoiceStatus, LineKind
from services.invoicing.domain.invoice_builder import build_invoice
from services.invoicing.domain.late_usage import LateUsage, late_usage
from services.invoicing.domain.plan import PlanVersion
from services.invoicing.domain.price_override import PriceOverride
from services.invoicing.domain.subscription import Subscription
from services.invoicing.service.billing_inputs import (
    PlannedInvoice,
    Supplier,
    UsageSource,
    billing_input,
    billing_period,
    describe,
    plan_segments,
    read_usage,
)

# What an organisation's late usage was priced against: per adjustment line already billed for an earlier
# period, (invoice id, line number, amount); compared again under lock before the draft is stored.
Basis = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class LatePricing:
    """The late usage each organisation's invoice carries, what it was priced against, and the organisations
    whose earlier periods could not be priced again (with why)."""

    late: Mapping[str, tuple[LateUsage, ...]]
    bases: Mapping[str, Basis]
    billed: Mapping[str, tuple[str, ...]]  # the earlier invoices, to lock before storing
    failures: Mapping[str, str]


def horizon(planned: Sequence[PlannedInvoice], window: timedelta) -> datetime | None:
    """The earliest period end a batch's late usage can concern; None for an empty batch."""
    starts = [plan.period.start for plan in planned]
    return min(starts) - window if starts else None


def _billed(recent: Sequence[Invoice], plan: PlannedInvoice, window: timedelta) -> list[Invoice]:
    """The issued invoices of periods before ``plan``'s whose events may still arrive."""
    return [
        invoice for invoice in recent
        if invoice.status is not InvoiceStatus.DRAFT and invoice.period_end <= plan.period.start
        and invoice.period_end + window > plan.period.start and invoice.id != plan.draft_id
    ]


def basis(recent: Sequence[Invoice], plan: PlannedInvoice, window: timedelta) -> Basis:
    """The adjustment lines already billed, on any live invoice but the one being priced, for the periods whose
    late usage ``plan``'s invoice may carry."""
    keys = {invoice.period_key for invoice in _billed(recent, plan, window)}
    return tuple(sorted(
        (invoice.id, line.number, line.amount_minor)
        for invoice in recent if invoice.id != plan.draft_id
        for line in invoice.lines
        if line.kind is LineKind.USAGE_ADJUSTMENT and line.adjusts_period_key in keys
    ))


async def price_late_usage(
    planned: Sequence[PlannedInvoice],
    recent: Mapping[str, Sequence[Invoice]],
    subscriptions: Mapping[str, Sequence[Subscription]],
    versions: Mapping[str, PlanVersion],
    price_overrides: Mapping[str, Sequence[PriceOverride]],
    usage: UsageSource,
    supplier: Supplier,
    rates: Sequence[ExchangeRate],
    window: timedelta,
) -> LatePricing:
    """Price the late usage of every earlier period of ``planned``'s organisations (``recent``: their live
    invoices of periods ending within the window), with the price overrides that were in force in it."""
    late: dict[str, list[LateUsage]] = {}
    bases: dict[str, Basis] = {}
    billed_ids: dict[str, tuple[str, ...]] = {}
    failures: dict[str, str] = {}
    again: list[tuple[PlannedInvoice, Invoice, str]] = []  # earlier period, its invoice, the draft priced
    for plan in planned:
        organisation = plan.organisation
        invoices = recent.get(organisation.id, ())
        billed = _billed(invoices, plan, window)
        if not billed:
            continue
        bases[organisation.id] = basis(invoices, plan, window)
        billed_ids[organisation.id] = tuple(invoice.id for invoice in billed)
        org_subscriptions = subscriptions.get(organisation.id, ())
        for invoice in billed:
            period = billing_period(organisation, org_subscriptions, period_key=invoice.period_key)
            segments = plan_segments(org_subscriptions, period, versions, price_overrides.get(organisation.id, ()))
            if segments:
                again.append((PlannedInvoice(organisation, period, segments), invoice, plan.draft_id))
    usages = await read_usage([plan for plan, _, _ in again], usage) if again else []
    for (plan, invoice, draft_id), found in zip(again, usages, strict=True):
        organisation_id = plan.organisation.id
        if organisation_id in failures:
            continue
        try:
            billing = billing_input(plan, found, supplier, rates)
            repriced = build_invoice("late", billing)
            adjustments = [line for other in recent.get(organisation_id, ())
                           if other.id not in (invoice.id, draft_id) for line in other.lines]
            names = {
                charge.metric_code: charge.display_name or charge.metric_code
                for _, version in plan.segments for charge in version.terms.charges
            }
            late.setdefault(organisation_id, []).extend(late_usage(invoice, repriced, adjustments, names))
        except Exception as error:  # noqa: BLE001 - reported as the organisation's failure by the run
            failures[organisation_id] = f"late usage of period {invoice.period_key}: {describe(error)}"
    return LatePricing(
        late={organisation_id: tuple(items) for organisation_id, items in late.items()
              if organisation_id not in failures},
        bases=bases, billed=billed_ids, failures=failures,
    )


def with_late_usage(plan: PlannedInvoice, pricing: LatePricing) -> PlannedInvoice:
    found = pricing.late.get(plan.organisation.id, ())
    return replace(plan, late_usage=found) if found else plan
