"""Closing billing periods: price each organisation's period, validate, store the draft, issue it with the next
number of its series, and announce it through the outbox.

After a period ends its invoice stays a draft for the grace period (``InvoicingSettings.grace_period_hours``):
each run in that time prices the draft again, so late events land on it; the first run after the grace period
prices it a last time and issues it. Events later than that are billed on a later invoice as usage adjustment
lines (``service/late_usage.py``): never lost, never billed twice.

Organisations go in batches: one read transaction, one call to metering for the batch's usage, one transaction
storing the drafts and one issuing them. Each (organisation, period) gets at most one live invoice, however many
runs close it and however they interleave: the drafts' unique index decides who stores, the drafts' row locks
decide who issues, and the number series row hands out numbers in the issuing transaction (no gaps, no reuse).

Prepaid credit is spent in that same transaction, after coupons and tax: the organisations' grants are locked and
read as they are under the lock, each draft gets a credit line per grant it spends, and the consumption is recorded
once per (grant, invoice) with the stored drafts (a draft not stored consumes nothing). A voided invoice's
consumption is released (``invoices.void_invoice``), so its reissue spends the credit again.

A coupon redemption is used for a period in the transaction that stores the invoice carrying its discount, once
per (redemption, period): a re-run finds the invoice and prices nothing, and a reissue of the period gets the
discount again without using another period. Invoices are priced outside that transaction, so it locks the
redemptions the drafts carry and checks each still applies (a run of another period may have used the last
period meanwhile, or an operator removed it); a draft that no longer holds is not stored and its organisation
is reported as failed, to be priced again by the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from billing_runtime.errors import FailedPrecondition, NotFound
from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.invoicing.adapters import messages
from services.invoicing.adapters.invoice_json import round_trip, to_document
from services.invoicing.domain.billing_period import zone_of
from services.invoicing.domain.coupon import applies_in
from services.invoicing.domain.credit import GrantSource, apply_credits, grant_terms
from services.invoicing.domain.invoice import ExchangeRate, Invoice, InvoiceStatus, LineKind
from services.invoicing.domain.invoice_builder import MetricUsage, build_invoice
from services.invoicing.domain.invoice_checks import check_recomputation, validate_invoice
from services.invoicing.domain.invoice_number import financial_year, format_invoice_number
from services.invoicing.domain.invoice_run import RunProgress
from services.invoicing.domain.organisation import Organisation
from services.invoicing.domain.plan import PlanVersion
from services.invoicing.domain.price_override import PriceOverride
from services.invoicing.domain.subscription import Subscription
from services.invoicing.domain.usage_forecast import DEFAULT_WINDOW_DAYS, Forecast, forecast_invoice, observation
from services.invoicing.service import einvoicing
from services.invoicing.service.billing_inputs import (
    PlannedInvoice,
    Supplier,
    UsageSource,
    billing_input,
    billing_period,
    describe,
    plan_segments,
    planned_invoice,
    read_usage,
)
from services.invoicing.service.credits import add_grant
from services.invoicing.service.einvoicing import DISABLED, EinvoicePolicy
from services.invoicing.service.late_usage import (
    LatePricing,
    basis,
    horizon,
    price_late_usage,
    with_late_usage,
)
from services.invoicing.service.ports import EventOutbox, InvoicingTransaction
from services.invoicing.service.subscriptions import as_if_changed

# Ingest's default past window for an event's timestamp: events of a period may arrive this long after it ends.
DEFAULT_LATE_WINDOW = timedelta(days=35)

log = get_logger(__name__)


@dataclass(frozen=True)
class IssuingPolicy:
    """How invoices are issued: by whom, under which number series, and when they fall due."""

    supplier: Supplier
    series: str
    payment_terms_days: int
    time_zone: str  # issue dates are days here (Asia/Kolkata for an Indian supplier)


@dataclass(frozen=True)
class ProjectedInvoice:
    """The current period so far, priced; with the forecast of its end when asked for."""

    invoice: Invoice
    forecast: Forecast | None = None


class PeriodClose:
    """Prices and issues invoices for periods; shared by invoice runs, reissues and projected invoices."""

    def __init__(
        self,
        uow: Callable[[], InvoicingTransaction],
        outbox: EventOutbox,
        usage: UsageSource,
        policy: IssuingPolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        forecast_window_days: int = DEFAULT_WINDOW_DAYS,
        grace: timedelta = timedelta(0),
        late_window: timedelta = DEFAULT_LATE_WINDOW,
        einvoicing: EinvoicePolicy = DISABLED,
    ) -> None:
        self._uow = uow
        self._einvoicing = einvoicing
        self._outbox = outbox
        self._usage = usage
        self._policy = policy
        self._clock = clock
        self._forecast_window_days = forecast_window_days
        self._grace = grace
        self._late_window = late_window

    async def close_batch(
        self,
        organisations: Sequence[Organisation],
        period_key: str,
        *,
        run_id: str = "",
        replaces: Mapping[str, str] | None = None,
    ) -> RunProgress:
        """Close ``period_key`` for these organisations; returns what happened to each, as counts.

        ``replaces`` (organisation id -> voided invoice id) reissues: those organisations are invoiced again even
        though their period has a (voided) invoice."""
        now = self._clock()
        progress = RunProgress(organisations_done=len(organisations))
        ids = [organisation.id for organisation in organisations]
        async with self._uow() as uow:
            subscriptions = await uow.subscriptions.for_organisations(ids)
            existing = await uow.invoices.period_invoices(ids, period_key)
            versions = await uow.catalog.versions(
                phase.plan_version_id for subs in subscriptions.values() for s in subs for phase in s.phases
            )
            rates = await uow.exchange_rates.all_rates()
            coupons = await uow.coupons.redemptions_of(ids)
            price_overrides = await uow.price_overrides.for_organisations(ids)
        planned: list[PlannedInvoice] = []
        waiting_drafts: list[str] = []  # stored by a run that stopped before issuing them, with nothing to price
        for organisation in organisations:
            draft = ""
            if replaces is None:
                rows = existing.get(organisation.id, [])
                draft = next((row.id for row in rows if row.status == InvoiceStatus.DRAFT.value), "")
                if rows and not draft:
                    progress.already_invoiced += 1  # issued, paid, or voided (reissue is explicit)
                    continue
            org_subscriptions = subscriptions.get(organisation.id, [])
            try:
                period = billing_period(organisation, org_subscriptions, period_key=period_key)
            except Exception as error:  # noqa: BLE001 - one organisation's fault must not stop the run
                progress.fail(organisation.id, describe(error))
                continue
            org_overrides = price_overrides.get(organisation.id, ())
            segments = plan_segments(org_subscriptions, period, versions, org_overrides)
            if not segments:
                if draft:
                    waiting_drafts.append(draft)
                else:
                    progress.no_subscription += 1
            elif period.end > now:
                progress.not_due += 1
            else:
                # A draft is priced again: late events of its grace period land on it.
                org_coupons = coupons.get(organisation.id, ())
                plan = planned_invoice(organisation, period, org_subscriptions, versions, segments, org_coupons)
                planned.append(replace(plan, draft_id=draft))
        late = await self._late_usage(planned, subscriptions, versions, price_overrides, rates, progress)
        planned = [with_late_usage(plan, late) for plan in planned if plan.organisation.id not in late.failures]
        documents: dict[str, dict] = {}
        drafts = self._price(
            planned, await read_usage(planned, self._usage), rates, replaces or {}, progress, documents
        )
        repriced = {plan.draft_id for plan in planned if plan.draft_id}
        async with self._uow() as uow:
            drafts = await self._coupons_still_apply(uow, drafts, progress)
            drafts = await self._late_usage_still_holds(uow, drafts, planned, late, progress)
            spent_at = self._clock()
            # A draft priced again gives back the credit its last pricing spent, then spends afresh.
            await uow.invoices.lock(sorted(repriced))
            await uow.credits.forget_drafts(sorted(repriced))
            drafts = await self._spend_credits(uow, drafts, spent_at, progress, documents)
            stored = await uow.invoices.insert_drafts([d for d in drafts if d.id not in repriced], run_id, documents)
            stored |= await uow.invoices.update_drafts([d for d in drafts if d.id in repriced], documents)
            await uow.coupons.record_uses([
                (redemption_id, draft.period_key, draft.id)
                for draft in drafts if draft.id in stored for redemption_id in sorted(draft.coupon_redemption_ids)
            ])
            await uow.credits.record_consumptions([
                (line.credit_grant_id, draft.id, -line.amount_minor)
                for draft in drafts if draft.id in stored for line in draft.credit_lines
            ], spent_at)
        # In its grace period a draft stays a draft: the run counts it not due, and a later run prices it again.
        in_grace = set() if replaces is not None else {
            plan.organisation.id for plan in planned if now < plan.period.end + self._grace
        }
        kept = [draft for draft in drafts if draft.id in stored]
        progress.not_due += sum(1 for draft in kept if draft.organisation_id in in_grace)
        # What was just stored need not be read back to be issued: the drafts in hand, with their stored times.
        candidates: list[str | Invoice] = [
            replace(draft, created_at=stored[draft.id]) for draft in kept if draft.organisation_id not in in_grace
        ]
        candidates += waiting_drafts
        issued = await self.issue(candidates)
        progress.invoiced += len(issued)
        # Lost a race with another run: it stored or issued these first.
        progress.already_invoiced += (len(drafts) - len(stored)) + (len(candidates) - len(issued))
        return progress

    async def _late_usage(
        self,
        planned: Sequence[PlannedInvoice],
        subscriptions: Mapping[str, Sequence[Subscription]],
        versions: Mapping[str, PlanVersion],
        price_overrides: Mapping[str, Sequence[PriceOverride]],
        rates: Sequence[ExchangeRate],
        progress: RunProgress,
    ) -> LatePricing:
        """Earlier periods' late usage for the invoices about to be priced; organisations whose earlier periods
        cannot be priced again are counted failed."""
        late = await self._price_late_usage(planned, subscriptions, versions, price_overrides, rates)
        for organisation_id, message in late.failures.items():
            log.warning("invoice not computed", organisation_id=organisation_id, error=message)
            progress.fail(organisation_id, message)
        return late

    async def _price_late_usage(
        self,
        planned: Sequence[PlannedInvoice],
        subscriptions: Mapping[str, Sequence[Subscription]],
        versions: Mapping[str, PlanVersion],
        price_overrides: Mapping[str, Sequence[PriceOverride]],
        rates: Sequence[ExchangeRate],
    ) -> LatePricing:
        """Earlier periods' late usage for ``planned`` (the period close's, and the projected invoice's): their
        live invoices of periods ending within the late window read in one transaction, then one usage call to
        metering per earlier period with an issued invoice (``service/late_usage.py``)."""
        start = horizon(planned, self._late_window)
        if start is None:
            return LatePricing({}, {}, {}, {})
        async with self._uow() as uow:
            recent = await uow.invoices.recent_live([plan.organisation.id for plan in planned], start)
        return await price_late_usage(planned, recent, subscriptions, versions, price_overrides, self._usage,
                                      self._policy.supplier, rates, self._late_window)

    async def _late_usage_still_holds(
        self,
        uow: InvoicingTransaction,
        drafts: list[Invoice],
        planned: Sequence[PlannedInvoice],
        late: LatePricing,
        progress: RunProgress,
    ) -> list[Invoice]:
        """The drafts whose late usage was priced against the adjustments still billed, with the earlier invoices
        locked until the drafts are stored; the others are counted failed (the next run prices them again)."""
        plans = {plan.organisation.id: plan for plan in planned if plan.organisation.id in late.bases}
        checked = [draft for draft in drafts if draft.organisation_id in plans]
        if not checked:
            return drafts
        await uow.invoices.lock([i for draft in checked for i in late.billed[draft.organisation_id]])
        start = horizon([plans[draft.organisation_id] for draft in checked], self._late_window)
        assert start is not None
        recent = await uow.invoices.recent_live([draft.organisation_id for draft in checked], start)
        kept = []
        for draft in drafts:
            plan = plans.get(draft.organisation_id)
            if plan is not None and basis(recent.get(plan.organisation.id, ()), plan, self._late_window) != (
                late.bases[plan.organisation.id]
            ):
                log.warning("invoice not stored: late usage billed elsewhere while it was priced",
                            organisation_id=draft.organisation_id)
                progress.fail(draft.organisation_id, "another invoice billed late usage of an earlier period while "
                                                     "this one was priced; run the period again")
                continue
            kept.append(draft)
        return kept
    @property
    def supplier(self) -> Supplier:
        return self._policy.supplier

    @staticmethod
    async def _spend_credits(
        uow: InvoicingTransaction, drafts: list[Invoice], at: datetime, progress: RunProgress,
        documents: dict[str, dict],
    ) -> list[Invoice]:
        """The drafts with the organisations' prepaid credit spent on them (after tax). The grants are locked
        until the drafts are stored and read as they are now, under the lock: two runs (of one period or of two)
        never spend the same balance, and what a run spends is recorded in this same transaction."""
        grants = await uow.credits.of_organisations(sorted({d.organisation_id for d in drafts}), for_update=True)
        if not any(grants.values()):
            return drafts
        credited = []
        for draft in drafts:
            own = grants.get(draft.organisation_id, [])
            invoice = apply_credits(draft, own, at) if own else draft
            try:
                validate_invoice(invoice)
            except Exception as error:  # noqa: BLE001 - counted and reported with the run
                progress.fail(draft.organisation_id, describe(error))
                continue
            if invoice.credit_lines:
                documents[invoice.id] = to_document(invoice)
                # Another draft of the same organisation in this batch (none today) would see what is left.
                spent = {line.credit_grant_id: -line.amount_minor for line in invoice.credit_lines}
                grants[draft.organisation_id] = [
                    replace(g, consumed_minor=g.consumed_minor + spent.get(g.id, 0)) for g in own
                ]
            credited.append(invoice)
        return credited

    @staticmethod
    async def _coupons_still_apply(
        uow: InvoicingTransaction, drafts: list[Invoice], progress: RunProgress
    ) -> list[Invoice]:
        """The drafts whose coupon discounts still apply, with the redemptions locked until the drafts are stored;
        the others are counted as failed (the next run prices them afresh)."""
        redemptions = await uow.coupons.lock_redemptions(
            redemption_id for draft in drafts for redemption_id in draft.coupon_redemption_ids
        )
        kept = []
        for draft in drafts:
            stale = sorted(
                redemption_id for redemption_id in draft.coupon_redemption_ids
                if redemption_id not in redemptions
                or not applies_in(redemptions[redemption_id], draft.period_key, draft.currency)
            )
            if stale:
                log.warning("invoice not stored: coupon changed while it was priced",
                            organisation_id=draft.organisation_id, redemptions=stale)
                progress.fail(draft.organisation_id, f"coupon redemption {', '.join(stale)} was used up or removed "
                                                     "while the invoice was priced; run the period again")
                continue
            kept.append(draft)
        return kept

    def _price(
        self,
        planned: Sequence[PlannedInvoice],
        usages: Sequence[Mapping[tuple[int, str], MetricUsage]],
        rates: Sequence[ExchangeRate],
        replaces: Mapping[str, str],
        progress: RunProgress,
        documents: dict[str, dict],
    ) -> list[Invoice]:
        """Build, validate and recompute each invoice; an organisation that fails is counted, not stored. The
        stored form of each draft is put in ``documents`` (checked here, stored by the caller)."""
        drafts = []
        for plan, usage in zip(planned, usages, strict=True):
            organisation_id = plan.organisation.id
            try:
                billing = billing_input(plan, usage, self._policy.supplier, rates)
                invoice = build_invoice(plan.draft_id or new_id("inv"), billing)
                invoice = replace(invoice, replaces_invoice_id=replaces.get(organisation_id, ""))
                validate_invoice(invoice)
                # From scratch again, and through the stored form: the same amounts, or nothing is stored.
                document = to_document(invoice)
                check_recomputation(round_trip(invoice, document), build_invoice(invoice.id, billing))
            except Exception as error:  # noqa: BLE001 - counted and reported with the run
                log.warning("invoice not computed", organisation_id=organisation_id, error=describe(error))
                progress.fail(organisation_id, describe(error))
                continue
            drafts.append(invoice)
            documents[invoice.id] = document
        return drafts

    async def issue(self, drafts: Sequence[str | Invoice]) -> list[Invoice]:
        """Issue those of ``drafts`` that are still drafts: numbers, dates, ``invoice.issued``. Each is a draft's
        id (read from the table) or a draft in hand exactly as stored, creation time included (not read back)."""
        if not drafts:
            return []
        held = {draft.id: draft for draft in drafts if isinstance(draft, Invoice)}
        draft_ids = [draft if isinstance(draft, str) else draft.id for draft in drafts]
        now = self._clock()
        policy = self._policy
        issue_date = now.astimezone(zone_of(policy.time_zone)).date()
        due_date = issue_date + timedelta(days=policy.payment_terms_days)
        fy = financial_year(issue_date)
        async with self._uow() as uow:
            repository = uow.invoices
            locked = await repository.lock_draft_ids(draft_ids)
            if not locked:
                return []
            loaded = {draft.id: draft for draft in await repository.get_many([i for i in locked if i not in held])}
            in_order = [held[i] if i in held else loaded[i] for i in locked]
            sequences = await repository.take_numbers(policy.series, fy, len(in_order))
            issued = [
                replace(
                    draft,
                    status=InvoiceStatus.ISSUED,
                    number=format_invoice_number(policy.series, fy, sequence),
                    issue_date=issue_date,
                    due_date=due_date,
                )
                for draft, sequence in zip(in_order, sequences, strict=True)
            ]
            await repository.mark_issued([(i.id, i.number, issue_date, due_date) for i in issued], now)
            for invoice in issued:
                if invoice.total_minor < 0:
                    await self._owe_back(uow, invoice, now)
            # E-invoiced ones are queued for the IRP in this same transaction; the registrar sends them.
            await einvoicing.queue(uow, self._einvoicing, issued, now)
            events = []
            for invoice in issued:
                event_id = new_id("evt")
                events.append((event_id, messages.invoice_issued(event_id, invoice)))
            await self._outbox.record_many(uow, messages.INVOICE_ISSUED, events)
        return issued

    @staticmethod
    async def _owe_back(uow: InvoicingTransaction, invoice: Invoice, now: datetime) -> None:
        """An invoice whose total is negative (a plan paid in advance, downgraded or cancelled mid-interval, or a
        gauge's late reading) owes the customer that much: as prepaid credit, spent on their next invoices, made
        in the transaction that issues it (once: keyed by the invoice). Voiding the invoice voids what is left."""
        terms = grant_terms(
            currency=invoice.currency, amount_minor=-invoice.total_minor, priority=0,
            source=GrantSource.INVOICE.value, expires_at=None, source_id=invoice.id,
            description=f"Credit from invoice {invoice.number}", organisation_currency=invoice.currency, now=now,
        )
        await add_grant(uow, invoice.organisation_id, terms, "", now)

    async def reissue(self, invoice_id: str) -> tuple[Invoice, bool]:
        """A new invoice, under a new number, for the period of a voided one, computed afresh. A second reissue
        of the same voided invoice returns the first (False)."""
        async with self._uow() as uow:
            repository = uow.invoices
            voided = await repository.get(invoice_id)
            if voided is None:
                raise NotFound(f"no invoice with id {invoice_id!r}")
            if voided.status is not InvoiceStatus.VOID:
                raise FailedPrecondition(
                    f"invoice {invoice_id} is {voided.status.value}; only a voided invoice can be reissued (void it "
                    "first, with a reason)"
                )
            earlier = await repository.reissue_of(invoice_id)
            organisation = await uow.organisations.get(voided.organisation_id)
            later = (await repository.recent_live([voided.organisation_id], voided.period_end)).get(
                voided.organisation_id, [])
        if earlier is not None:
            return earlier, False
        adjusting = sorted({
            invoice.number or invoice.id for invoice in later for line in invoice.lines
            if line.kind is LineKind.USAGE_ADJUSTMENT and line.adjusts_period_key == voided.period_key
        })
        if adjusting:
            # A reissue prices the period from all its usage, late events included: billed twice.
            raise FailedPrecondition(
                f"cannot reissue invoice {invoice_id}: late usage of period {voided.period_key} is already billed on "
                f"{', '.join(adjusting)}; void that first, or correct the period with a credit note"
            )
        assert organisation is not None
        progress = await self.close_batch([organisation], voided.period_key, replaces={organisation.id: invoice_id})
        if progress.failures:
            raise FailedPrecondition(f"cannot reissue invoice {invoice_id}: {progress.failures[0]['message']}")
        async with self._uow() as uow:
            reissued = await uow.invoices.reissue_of(invoice_id)
        if reissued is None:
            raise FailedPrecondition(
                f"cannot reissue invoice {invoice_id}: period {voided.period_key} already has a live invoice"
            )
        return reissued, progress.invoiced > 0

    async def projected(self, organisation_id: str, *, with_forecast: bool = False,
                        plan_change: Mapping[str, str] | None = None) -> ProjectedInvoice:
        """The current period's invoice as it stands: usage so far, priced (base fees for the whole period).
        Not stored, not numbered, and nothing is spent or billed. ``with_forecast`` adds the invoice at the
        period's end if the trend so far holds (``domain/usage_forecast.py``), for which metering is asked each
        extrapolated metric's usage per local day. ``plan_change`` (the arguments of
        ``subscriptions.change_plan`` but the unit of work) prices the period as if that change had been made:
        its proration, before it is made.

        It carries what the period close would add if it ran now: the usage adjustment lines of earlier periods'
        late usage (the close's own reading: one usage call to metering per earlier period with an issued
        invoice within the late window, none when there is none), and the prepaid credit lines the
        organisation's grants would pay (``apply_credits`` on a read of the grants, without the close's lock or
        any consumption). The forecast carries the same adjustments, and the credit the same balance would pay
        of its total, leaving out grants that expire before the period ends: both are spent from the balance as
        it is now, each on its own (the projection spends nothing, so one does not reduce the other)."""
        now = self._clock()
        async with self._uow() as uow:
            organisation = await uow.organisations.get(organisation_id)
            if organisation is None:
                raise NotFound(f"no organisation with id {organisation_id!r}")
            subscriptions = (
                await uow.subscriptions.for_organisations([organisation_id])
            ).get(organisation_id, [])
            if plan_change is not None:
                subscriptions = await as_if_changed(uow, list(subscriptions), organisation.details.timezone,
                                                    now=now, **plan_change)
            versions = await uow.catalog.versions(
                phase.plan_version_id for s in subscriptions for phase in s.phases
            )
            rates = await uow.exchange_rates.all_rates()
            coupons = (await uow.coupons.redemptions_of([organisation_id])).get(organisation_id, [])
            price_overrides = (await uow.price_overrides.for_organisations([organisation_id])).get(organisation_id, ())
            grants = (await uow.credits.of_organisations([organisation_id])).get(organisation_id, [])
        period = billing_period(organisation, subscriptions, at=now)
        segments = plan_segments(subscriptions, period, versions, price_overrides)
        if not segments:
            raise FailedPrecondition(
                f"organisation {organisation_id} has no subscription in its current period ({period.key}); subscribe "
                "it to a plan first"
            )
        plan = planned_invoice(organisation, period, subscriptions, versions, segments, coupons)
        late = await self._price_late_usage([plan], {organisation_id: subscriptions}, versions,
                                            {organisation_id: price_overrides}, rates)
        plan = with_late_usage(plan, late)
        (usage,) = await read_usage([plan], self._usage, until=now)
        billing = billing_input(plan, usage, self._policy.supplier, rates)
        invoice = apply_credits(build_invoice("projected", billing), grants, now)
        if organisation_id in late.failures:
            # The close would fail this organisation until it is fixed: say so rather than hide it.
            log.warning("projected invoice without late usage", organisation_id=organisation_id,
                        error=late.failures[organisation_id])
            invoice = replace(invoice, notes=(*invoice.notes, f"Not included: {late.failures[organisation_id]}; "
                                                              "the period cannot be closed until it is fixed."))
        validate_invoice(invoice)
        if not with_forecast:
            return ProjectedInvoice(invoice)
        needed = observation(billing, now)
        daily = {
            code: await self._usage.daily_usage(organisation_id, code, needed.start, needed.end, period.time_zone)
            for code in needed.metric_codes
        }
        forecast = forecast_invoice("forecast", billing, daily, now, self._forecast_window_days)
        forecast = replace(forecast, invoice=apply_credits(forecast.invoice, grants, max(now, period.end)))
        validate_invoice(forecast.invoice)
        return ProjectedInvoice(invoice, forecast)
