"""In-memory stand-ins for invoicing's ports (``services.invoicing.service.ports``), keeping the contracts of
the PostgreSQL repositories: idempotency keys (the same request returns the first object, another request is a
Conflict), consecutive version numbers, id-ordered pages, one stored rate per pair and effective time, and a
transaction that rolls back on an exception. ``tables.locks`` records what a use case locked, in order.
Invoices keep the stored rules too: one live (not void) invoice per organisation and period, one reissue per
voided invoice, and numbers from a per-(series, financial year) counter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from billing_runtime.errors import Conflict
from services.invoicing.domain.entitlements import EntitlementValue
from services.invoicing.domain.invoice import ExchangeRate, Invoice, InvoiceStatus
from services.invoicing.domain.invoice_run import RunProgress
from services.invoicing.domain.organisation import Organisation, OrganisationDetails
from services.invoicing.domain.plan import Plan, PlanVersion, PlanVersionTerms
from services.invoicing.domain.subscription import Subscription, SubscriptionStatus
from services.invoicing.service.ports import OrganisationPlans
from tests.unit.services.fake_transaction import FakeOutbox, FakeTransaction

if TYPE_CHECKING:
    from tests.unit.services.invoicing.service.fake_coupons import FakeCoupons
    from tests.unit.services.invoicing.service.fake_credit_notes import FakeCreditNotes, FakeSettlementRecords
    from tests.unit.services.invoicing.service.fake_credits import FakeCredits
    from tests.unit.services.invoicing.service.fake_price_overrides import FakePriceOverrides

__all__ = ["FakeOutbox", "FakeUnitOfWork", "Tables"]

STORED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Keyed:
    """A stored object with the idempotency key and request fingerprint it was made with."""

    value: Any
    idempotency_key: str = ""
    fingerprint: str = ""


@dataclass
class PlanRow:
    id: str
    code: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class RateRow:
    id: str
    base_currency: str
    quote_currency: str
    rate: Decimal
    source: str
    effective_at: datetime
    created_at: datetime


@dataclass
class InvoiceState:
    id: str
    status: str


@dataclass
class RunRow:
    id: str
    period_key: str
    organisation_id: str
    trigger: str
    state: str = "running"
    organisations_total: int = 0
    organisations_done: int = 0
    invoiced: int = 0
    already_invoiced: int = 0
    not_due: int = 0
    no_subscription: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    finished_at: datetime | None = None


COUNTERS = ("organisations_done", "invoiced", "already_invoiced", "not_due", "no_subscription", "failed")


@dataclass
class Tables:
    organisations: dict[str, Keyed] = field(default_factory=dict)
    plans: dict[str, Keyed] = field(default_factory=dict)  # of PlanRow
    versions: dict[str, Keyed] = field(default_factory=dict)  # of PlanVersion
    subscriptions: dict[str, Keyed] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    rates: dict[str, RateRow] = field(default_factory=dict)
    number_series: dict[tuple[str, str], int] = field(default_factory=dict)
    runs: dict[str, Keyed] = field(default_factory=dict)  # of RunRow
    outbox: list[tuple[str, str, Message]] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)
    overrides: dict[str, dict[str, EntitlementValue]] = field(default_factory=dict)  # by organisation, feature
    # What each PlansInForce.read cost, as queries the PostgreSQL repository makes: 2 a read.
    plan_reads: int = 0
    coupons: dict[str, Keyed] = field(default_factory=dict)  # of Coupon (times_redeemed counted when read)
    redemptions: dict[str, Keyed] = field(default_factory=dict)  # of fake_coupons.RedemptionRow
    redemption_periods: dict[tuple[str, str], str] = field(default_factory=dict)  # (redemption, period) -> invoice
    price_overrides: dict[str, Keyed] = field(default_factory=dict)  # of PriceOverride, by id
    grants: dict[str, Keyed] = field(default_factory=dict)  # of CreditGrant (consumed_minor counted when read)
    purchases: dict[str, str] = field(default_factory=dict)  # grant id -> its top-up invoice
    # fake_credits.ConsumptionRow by (grant, invoice, refund id): the credit ledger.
    consumptions: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    credit_notes: dict[str, Keyed] = field(default_factory=dict)  # of CreditNote
    settlements: dict[str, list[Any]] = field(default_factory=dict)  # invoice id -> [RecordedSettlement]
    status_changes: list[tuple[str, str, str, str]] = field(default_factory=list)  # (invoice, from, to, cause)


def insert_once(rows: dict[str, Keyed], row_id: str, value: Any, idempotency_key: str, fingerprint: str) -> tuple[
        Any, bool]:
    """``billing_runtime.idempotency.insert_once`` in memory."""
    if idempotency_key:
        for existing in rows.values():
            if existing.idempotency_key == idempotency_key:
                if existing.fingerprint != fingerprint:
                    raise Conflict("was already used for a different request", field="idempotency_key")
                return existing.value, False
    rows[row_id] = Keyed(value, idempotency_key, fingerprint)
    return value, True


def page(values: Iterable[Any], limit: int, after: str | None) -> list[Any]:
    return [value for value in sorted(values, key=lambda v: v.id) if after is None or value.id > after][:limit]


class FakeOrganisations:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def add(
        self, organisation_id: str, details: OrganisationDetails, idempotency_key: str = ""
    ) -> tuple[Organisation, bool]:
        organisation = Organisation(id=organisation_id, details=details, created_at=STORED_AT)
        return insert_once(self._tables.organisations, organisation_id, organisation, idempotency_key,
                           details.fingerprint())

    async def get(self, organisation_id: str, *, for_update: bool = False) -> Organisation | None:
        if for_update:
            self._tables.locks.append(f"organisation {organisation_id}")
        found = self._tables.organisations.get(organisation_id)
        return found.value if found else None

    async def list(self, *, limit: int, after: str | None) -> list[Organisation]:
        return page((k.value for k in self._tables.organisations.values()), limit, after)

    async def count(self) -> int:
        return len(self._tables.organisations)


class FakeCatalog:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def add_plan(
        self, plan_id: str, code: str, name: str, *, idempotency_key: str, fingerprint: str
    ) -> tuple[str, bool]:
        row, created = insert_once(self._tables.plans, plan_id, PlanRow(plan_id, code, name, STORED_AT),
                                   idempotency_key, fingerprint)
        if created:  # the unique index on code: the use case must have checked
            assert [p for p in self._tables.plans.values() if p.value.code == code] == [self._tables.plans[plan_id]]
        return row.id, created

    async def lock_code(self, code: str) -> None:
        self._tables.locks.append(f"plan code {code}")

    async def made_with_key(self, plan_id: str, idempotency_key: str) -> bool:
        found = self._tables.plans.get(plan_id)
        return bool(idempotency_key) and found is not None and found.idempotency_key == idempotency_key

    async def version_made_with_key(self, idempotency_key: str) -> bool:
        return bool(idempotency_key) and any(v.idempotency_key == idempotency_key
                                             for v in self._tables.versions.values())

    async def plan_id_for_code(self, code: str) -> str | None:
        return next((p.value.id for p in self._tables.plans.values() if p.value.code == code), None)

    async def lock_plan(self, plan_id: str) -> PlanRow | None:
        self._tables.locks.append(f"plan {plan_id}")
        found = self._tables.plans.get(plan_id)
        return found.value if found else None

    async def add_version(
        self, version_id: str, plan_id: str, name: str, terms: PlanVersionTerms, *, idempotency_key: str = "",
        fingerprint: str = "",
    ) -> tuple[PlanVersion, bool]:
        plan = self._tables.plans[plan_id].value
        number = max((v.value.version for v in self._tables.versions.values() if v.value.plan_id == plan_id),
                     default=0) + 1
        version = PlanVersion(id=version_id, plan_id=plan_id, plan_code=plan.code, plan_name=name, version=number,
                              terms=terms, created_at=STORED_AT)
        version, created = insert_once(self._tables.versions, version_id, version, idempotency_key, fingerprint)
        if name:
            plan.name = name
        return version, created

    async def get_version(self, version_id: str) -> PlanVersion | None:
        found = self._tables.versions.get(version_id)
        return found.value if found else None

    async def versions(self, version_ids: Iterable[str]) -> dict[str, PlanVersion]:
        return {i: self._tables.versions[i].value for i in set(version_ids) if i in self._tables.versions}

    async def versions_of(self, plan_id: str) -> list[PlanVersion]:
        found = [v.value for v in self._tables.versions.values() if v.value.plan_id == plan_id]
        return sorted(found, key=lambda v: v.version)

    async def latest_version(self, plan_id: str) -> PlanVersion | None:
        versions = await self.versions_of(plan_id)
        return versions[-1] if versions else None

    async def get_plan(self, plan_id: str) -> Plan | None:
        found = self._tables.plans.get(plan_id)
        if found is None:
            return None
        latest = await self.latest_version(plan_id)
        assert latest is not None, "a plan is always stored with its first version"
        row = found.value
        return Plan(id=row.id, code=row.code, name=row.name, latest_version=latest, created_at=row.created_at)

    async def list_plans(self, *, limit: int, after: str | None) -> list[Plan]:
        rows = page((p.value for p in self._tables.plans.values()), limit, after)
        return [plan for row in rows if (plan := await self.get_plan(row.id)) is not None]


class FakeSubscriptions:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def add(self, subscription: Subscription, *, idempotency_key: str, fingerprint: str) -> tuple[str, bool]:
        stored, created = insert_once(self._tables.subscriptions, subscription.id, subscription, idempotency_key,
                                      fingerprint)
        if created:  # subscriptions_one_active_key: the use case must have made way first
            active = [s for s in self._tables.subscriptions.values()
                      if s.value.organisation_id == subscription.organisation_id
                      and s.value.status is SubscriptionStatus.ACTIVE]
            assert len(active) <= 1, "a second active subscription for one organisation"
        return stored.id, created

    async def save(self, subscription: Subscription) -> None:
        self._tables.subscriptions[subscription.id].value = subscription

    async def made_with_key(self, idempotency_key: str) -> bool:
        return any(s.idempotency_key == idempotency_key for s in self._tables.subscriptions.values())

    async def active_for(self, organisation_id: str) -> str | None:
        return next((s.value.id for s in self._tables.subscriptions.values()
                     if s.value.organisation_id == organisation_id and s.value.status is SubscriptionStatus.ACTIVE),
                    None)

    async def get(self, subscription_id: str, *, for_update: bool = False) -> Subscription | None:
        if for_update:
            self._tables.locks.append(f"subscription {subscription_id}")
        found = self._tables.subscriptions.get(subscription_id)
        return found.value if found else None

    async def list(self, *, organisation_id: str, limit: int, after: str | None) -> list[Subscription]:
        chosen = (s.value for s in self._tables.subscriptions.values()
                  if not organisation_id or s.value.organisation_id == organisation_id)
        return page(chosen, limit, after)

    async def for_organisations(self, organisation_ids: Sequence[str]) -> dict[str, list[Subscription]]:
        found: dict[str, list[Subscription]] = {}
        for subscription in sorted((s.value for s in self._tables.subscriptions.values()), key=lambda s: s.id):
            if subscription.organisation_id in organisation_ids:
                found.setdefault(subscription.organisation_id, []).append(subscription)
        return found

    async def clear_past_due(self, organisation_id: str) -> None:
        for stored in self._tables.subscriptions.values():
            if stored.value.organisation_id == organisation_id:
                stored.value = replace(stored.value, past_due_at=None)


class FakeInvoices:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def get(self, invoice_id: str, *, for_update: bool = False) -> Invoice | None:
        if for_update:
            self._tables.locks.append(f"invoice {invoice_id}")
        return self._tables.invoices.get(invoice_id)

    async def list(
        self, *, organisation_id: str, status: str, period_key: str, limit: int, before: str | None
    ) -> list[Invoice]:
        chosen = [
            invoice for invoice in sorted(self._tables.invoices.values(), key=lambda i: i.id, reverse=True)
            if (not organisation_id or invoice.organisation_id == organisation_id)
            and (not status or invoice.status.value == status)
            and (not period_key or invoice.period_key == period_key)
            and (before is None or invoice.id < before)
        ]
        return chosen[:limit]

    async def void(self, invoice_id: str, reason: str, voided_at: datetime, *, from_status: InvoiceStatus) -> None:
        invoice = self._tables.invoices[invoice_id]
        self._tables.invoices[invoice_id] = replace(invoice, status=InvoiceStatus.VOID, void_reason=reason,
                                                    voided_at=voided_at)

    async def insert_drafts(
        self, drafts: Sequence[Invoice], run_id: str = "", documents: Mapping[str, dict[str, Any]] | None = None
    ) -> dict[str, datetime]:
        stored = {}
        for draft in drafts:
            live = [i for i in self._tables.invoices.values() if i.organisation_id == draft.organisation_id
                    and i.period_key == draft.period_key and i.status is not InvoiceStatus.VOID]
            reissued = draft.replaces_invoice_id and any(
                i.replaces_invoice_id == draft.replaces_invoice_id for i in self._tables.invoices.values())
            if live or reissued:
                continue
            self._tables.invoices[draft.id] = replace(draft, created_at=STORED_AT)
            stored[draft.id] = STORED_AT
        return stored

    async def period_invoices(self, organisation_ids: Sequence[str], period_key: str) -> dict[str, list[InvoiceState]]:
        found: dict[str, list[InvoiceState]] = {}
        for invoice in self._tables.invoices.values():
            if invoice.organisation_id in organisation_ids and invoice.period_key == period_key:
                found.setdefault(invoice.organisation_id, []).append(InvoiceState(invoice.id, invoice.status.value))
        return found

    async def update_drafts(
        self, drafts: Sequence[Invoice], documents: Mapping[str, dict[str, Any]] | None = None
    ) -> dict[str, datetime]:
        updated = {}
        for draft in sorted(drafts, key=lambda d: d.id):
            stored = self._tables.invoices.get(draft.id)
            if stored is None or stored.status is not InvoiceStatus.DRAFT:
                continue
            self._tables.locks.append(f"invoice {draft.id}")
            self._tables.invoices[draft.id] = replace(draft, created_at=stored.created_at)
            updated[draft.id] = stored.created_at or STORED_AT
        return updated

    async def recent_live(self, organisation_ids: Sequence[str], ending_after: datetime) -> dict[str, list[Invoice]]:
        found: dict[str, list[Invoice]] = {}
        for invoice in sorted(self._tables.invoices.values(), key=lambda i: (i.period_start, i.id)):
            if (invoice.organisation_id in organisation_ids and invoice.period_end > ending_after
                    and invoice.status is not InvoiceStatus.VOID):
                found.setdefault(invoice.organisation_id, []).append(invoice)
        return found

    async def lock(self, invoice_ids: Sequence[str]) -> None:
        self._tables.locks.extend(f"invoice {i}" for i in sorted(set(invoice_ids)))

    async def draft_period_keys(self) -> list[str]:
        return sorted({i.period_key for i in self._tables.invoices.values() if i.status is InvoiceStatus.DRAFT})

    async def lock_draft_ids(self, invoice_ids: Sequence[str]) -> list[str]:
        drafts = sorted(i for i in invoice_ids
                        if i in self._tables.invoices and self._tables.invoices[i].status is InvoiceStatus.DRAFT)
        self._tables.locks.extend(f"invoice {i}" for i in drafts)
        return drafts

    async def take_numbers(self, series: str, financial_year: str, count: int) -> range:
        last = self._tables.number_series.get((series, financial_year), 0) + count
        self._tables.number_series[(series, financial_year)] = last
        return range(last - count + 1, last + 1)

    async def mark_issued(self, issued: Sequence[tuple[str, str, date, date]], issued_at: datetime) -> None:
        for invoice_id, number, issue_date, due_date in issued:
            self._tables.invoices[invoice_id] = replace(
                self._tables.invoices[invoice_id], status=InvoiceStatus.ISSUED, number=number, issue_date=issue_date,
                due_date=due_date,
            )

    async def get_many(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        return [self._tables.invoices[i] for i in sorted(invoice_ids) if i in self._tables.invoices]

    async def set_balance(self, invoice_id: str, balance: Any) -> None:
        self._tables.invoices[invoice_id] = replace(
            self._tables.invoices[invoice_id], status=balance.status, amount_paid_minor=balance.amount_paid_minor,
            amount_refunded_minor=balance.amount_refunded_minor, amount_due_minor=balance.amount_due_minor,
        )

    async def reissue_of(self, voided_invoice_id: str) -> Invoice | None:
        return next((i for i in self._tables.invoices.values() if i.replaces_invoice_id == voided_invoice_id), None)


class FakeExchangeRates:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def add(self, rate_id: str, rate: ExchangeRate) -> tuple[RateRow, bool]:
        for row in self._tables.rates.values():
            if (row.base_currency, row.quote_currency, row.effective_at) == (
                rate.base_currency, rate.quote_currency, rate.effective_at
            ):
                return row, False
        row = RateRow(rate_id, rate.base_currency, rate.quote_currency, rate.rate, rate.source, rate.effective_at,
                      STORED_AT)
        self._tables.rates[rate_id] = row
        return row, True

    async def list(self, *, base_currency: str = "", quote_currency: str = "") -> list[RateRow]:
        chosen = [r for r in self._tables.rates.values()
                  if (not base_currency or r.base_currency == base_currency)
                  and (not quote_currency or r.quote_currency == quote_currency)]
        chosen.sort(key=lambda r: (r.base_currency, r.quote_currency))
        chosen.sort(key=lambda r: r.effective_at, reverse=True)
        return chosen

    async def all_rates(self) -> list[ExchangeRate]:
        return [ExchangeRate(r.base_currency, r.quote_currency, r.rate, r.source, r.effective_at)
                for r in await self.list()]


class FakeInvoiceRuns:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def add(
        self, run_id: str, period_key: str, organisation_id: str, trigger: str, *, idempotency_key: str,
        fingerprint: str,
    ) -> tuple[RunRow, bool]:
        return insert_once(self._tables.runs, run_id, RunRow(run_id, period_key, organisation_id, trigger),
                           idempotency_key, fingerprint)

    async def get(self, run_id: str) -> RunRow | None:
        found = self._tables.runs.get(run_id)
        return copy(found.value) if found else None

    async def list(self, *, limit: int, before: str | None) -> list[RunRow]:
        rows = sorted((r.value for r in self._tables.runs.values()), key=lambda r: r.id, reverse=True)
        return [copy(r) for r in rows if before is None or r.id < before][:limit]

    async def running(self) -> list[RunRow]:
        return [copy(r.value) for r in self._tables.runs.values() if r.value.state == "running"]

    async def latest_for(self, period_key: str, trigger: str) -> RunRow | None:
        rows = [r.value for r in self._tables.runs.values() if (r.value.period_key, r.value.trigger) == (
            period_key, trigger)]
        return copy(max(rows, key=lambda r: r.id)) if rows else None

    async def set_total(self, run_id: str, total: int) -> None:
        self._tables.runs[run_id].value.organisations_total = total

    async def reset_counts(self, run_id: str) -> None:
        row = self._tables.runs[run_id].value
        for name in COUNTERS:
            setattr(row, name, 0)
        row.failures = []

    async def add_progress(self, run_id: str, progress: RunProgress) -> None:
        row = self._tables.runs[run_id].value
        for name in COUNTERS:
            setattr(row, name, getattr(row, name) + getattr(progress, name))
        row.failures = (row.failures + progress.failures)[:100]

    async def finish(self, run_id: str, state: str, finished_at: datetime) -> None:
        row = self._tables.runs[run_id].value
        row.state, row.finished_at = state, finished_at


class FakeEntitlementOverrides:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def of(self, organisation_id: str) -> dict[str, EntitlementValue]:
        return dict(sorted(self._tables.overrides.get(organisation_id, {}).items()))

    async def put(self, organisation_id: str, feature: str, value: EntitlementValue) -> None:
        assert organisation_id in self._tables.organisations, "the foreign key to organisations"
        self._tables.overrides.setdefault(organisation_id, {})[feature] = value

    async def remove(self, organisation_id: str, feature: str) -> None:
        self._tables.overrides.get(organisation_id, {}).pop(feature, None)


class FakePlansInForce:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    async def read(self, organisation_id: str, at: datetime) -> OrganisationPlans | None:
        self._tables.plan_reads += 1
        found = self._tables.organisations.get(organisation_id)
        if found is None:
            return None
        subscriptions = (await FakeSubscriptions(self._tables).for_organisations([organisation_id])).get(
            organisation_id, [])
        covering = {phase.plan_version_id for s in subscriptions for phase in s.phases
                    if phase.starts_at <= at and (phase.ends_at is None or phase.ends_at > at)}
        return OrganisationPlans(
            organisation=found.value,
            subscriptions=subscriptions,
            versions=await FakeCatalog(self._tables).versions(covering),
            overrides=await FakeEntitlementOverrides(self._tables).of(organisation_id),
            price_overrides=[row.value for row in self._tables.price_overrides.values()
                             if row.value.organisation_id == organisation_id and row.value.effective_from <= at],
        )


class FakeUnitOfWork(FakeTransaction):
    """Invoicing's transaction over :class:`Tables`."""

    @property
    def organisations(self) -> FakeOrganisations:
        return FakeOrganisations(self.inside())

    @property
    def catalog(self) -> FakeCatalog:
        return FakeCatalog(self.inside())

    @property
    def subscriptions(self) -> FakeSubscriptions:
        return FakeSubscriptions(self.inside())

    @property
    def invoices(self) -> FakeInvoices:
        return FakeInvoices(self.inside())

    @property
    def exchange_rates(self) -> FakeExchangeRates:
        return FakeExchangeRates(self.inside())

    @property
    def invoice_runs(self) -> FakeInvoiceRuns:
        return FakeInvoiceRuns(self.inside())

    @property
    def entitlement_overrides(self) -> FakeEntitlementOverrides:
        return FakeEntitlementOverrides(self.inside())

    @property
    def plans_in_force(self) -> FakePlansInForce:
        return FakePlansInForce(self.inside())

    @property
    def coupons(self) -> FakeCoupons:
        # Imported here: fake_coupons builds on this module.
        from tests.unit.services.invoicing.service.fake_coupons import FakeCoupons

        return FakeCoupons(self.inside())

    @property
    def price_overrides(self) -> FakePriceOverrides:
        from tests.unit.services.invoicing.service.fake_price_overrides import FakePriceOverrides

        return FakePriceOverrides(self.inside())

    @property
    def credits(self) -> FakeCredits:
        from tests.unit.services.invoicing.service.fake_credits import FakeCredits

        return FakeCredits(self.inside())

    @property
    def credit_notes(self) -> FakeCreditNotes:
        from tests.unit.services.invoicing.service.fake_credit_notes import FakeCreditNotes

        return FakeCreditNotes(self.inside())

    @property
    def settlements(self) -> FakeSettlementRecords:
        from tests.unit.services.invoicing.service.fake_credit_notes import FakeSettlementRecords

        return FakeSettlementRecords(self.inside())
