"""Reconciliation runs: our payments and refunds of a period against the providers'.

Each configured provider's side is listed page by page (Razorpay: ``GET /v1/payments?from=&to=``,
``/v1/refunds``; Stripe: the PaymentIntents of ``GET /v1/charges?created[gte]=&created[lt]=``, and
``/v1/refunds``, by cursor); ours is what we made at those providers in the window plus whatever they listed
that we know. One run covers every configured provider: provider ids never collide across them (``pay_``/``pi_``,
``rfnd_``/``re_``). Something we hold that the provider did not list is fetched by id before it is called
missing, since the two sides may place an object a second apart across the window's edge. The differences are
stored (one open discrepancy per difference however many runs find it) and the number of open ones is kept on a
gauge.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Gauge

from billing_runtime import paging
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.logging import get_logger
from services.payments.adapters.reconciliation_repository import Discrepancy, Run
from services.payments.domain import payment as payment_rules
from services.payments.domain import refund as refund_rules
from services.payments.domain.payment import Provider
from services.payments.domain.provider import FailureKind, ProviderFailure
from services.payments.domain.reconciliation import Record, compare
from services.payments.domain.reports import ProviderPayment, ProviderRefund
from services.payments.service.ports import PaymentProvider, Providers, UnitFactory

log = get_logger(__name__)

OPEN_DISCREPANCIES = Gauge("billing_payments_open_discrepancies",
                           "Reconciliation discrepancies not yet resolved by an operator.")
MAX_WINDOW = timedelta(days=31)


def _payment_record(p: ProviderPayment, provider: Provider) -> Record:
    status = payment_rules.from_provider_status(p.status, p.captured)
    return Record("payment", p.id, status.value if status else p.status, p.currency or "", p.amount_minor,
                  provider=provider.value)


def _refund_record(r: ProviderRefund, provider: Provider) -> Record:
    status = refund_rules.from_provider_status(r.status)
    return Record("refund", r.id, status.value if status else r.status, r.currency or "", r.amount_minor,
                  provider=provider.value)


async def run(uow: UnitFactory, providers: Providers, start: datetime, end: datetime, trigger: str,
              now: datetime) -> tuple[Run, list[Discrepancy]]:
    if end <= start:
        raise InvalidArgument("must be after start_time", field="end_time")
    if end - start > MAX_WINDOW:
        raise InvalidArgument("the window may be at most 31 days", field="end_time")
    if end > now:
        raise InvalidArgument("must not be in the future: the provider cannot have settled it yet", field="end_time")
    async with uow() as unit:
        started: Run | None = await unit.reconciliation.start(start, end, trigger)
    if started is None:
        raise FailedPrecondition(f"the {trigger} run of this window exists already")
    try:
        theirs: list[Record] = []
        for provider in providers:
            # A mandate's authorisation payment (INR 1.00 on a card or UPI) pays no invoice: its notes name the
            # mandate and no invoice. It is not one of ours to match.
            theirs += [_payment_record(p, provider.name)
                       for p in await provider.list_payments(int(start.timestamp()), int(end.timestamp()))
                       if not ("mandate_id" in p.notes and "invoice_id" not in p.notes)]
            theirs += [_refund_record(r, provider.name)
                       for r in await provider.list_refunds(int(start.timestamp()), int(end.timestamp()))]
        async with uow() as unit:
            ours: list[Record] = await unit.reconciliation.our_records(
                start, end, [r.provider_id for r in theirs if r.object_type == "payment"],
                [r.provider_id for r in theirs if r.object_type == "refund"], providers.names)
        listed = {(r.object_type, r.provider_id) for r in theirs}
        for record in ours:
            if (record.object_type, record.provider_id) not in listed:
                fetched = await _fetch(providers.required(record.provider), record)
                if fetched is not None:
                    theirs.append(fetched)
    except ProviderFailure as failure:
        async with uow() as unit:
            await unit.reconciliation.finish(started.id, "failed", error=f"the provider could not be read: {failure}")
            finished = await unit.reconciliation.get(started.id)
        log.warning("reconciliation failed", run_id=started.id, error=str(failure))
        return finished, []
    findings = compare(ours, theirs)
    async with uow() as unit:
        await unit.reconciliation.record(started.id, findings)
        await unit.reconciliation.finish(
            started.id, "completed", payments=sum(1 for r in theirs if r.object_type == "payment"),
            refunds=sum(1 for r in theirs if r.object_type == "refund"), found=len(findings))
        finished = await unit.reconciliation.get(started.id)
        found = await unit.reconciliation.found_by(started.id)
        OPEN_DISCREPANCIES.set(await unit.reconciliation.count_open())
    log.info("reconciliation completed", run_id=started.id, discrepancies=len(findings),
             clean=not findings)
    return finished, found


async def _fetch(provider: PaymentProvider, record: Record) -> Record | None:
    """The provider's copy of something we hold that its listing did not include; None if it has none."""
    try:
        if record.object_type == "payment":
            return _payment_record(await provider.fetch_payment(record.provider_id), provider.name)
        return _refund_record(await provider.fetch_refund(record.provider_id), provider.name)
    except ProviderFailure as failure:
        if failure.kind is FailureKind.REJECTED:  # "The id provided does not exist"
            return None
        raise


async def get_run(uow: UnitFactory, run_id: str) -> tuple[Run, list[Discrepancy]]:
    async with uow() as unit:
        found: Run | None = await unit.reconciliation.get(run_id)
        if found is None:
            raise NotFound(f"no reconciliation run with id {run_id!r}")
        return found, await unit.reconciliation.found_by(run_id)


async def resolve(uow: UnitFactory, discrepancy_id: str, resolution: str) -> Discrepancy:
    resolution = resolution.strip()
    if not resolution or len(resolution) > 500:
        raise InvalidArgument("is required: say what was done (at most 500 characters)", field="resolution")
    async with uow() as unit:
        found: Discrepancy | None = await unit.reconciliation.resolve(discrepancy_id, resolution)
        if found is None:
            raise NotFound(f"no discrepancy with id {discrepancy_id!r}")
        OPEN_DISCREPANCIES.set(await unit.reconciliation.count_open())
    return found


async def list_runs(uow: UnitFactory, page_size: int, page_token: str) -> tuple[list[Run], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow() as unit:
        rows = await unit.reconciliation.page(size + 1, before)
    return paging.split_page(rows, size)


async def list_discrepancies(uow: UnitFactory, include_resolved: bool, page_size: int,
                             page_token: str) -> tuple[list[Discrepancy], str]:
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow() as unit:
        rows = await unit.reconciliation.discrepancies(include_resolved, size + 1, before)
    return paging.split_page(rows, size)
