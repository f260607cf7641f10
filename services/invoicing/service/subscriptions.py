"""Subscriptions: an organisation on a plan version from a date; plan changes and cancellations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from enum import StrEnum

from billing_runtime import paging
from billing_runtime.errors import AlreadyExists, InvalidArgument, NotFound
from billing_runtime.ids import new_id, new_ulid
from services.invoicing.adapters import messages
from services.invoicing.domain import subscription as subscription_rules
from services.invoicing.domain.billing_period import start_of_day, zone_of
from services.invoicing.domain.subscription import Subscription, SubscriptionStatus
from services.invoicing.service.catalog import resolve_version
from services.invoicing.service.fingerprints import fingerprint
from services.invoicing.service.organisations import existing_organisation as _organisation
from services.invoicing.service.ports import EventOutbox, InvoicingTransaction, Subscriptions


def _parse_date(value: str, field: str, time_zone: str, now: datetime) -> date:
    """A YYYY-MM-DD date, or today in ``time_zone`` when empty."""
    if not value:
        return now.astimezone(zone_of(time_zone)).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{value!r} is not a date; expected YYYY-MM-DD", field=field) from None


class Change(StrEnum):
    """What a ``subscription.updated`` event says changed (the event carries no state: readers ask
    GetPlanInForce again)."""

    CREATED = "created"
    PLAN_CHANGED = "plan_changed"
    CANCELED = "canceled"
    ENTITLEMENT_OVERRIDE = "entitlement_override"
    PRICE_OVERRIDE = "price_override"


async def announce_update(
    uow: InvoicingTransaction, outbox: EventOutbox, organisation_id: str, change: Change, subscription_id: str = ""
) -> None:
    """Record ``subscription.updated`` in the transaction of the change; its id is new for every change (a
    retried request that changes nothing records nothing, so ids need not repeat)."""
    event_id = f"subscription.updated:{new_ulid()}"
    await outbox.record(
        uow,
        messages.SUBSCRIPTION_UPDATED,
        event_id,
        messages.subscription_updated(event_id, organisation_id, subscription_id, change.value),
    )


async def create_subscription(
    uow: InvoicingTransaction,
    outbox: EventOutbox,
    *,
    organisation_id: str,
    plan_version_id: str = "",
    plan_code: str = "",
    start_date: str = "",
    billing_anchor_day: int = 0,
    idempotency_key: str = "",
    now: datetime | None = None,
) -> tuple[Subscription, bool]:
    """Put an organisation on a plan version from the start of ``start_date`` in its zone. One active
    subscription per organisation; a repeat with the same idempotency key returns the first. A new one is
    announced (``subscription.updated``, change "created") in the same transaction."""
    now = now or datetime.now(UTC)
    async with uow:
        organisation = await _organisation(uow, organisation_id, lock=True)
        time_zone = organisation.details.timezone
        version = await resolve_version(uow.catalog, plan_version_id, plan_code)
        day = _parse_date(start_date, "start_date", time_zone, now)
        created_day = organisation.created_at.astimezone(zone_of(time_zone)).date()
        if day < created_day:
            raise InvalidArgument(
                f"is {day.isoformat()}, before the organisation was created ({created_day.isoformat()} in "
                f"{time_zone}); a subscription cannot start before its organisation exists",
                field="start_date",
            )
        subscription = subscription_rules.start(
            subscription_id=new_id("sub"),
            organisation_id=organisation.id,
            plan_version_id=version.id,
            starts_at=start_of_day(day, time_zone),
            created_at=now,
            billing_anchor_day=billing_anchor_day or 1,
        )
        repository = uow.subscriptions
        request = {"organisation_id": organisation.id, "plan_version_id": version.id, "start_date": day.isoformat(),
                   "billing_anchor_day": subscription.billing_anchor_day}
        if idempotency_key == "" or not await repository.made_with_key(idempotency_key):
            active_id = await repository.active_for(organisation.id)
            active = await repository.get(active_id, for_update=True) if active_id else None
            new_start = subscription.current_phase.starts_at
            if active is not None and active.ends_at is not None and active.ends_at <= new_start:
                # Canceled at its period end, which has come: it makes way for the new one.
                await repository.save(replace(active, status=SubscriptionStatus.CANCELED))
            elif active is not None:
                raise AlreadyExists(
                    f"organisation {organisation.id} already has an active subscription ({active.id}); change its "
                    "plan or cancel it first",
                    field="organisation_id",
                )
        subscription_id, created = await repository.add(
            subscription, idempotency_key=idempotency_key, fingerprint=fingerprint(request)
        )
        if created:
            await announce_update(uow, outbox, organisation.id, Change.CREATED, subscription_id)
        stored = await repository.get(subscription_id)
    assert stored is not None
    return stored, created


async def get_subscription(uow: InvoicingTransaction, subscription_id: str) -> Subscription:
    if not subscription_id:
        raise InvalidArgument("is required", field="subscription_id")
    async with uow:
        subscription = await uow.subscriptions.get(subscription_id)
    if subscription is None:
        raise NotFound(f"no subscription with id {subscription_id!r}")
    return subscription


async def list_subscriptions(
    uow: InvoicingTransaction, organisation_id: str, page_size: int, page_token: str
) -> tuple[list[Subscription], str]:
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        found = await uow.subscriptions.list(
            organisation_id=organisation_id, limit=size + 1, after=after
        )
    return paging.split_page(found, size)


async def _locked_subscription(repository: Subscriptions, subscription_id: str) -> Subscription:
    """The subscription, locked for the rest of the transaction (changes to one subscription go one at a time)."""
    if not subscription_id:
        raise InvalidArgument("is required", field="subscription_id")
    subscription = await repository.get(subscription_id, for_update=True)
    if subscription is None:
        raise NotFound(f"no subscription with id {subscription_id!r}")
    return subscription


async def change_plan(
    uow: InvoicingTransaction,
    outbox: EventOutbox,
    *,
    subscription_id: str,
    plan_version_id: str = "",
    plan_code: str = "",
    effective_date: str = "",
    now: datetime | None = None,
) -> tuple[Subscription, bool]:
    """Move a subscription to another plan version from the start of ``effective_date`` (today by default) in
    the organisation's zone. Repeating a change already made returns the subscription unchanged (False); a change
    is announced (``subscription.updated``, "plan_changed") in its transaction."""
    now = now or datetime.now(UTC)
    async with uow:
        repository = uow.subscriptions
        subscription = await _locked_subscription(repository, subscription_id)
        organisation = await _organisation(uow, subscription.organisation_id)
        time_zone = organisation.details.timezone
        version = await resolve_version(uow.catalog, plan_version_id, plan_code)
        effective_at = start_of_day(_parse_date(effective_date, "effective_date", time_zone, now), time_zone)
        current = subscription.current_phase
        if current.plan_version_id == version.id and current.starts_at == effective_at:
            return subscription, False
        changed = _changed(subscription, version.id, effective_at, time_zone)
        await repository.save(changed)
        await announce_update(uow, outbox, subscription.organisation_id, Change.PLAN_CHANGED, subscription.id)
    return changed, True


def _changed(subscription: Subscription, plan_version_id: str, effective_at: datetime, time_zone: str) -> Subscription:
    try:
        return subscription_rules.change_plan(subscription, plan_version_id, effective_at, time_zone)
    except InvalidArgument as error:
        # The domain speaks of the instant; the request named a date.
        field = "effective_date" if error.field == "effective_at" else error.field
        raise InvalidArgument(error.message, field=field) from None


async def as_if_changed(
    uow: InvoicingTransaction,
    subscriptions: list[Subscription],
    time_zone: str,
    *,
    subscription_id: str,
    plan_version_id: str = "",
    plan_code: str = "",
    effective_date: str = "",
    now: datetime,
) -> list[Subscription]:
    """An organisation's ``subscriptions`` as :func:`change_plan` would leave them, within an open unit of work
    and storing nothing: the same version lookup, day and rules (a change it would refuse is refused here), so a
    projected invoice can show a change's proration before it is made."""
    if not subscription_id:
        raise InvalidArgument("is required", field="plan_change.subscription_id")
    subscription = next((s for s in subscriptions if s.id == subscription_id), None)
    if subscription is None:
        raise NotFound(f"no subscription with id {subscription_id!r} for this organisation")
    version = await resolve_version(uow.catalog, plan_version_id, plan_code)
    effective_at = start_of_day(_parse_date(effective_date, "effective_date", time_zone, now), time_zone)
    changed = _changed(subscription, version.id, effective_at, time_zone)
    return [changed if s.id == subscription_id else s for s in subscriptions]


async def cancel_subscription(
    uow: InvoicingTransaction,
    outbox: EventOutbox,
    *,
    subscription_id: str,
    at_period_end: bool,
    now: datetime | None = None,
) -> Subscription:
    """Cancel now, or at the end of the current billing period. Asking again for what is already so returns
    the subscription as it is; a cancellation is announced (``subscription.updated``, "canceled") in its
    transaction."""
    now = now or datetime.now(UTC)
    async with uow:
        repository = uow.subscriptions
        subscription = await _locked_subscription(repository, subscription_id)
        if subscription.status is SubscriptionStatus.CANCELED or (at_period_end and subscription.cancel_at_period_end):
            return subscription
        organisation = await _organisation(uow, subscription.organisation_id)
        canceled = subscription_rules.cancel(subscription, at_period_end, now, organisation.details.timezone)
        await repository.save(canceled)
        await announce_update(uow, outbox, subscription.organisation_id, Change.CANCELED, subscription.id)
    return canceled
