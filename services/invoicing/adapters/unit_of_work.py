"""Invoicing's unit of work: one PostgreSQL transaction with invoicing's repositories on it."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

from billing_runtime.database import UnitOfWork
from services.invoicing.adapters.catalog_repository import CatalogRepository
from services.invoicing.adapters.coupon_repository import CouponRepository
from services.invoicing.adapters.credit_note_repository import CreditNoteRepository
from services.invoicing.adapters.credit_repository import CreditRepository
from services.invoicing.adapters.einvoice_repository import EinvoiceRepository
from services.invoicing.adapters.entitlement_repository import EntitlementOverrideRepository
from services.invoicing.adapters.exchange_rate_repository import ExchangeRateRepository
from services.invoicing.adapters.invoice_repository import InvoiceRepository
from services.invoicing.adapters.invoice_run_repository import InvoiceRunRepository
from services.invoicing.adapters.plan_in_force_repository import PlanInForceRepository
from services.invoicing.adapters.price_override_repository import PriceOverrideRepository
from services.invoicing.adapters.repository import OrganisationRepository
from services.invoicing.adapters.settlement_repository import SettlementRepository
from services.invoicing.adapters.subscription_repository import SubscriptionRepository

Repository = TypeVar("Repository")


def _inside(repository: Repository | None) -> Repository:
    if repository is None:
        raise RuntimeError("unit of work used outside its 'async with' block")
    return repository


class InvoicingUnitOfWork(UnitOfWork):
    """The transaction's repositories are made when the block opens (they need its connection) and dropped when
    it ends, so a use case reaches storage only through ``uow.organisations``, ``uow.catalog`` ... inside its
    ``async with uow`` and never builds a repository itself (which is what lets tests fake them)."""

    _organisations: OrganisationRepository | None = None
    _catalog: CatalogRepository | None = None
    _subscriptions: SubscriptionRepository | None = None
    _invoices: InvoiceRepository | None = None
    _exchange_rates: ExchangeRateRepository | None = None
    _invoice_runs: InvoiceRunRepository | None = None
    _entitlement_overrides: EntitlementOverrideRepository | None = None
    _plans_in_force: PlanInForceRepository | None = None
    _coupons: CouponRepository | None = None
    _price_overrides: PriceOverrideRepository | None = None
    _credits: CreditRepository | None = None
    _credit_notes: CreditNoteRepository | None = None
    _settlements: SettlementRepository | None = None
    _einvoices: EinvoiceRepository | None = None

    @property
    def organisations(self) -> OrganisationRepository:
        return _inside(self._organisations)

    @property
    def catalog(self) -> CatalogRepository:
        return _inside(self._catalog)

    @property
    def subscriptions(self) -> SubscriptionRepository:
        return _inside(self._subscriptions)

    @property
    def invoices(self) -> InvoiceRepository:
        return _inside(self._invoices)

    @property
    def exchange_rates(self) -> ExchangeRateRepository:
        return _inside(self._exchange_rates)

    @property
    def invoice_runs(self) -> InvoiceRunRepository:
        return _inside(self._invoice_runs)

    @property
    def entitlement_overrides(self) -> EntitlementOverrideRepository:
        return _inside(self._entitlement_overrides)

    @property
    def plans_in_force(self) -> PlanInForceRepository:
        return _inside(self._plans_in_force)

    @property
    def coupons(self) -> CouponRepository:
        return _inside(self._coupons)

    @property
    def price_overrides(self) -> PriceOverrideRepository:
        return _inside(self._price_overrides)

    @property
    def credits(self) -> CreditRepository:
        return _inside(self._credits)

    @property
    def credit_notes(self) -> CreditNoteRepository:
        return _inside(self._credit_notes)

    @property
    def settlements(self) -> SettlementRepository:
        return _inside(self._settlements)

    @property
    def einvoices(self) -> EinvoiceRepository:
        return _inside(self._einvoices)

    async def __aenter__(self) -> InvoicingUnitOfWork:
        await super().__aenter__()
        connection = self.connection
        self._organisations = OrganisationRepository(connection)
        self._catalog = CatalogRepository(connection)
        self._subscriptions = SubscriptionRepository(connection)
        self._invoices = InvoiceRepository(connection)
        self._exchange_rates = ExchangeRateRepository(connection)
        self._invoice_runs = InvoiceRunRepository(connection)
        self._entitlement_overrides = EntitlementOverrideRepository(connection)
        self._plans_in_force = PlanInForceRepository(connection)
        self._coupons = CouponRepository(connection)
        self._price_overrides = PriceOverrideRepository(connection)
        self._credits = CreditRepository(connection)
        self._credit_notes = CreditNoteRepository(connection)
        self._settlements = SettlementRepository(connection)
        self._einvoices = EinvoiceRepository(connection)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._organisations = self._catalog = self._subscriptions = self._invoices = None
        self._exchange_rates = self._invoice_runs = None
        self._entitlement_overrides = self._plans_in_force = None
        self._coupons = self._price_overrides = self._credits = self._credit_notes = self._settlements = None
        self._einvoices = None
        await super().__aexit__(exc_type, exc, tb)
