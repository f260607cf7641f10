"""What invoicing's use cases need from storage, as Protocols: the adapters implement them over PostgreSQL
(:mod:`services.invoicing.adapters.unit_of_work`), unit tests with in-memory fakes
(``tests/unit/services/invoicing/service/fakes.py``). Where a record has no domain type yet (a plan row, an
exchange-rate row, an invoice run) the Protocol names the attributes the use cases read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self

from google.protobuf.message import Message

from services.invoicing.domain.coupon import Coupon, CouponRedemption, CouponTerms
from services.invoicing.domain.credit import CreditGrant, GrantSource, GrantStatus, GrantTerms
from services.invoicing.domain.credit_note import CreditNote, RefundState
from services.invoicing.domain.einvoice_registration import Acknowledgement, ListedRegistration, Registration
from services.invoicing.domain.entitlements import EntitlementValue
from services.invoicing.domain.invoice import ExchangeRate, Invoice, InvoiceStatus
from services.invoicing.domain.invoice_run import RunProgress
from services.invoicing.domain.organisation import Organisation, OrganisationDetails
from services.invoicing.domain.plan import Plan, PlanVersion, PlanVersionTerms
from services.invoicing.domain.price_override import PriceOverride
from services.invoicing.domain.settlement import Balance, RecordedSettlement
from services.invoicing.domain.subscription import Subscription


class Organisations(Protocol):
    async def add(
        self, organisation_id: str, details: OrganisationDetails, idempotency_key: str = ""
    ) -> tuple[Organisation, bool]:
        """Store a new organisation; (organisation, created). The same idempotency key with the same details
        returns the first one with created False, with other details Conflict."""
        ...

    async def get(self, organisation_id: str, *, for_update: bool = False) -> Organisation | None:
        """With ``for_update``, locked until the transaction ends."""
        ...

    async def list(self, *, limit: int, after: str | None) -> list[Organisation]:
        """Up to ``limit`` organisations in id order after ``after``."""
        ...

    async def count(self) -> int: ...


class PlanRecord(Protocol):
    """A plan as stored, without its versions."""

    id: str
    code: str
    name: str


class Catalog(Protocol):
    """Plans and their numbered, never rewritten versions."""

    async def add_plan(
        self, plan_id: str, code: str, name: str, *, idempotency_key: str, fingerprint: str
    ) -> tuple[str, bool]:
        """Store a plan (without versions), or find the one made with this idempotency key; (plan id, created).
        The key with another fingerprint is Conflict."""
        ...

    async def lock_code(self, code: str) -> None:
        """Serialise creates of one plan code until the transaction ends."""
        ...

    async def made_with_key(self, plan_id: str, idempotency_key: str) -> bool: ...

    async def version_made_with_key(self, idempotency_key: str) -> bool: ...

    async def plan_id_for_code(self, code: str) -> str | None: ...

    async def lock_plan(self, plan_id: str) -> PlanRecord | None:
        """The plan, locked until the transaction ends, so its new versions get consecutive numbers."""
        ...

    async def add_version(
        self,
        version_id: str,
        plan_id: str,
        name: str,
        terms: PlanVersionTerms,
        *,
        idempotency_key: str = "",
        fingerprint: str = "",
    ) -> tuple[PlanVersion, bool]:
        """Append the plan's next version (renaming the plan to ``name`` when given); (version, created), the
        first version made with the idempotency key when it is repeated."""
        ...

    async def get_version(self, version_id: str) -> PlanVersion | None: ...

    async def versions(self, version_ids: Iterable[str]) -> dict[str, PlanVersion]: ...

    async def versions_of(self, plan_id: str) -> list[PlanVersion]:
        """Every version of the plan, oldest first; [] for an unknown plan."""
        ...

    async def latest_version(self, plan_id: str) -> PlanVersion | None: ...

    async def get_plan(self, plan_id: str) -> Plan | None: ...

    async def list_plans(self, *, limit: int, after: str | None) -> list[Plan]: ...


class Subscriptions(Protocol):
    async def add(self, subscription: Subscription, *, idempotency_key: str, fingerprint: str) -> tuple[str, bool]:
        """Store a new subscription with its phases; (id, created), the first one's id when the idempotency key
        is repeated."""
        ...

    async def save(self, subscription: Subscription) -> None:
        """Store a changed subscription (state, end, phases)."""
        ...

    async def made_with_key(self, idempotency_key: str) -> bool: ...

    async def active_for(self, organisation_id: str) -> str | None:
        """The id of the organisation's active subscription, if it has one."""
        ...

    async def get(self, subscription_id: str, *, for_update: bool = False) -> Subscription | None: ...

    async def list(self, *, organisation_id: str, limit: int, after: str | None) -> list[Subscription]: ...

    async def for_organisations(self, organisation_ids: Sequence[str]) -> dict[str, list[Subscription]]:
        """Every subscription (any state) of these organisations, oldest first."""
        ...

    async def clear_past_due(self, organisation_id: str) -> None:
        """The organisation's subscription is no longer past due (its uncollectible invoice was written off)."""
        ...


class InvoiceState(Protocol):
    """An invoice's id and status (an ``InvoiceStatus`` value), as a period close checks what a period has."""

    id: str
    status: str


class Invoices(Protocol):
    async def get(self, invoice_id: str, *, for_update: bool = False) -> Invoice | None: ...

    async def list(
        self, *, organisation_id: str, status: str, period_key: str, limit: int, before: str | None
    ) -> list[Invoice]:
        """Newest first (descending id), each filter applied when not ""."""
        ...

    async def void(self, invoice_id: str, reason: str, voided_at: datetime, *, from_status: InvoiceStatus) -> None: ...

    async def set_balance(self, invoice_id: str, balance: Balance) -> None:
        """Store what settlement computed: status and amounts."""
        ...

    async def insert_drafts(
        self, drafts: Sequence[Invoice], run_id: str = "", documents: Mapping[str, dict[str, Any]] | None = None
    ) -> dict[str, datetime]:
        """Store drafts, skipping one whose (organisation, period) already has a live (not void) invoice or that
        reissues an invoice already reissued; the ids stored, each with its stored creation time."""
        ...

    async def update_drafts(
        self, drafts: Sequence[Invoice], documents: Mapping[str, dict[str, Any]] | None = None
    ) -> dict[str, datetime]:
        """Replace the content of drafts priced again, locking them; one no longer a draft is left alone. The ids
        updated, each with its creation time."""
        ...

    async def recent_live(self, organisation_ids: Sequence[str], ending_after: datetime) -> dict[str, list[Invoice]]:
        """Every invoice but the void ones, drafts included, of these organisations whose period ends after
        ``ending_after``, oldest period first, by organisation."""
        ...

    async def lock(self, invoice_ids: Sequence[str]) -> None:
        """Lock these invoices until the transaction ends, in id order."""
        ...

    async def draft_period_keys(self) -> list[str]:
        """The periods that have a draft invoice, oldest first."""
        ...

    async def period_invoices(
        self, organisation_ids: Sequence[str], period_key: str
    ) -> dict[str, list[InvoiceState]]:
        """Every invoice, void ones included, of these organisations for one period, by organisation."""
        ...

    async def lock_draft_ids(self, invoice_ids: Sequence[str]) -> list[str]:
        """The drafts among ``invoice_ids``, locked until the transaction ends, in id order."""
        ...

    async def take_numbers(self, series: str, financial_year: str, count: int) -> range:
        """The next ``count`` sequence numbers of a series in a financial year: no gaps, no reuse."""
        ...

    async def mark_issued(self, issued: Sequence[tuple[str, str, date, date]], issued_at: datetime) -> None:
        """Set (id, number, issue date, due date) on drafts and make them issued."""
        ...

    async def get_many(self, invoice_ids: Sequence[str]) -> list[Invoice]: ...

    async def reissue_of(self, voided_invoice_id: str) -> Invoice | None: ...


class ExchangeRateRecord(Protocol):
    """A stored rate: the rate itself, its id and when it was recorded."""

    id: str
    base_currency: str
    quote_currency: str
    rate: Decimal
    source: str
    effective_at: datetime
    created_at: datetime


class ExchangeRates(Protocol):
    async def add(self, rate_id: str, rate: ExchangeRate) -> tuple[ExchangeRateRecord, bool]:
        """Store a rate, or return the one already stored for the pair and effective time; (record, created)."""
        ...

    async def list(self, *, base_currency: str = "", quote_currency: str = "") -> list[ExchangeRateRecord]:
        """Newest effective time first, then by pair; each filter applied when not ""."""
        ...

    async def all_rates(self) -> list[ExchangeRate]: ...


class InvoiceRunRecord(Protocol):
    """A stored invoice run: its scope, state (running, completed, failed) and counts."""

    id: str
    period_key: str
    organisation_id: str
    state: str
    trigger: str
    invoiced: int
    already_invoiced: int
    not_due: int
    no_subscription: int
    failed: int


class RunLocks(Protocol):
    """Who executes an invoice run: at most one process at a time across replicas, and a process that dies lets
    go (so a replica starting beside one that is running a run does not run it again, and a crashed one's run
    can be resumed)."""

    def hold(self, run_id: str) -> AbstractAsyncContextManager[bool]:
        """Held for the ``async with`` block when it yields True; False when another process holds it."""
        ...


class InvoiceRunRecords(Protocol):
    async def add(
        self, run_id: str, period_key: str, organisation_id: str, trigger: str, *, idempotency_key: str,
        fingerprint: str,
    ) -> tuple[InvoiceRunRecord, bool]:
        """Record a running run; (run, created), the first one when the idempotency key is repeated."""
        ...

    async def get(self, run_id: str) -> InvoiceRunRecord | None: ...

    async def list(self, *, limit: int, before: str | None) -> list[InvoiceRunRecord]:
        """Newest first; ``before`` is the last id of the previous page."""
        ...

    async def running(self) -> list[InvoiceRunRecord]: ...

    async def latest_for(self, period_key: str, trigger: str) -> InvoiceRunRecord | None: ...

    async def set_total(self, run_id: str, total: int) -> None: ...

    async def reset_counts(self, run_id: str) -> None:
        """Counts back to zero (a resumed run counts again)."""
        ...

    async def add_progress(self, run_id: str, progress: RunProgress) -> None: ...

    async def finish(self, run_id: str, state: str, finished_at: datetime) -> None: ...


class EntitlementOverrides(Protocol):
    """Features granted to one organisation over its plan's."""

    async def of(self, organisation_id: str) -> dict[str, EntitlementValue]:
        """By feature, sorted; {} when it has none."""
        ...

    async def put(self, organisation_id: str, feature: str, value: EntitlementValue) -> None:
        """Insert, or replace the feature's value."""
        ...

    async def remove(self, organisation_id: str, feature: str) -> None: ...


class PriceOverrides(Protocol):
    """Organisations' own prices on plans, a row per version (``domain/price_override.py``)."""

    async def of(self, organisation_id: str, plan_id: str = "") -> list[PriceOverride]:
        """Every version of the organisation's overrides (of one plan when ``plan_id``), by plan code, version."""
        ...

    async def for_organisations(self, organisation_ids: Sequence[str]) -> dict[str, list[PriceOverride]]: ...

    async def made_with_key(self, idempotency_key: str) -> tuple[PriceOverride, str] | None:
        """The version made with this key and its request's fingerprint; None for an unused (or empty) key."""
        ...

    async def add(self, override: PriceOverride, *, idempotency_key: str, fingerprint: str) -> tuple[str, bool]:
        """Insert a version, or find the one made with this key (Conflict if for another request)."""
        ...

    async def invoiced_until(self, organisation_id: str) -> datetime | None:
        """The end of the organisation's latest period with a live (not void) invoice."""
        ...


@dataclass(frozen=True)
class OrganisationPlans:
    """What decides an organisation's plan in force at a moment, as :meth:`PlansInForce.read` gathers it."""

    organisation: Organisation
    # Every subscription of the organisation (any state), oldest first, with its phases.
    subscriptions: Sequence[Subscription]
    # At least the version of the phase covering the moment read at, when one does.
    versions: Mapping[str, PlanVersion]
    overrides: Mapping[str, EntitlementValue]
    # The organisation's price override versions that started by the moment (the one in force per plan among them).
    price_overrides: Sequence[PriceOverride] = ()


class PlansInForce(Protocol):
    async def read(self, organisation_id: str, at: datetime) -> OrganisationPlans | None:
        """The organisation, its subscriptions and overrides, and the plan version covering ``at``, in as few
        queries as it takes (metering asks often); None for an unknown organisation."""
        ...


class Coupons(Protocol):
    """Coupons, their redemptions by organisations, and the billing periods each redemption was used for."""

    async def lock_code(self, code: str) -> None:
        """Serialise creates of one coupon code until the transaction ends."""
        ...

    async def id_for_code(self, code: str) -> str | None: ...

    async def made_with_key(self, coupon_id: str, idempotency_key: str) -> bool: ...

    async def add(
        self, coupon_id: str, terms: CouponTerms, *, idempotency_key: str, fingerprint: str
    ) -> tuple[str, bool]:
        """Store a coupon, or find the one made with this idempotency key; (coupon id, created). The key with
        another fingerprint is Conflict."""
        ...

    async def get(self, coupon_id: str, *, for_update: bool = False) -> Coupon | None:
        """With ``for_update``, locked until the transaction ends."""
        ...

    async def list(self, *, limit: int, after: str | None) -> list[Coupon]:
        """Up to ``limit`` coupons in id order after ``after``."""
        ...

    async def archive(self, coupon_id: str, at: datetime) -> None:
        """Archive it (unless it already is)."""
        ...

    async def redemption_made_with_key(self, idempotency_key: str) -> str | None: ...

    async def live_redemption(self, coupon_id: str, organisation_id: str) -> str | None:
        """The organisation's redemption of the coupon that is not removed, if any."""
        ...

    async def add_redemption(
        self, redemption_id: str, coupon_id: str, organisation_id: str, start_period_key: str, applied_at: datetime,
        *, idempotency_key: str, fingerprint: str,
    ) -> tuple[str, bool]:
        """Store a redemption, or find the one made with this idempotency key; (redemption id, created)."""
        ...

    async def get_redemption(self, redemption_id: str, *, for_update: bool = False) -> CouponRedemption | None: ...

    async def remove_redemption(self, redemption_id: str, at: datetime) -> None:
        """Remove it (unless it already is)."""
        ...

    async def redemptions_of(self, organisation_ids: Sequence[str]) -> dict[str, list[CouponRedemption]]:
        """Every redemption (removed ones too) of these organisations, oldest applied first, by organisation."""
        ...

    async def lock_redemptions(self, redemption_ids: Iterable[str]) -> dict[str, CouponRedemption]:
        """These redemptions as they are now, locked until the transaction ends."""
        ...

    async def record_uses(self, uses: Sequence[tuple[str, str, str]]) -> None:
        """(redemption id, period key, invoice id): the redemption was used for the period, unless it already was."""
        ...


class Credits(Protocol):
    """Prepaid credit grants and their consumption (``adapters/credit_repository.py``)."""

    async def add(
        self, grant_id: str, organisation_id: str, terms: GrantTerms, status: GrantStatus, created_at: datetime,
        *, idempotency_key: str, fingerprint: str, purchase_invoice_id: str = "",
    ) -> tuple[str, bool]:
        """Insert a grant, or find the one made with this idempotency key; (grant id, created)."""
        ...

    async def id_for_source(self, source: GrantSource, source_id: str) -> str | None: ...

    async def made_with_key(self, idempotency_key: str) -> tuple[str, str] | None:
        """(grant id, request fingerprint) of the grant made with this idempotency key."""
        ...

    async def purchase_invoice_of(self, grant_id: str) -> str | None: ...

    async def lock_source(self, source: GrantSource, source_id: str) -> None:
        """Serialise grants for one (source, source id) until the transaction ends."""
        ...

    async def get(self, grant_id: str, *, for_update: bool = False) -> CreditGrant | None: ...

    async def of_organisations(
        self, organisation_ids: Sequence[str], *, for_update: bool = False
    ) -> dict[str, list[CreditGrant]]:
        """Every grant of these organisations with what is consumed from each; locked with ``for_update``."""
        ...

    async def record_consumptions(self, uses: Sequence[tuple[str, str, int]], at: datetime) -> None:
        """(grant id, invoice id, amount minor), once per (grant, invoice)."""
        ...

    async def forget_drafts(self, invoice_ids: Sequence[str]) -> None:
        """Delete what these invoices consumed while they are drafts (a draft priced again spends afresh)."""
        ...

    async def release_invoice(self, invoice_id: str, at: datetime) -> int:
        """Give back what a voided invoice consumed."""
        ...

    async def void(self, grant_id: str, reason: str, at: datetime) -> None: ...

    async def void_purchase(self, invoice_id: str, reason: str, at: datetime) -> None: ...

    async def make_purchase_available(self, invoice_id: str) -> str | None: ...

    async def purchase_grant_of(self, invoice_id: str) -> str | None:
        """The grant this (top-up) invoice bought; None for any other invoice."""
        ...

    async def record_clawback(self, grant_id: str, invoice_id: str, refund_id: str, amount_minor: int,
                              at: datetime) -> bool:
        """A ledger entry of kind clawback, once per (grant, refund id); False when the refund already has one."""
        ...

    async def release_clawbacks(self, grant_id: str, refund_ids: Sequence[str], at: datetime) -> int:
        """Give back what these (failed) refunds took back."""
        ...

    async def spent_on(self, grant_id: str) -> list[str]:
        """The invoices that spent credit of this grant (not given back), oldest first."""
        ...

    async def consumptions_of(self, organisation_id: str, *, limit: int = 200) -> list[Any]: ...

class CreditNotes(Protocol):
    """Credit notes of invoices (``domain/credit_note.py``)."""

    async def made_with_key(self, idempotency_key: str) -> tuple[CreditNote, str] | None:
        """The credit note made with this idempotency key and its request's fingerprint, if any."""
        ...

    async def add(self, note: CreditNote, *, idempotency_key: str, fingerprint: str) -> None:
        """Store it and add its total to its invoice's credited amount."""
        ...

    async def get(self, credit_note_id: str, *, for_update: bool = False) -> CreditNote | None: ...

    async def of_invoice(self, invoice_id: str) -> list[CreditNote]:
        """Every credit note of the invoice, oldest first."""
        ...

    async def list(
        self, *, invoice_id: str, organisation_id: str, limit: int, before: str | None
    ) -> list[CreditNote]:
        """Newest first, each filter applied when not ""."""
        ...

    async def set_refund(
        self, credit_note_id: str, state: RefundState, refund_ids: Sequence[str], error: str = ""
    ) -> None: ...


class SettlementRecords(Protocol):
    """What settlement recorded against invoices, as credit notes need it."""

    async def for_invoice(self, invoice_id: str) -> list[RecordedSettlement]: ...

    async def add_status_change(
        self, invoice_id: str, from_status: InvoiceStatus, to_status: InvoiceStatus, changed_at: datetime, *,
        reason: str, cause: str,
    ) -> None: ...


class PaymentRefunds(Protocol):
    """Payments' refunds (its CreateRefund RPC), as invoicing asks for them."""

    async def refund(self, payment_id: str, amount_minor: int, reason: str, idempotency_key: str) -> str:
        """Refund ``amount_minor`` of a captured payment; the refund's id. Idempotent by ``idempotency_key``.
        Raises the callee's domain error (FailedPrecondition when the payment has less left to refund)."""
        ...


class EinvoiceRegistrations(Protocol):
    """E-invoice registrations (``domain/einvoice_registration.py``): the queue the registrar drains."""

    async def add_pending(self, registrations: Sequence[Registration]) -> None: ...

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Registration]:
        """Due pending registrations, each counted as an attempt and leased to the caller."""
        ...

    async def save(self, registration: Registration, now: datetime) -> None: ...

    async def get(self, document_id: str, *, for_update: bool = False) -> Registration | None: ...

    async def list(self, *, status: str = "", organisation_id: str = "", invoice_id: str = "", limit: int,
                   after: str | None) -> list[ListedRegistration]:
        """By document id; only ``status``, ``organisation_id`` (its invoices') or ``invoice_id`` (the invoice and
        its credit notes) when given."""
        ...


class IrpConnector(Protocol):
    """The IRP: NIC's direct API (``adapters/irp_nic.py``) or a GSP's. Raises ``IrpRefusal`` (the IRP's error codes)
    or ``IrpUnavailable`` (try again later)."""

    async def generate(self, document_json: str) -> Acknowledgement: ...

    async def get(self, irn: str) -> Acknowledgement: ...

    async def cancel(self, irn: str, reason_code: str, remark: str) -> datetime: ...


class InvoicingTransaction(Protocol):
    """One transaction over invoicing's repositories: ``async with uow:`` commits when the block ends normally
    and rolls back on an exception. The repositories are usable inside the block only."""

    @property
    def organisations(self) -> Organisations: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def subscriptions(self) -> Subscriptions: ...

    @property
    def invoices(self) -> Invoices: ...

    @property
    def exchange_rates(self) -> ExchangeRates: ...

    @property
    def invoice_runs(self) -> InvoiceRunRecords: ...

    @property
    def entitlement_overrides(self) -> EntitlementOverrides: ...

    @property
    def plans_in_force(self) -> PlansInForce: ...

    @property
    def coupons(self) -> Coupons: ...

    @property
    def price_overrides(self) -> PriceOverrides: ...

    @property
    def credits(self) -> Credits: ...

    @property
    def credit_notes(self) -> CreditNotes: ...

    @property
    def settlements(self) -> SettlementRecords: ...

    @property
    def einvoices(self) -> EinvoiceRegistrations: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class EventOutbox(Protocol):
    """Records an event in the transaction of ``uow`` (``billing_runtime.outbox.Outbox``): it is published if,
    and only if, that transaction commits. ``uow`` is whatever transaction the implementation writes with."""

    async def record(self, uow: Any, subject: str, event_id: str, message: Message) -> None: ...

    async def record_many(self, uow: Any, subject: str, events: Sequence[tuple[str, Message]]) -> None:
        """Several (event id, message) on one subject."""
        ...
