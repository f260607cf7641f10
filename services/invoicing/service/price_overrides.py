"""Price overrides: set, clear and list an organisation's own prices on a plan (``domain/price_override.py``).

Each set or clear makes a new version in force from the start of a day in the organisation's zone (today by
default); older versions stay. A version may not start inside a period that already has a live invoice (void it
first), nor before the previous version's start. The organisation's row lock serialises changes, so version
numbers never collide. A change is announced (``subscription.updated``, change "price_override") in its
transaction. A retry with the same idempotency key, or a request that repeats the version in force with the same
start, makes nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from billing_runtime.errors import Conflict, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.invoicing.domain.billing_period import start_of_day
from services.invoicing.domain.organisation import Organisation
from services.invoicing.domain.plan import PlanVersion
from services.invoicing.domain.plan_rules import validate_plan_code
from services.invoicing.domain.price_override import (
    PriceOverride,
    PriceOverrideTerms,
    in_force,
    override_terms_to_dict,
    validate_override_terms,
)
from services.invoicing.domain.subscription import Subscription
from services.invoicing.service.fingerprints import fingerprint
from services.invoicing.service.organisations import existing_organisation
from services.invoicing.service.ports import EventOutbox, InvoicingTransaction
from services.invoicing.service.subscriptions import Change, _parse_date, announce_update


async def _plan(uow: InvoicingTransaction, plan_id: str, plan_code: str) -> PlanVersion:
    """The latest version of the plan named by id or code (exactly one)."""
    if bool(plan_id) == bool(plan_code):
        raise InvalidArgument("give plan_id or plan_code (one of them)", field="plan_id")
    if plan_code:
        validate_plan_code(plan_code, "plan_code")
        plan_id = await uow.catalog.plan_id_for_code(plan_code) or ""
    version = await uow.catalog.latest_version(plan_id) if plan_id else None
    if version is None:
        raise NotFound(f"no plan with code {plan_code!r}" if plan_code else f"no plan with id {plan_id[:64]!r}")
    return version


async def _effective_from(
    uow: InvoicingTransaction, organisation: Organisation, effective_date: str, latest: PriceOverride | None,
    now: datetime,
) -> datetime:
    time_zone = organisation.details.timezone
    effective_from = start_of_day(_parse_date(effective_date, "effective_date", time_zone, now), time_zone)
    invoiced_until = await uow.price_overrides.invoiced_until(organisation.id)
    if invoiced_until is not None and effective_from < invoiced_until:
        raise InvalidArgument(
            f"is {effective_from.isoformat()}, inside a period already invoiced (up to {invoiced_until.isoformat()}); "
            "an override takes effect from a period not invoiced yet (void the invoice to price its period again)",
            field="effective_date",
        )
    if latest is not None and effective_from < latest.effective_from:
        raise InvalidArgument(
            f"is {effective_from.isoformat()}, before version {latest.version} of this override takes effect "
            f"({latest.effective_from.isoformat()}); a new version starts at or after the latest one",
            field="effective_date",
        )
    return effective_from


async def _add_version(
    uow: InvoicingTransaction, outbox: EventOutbox, *, organisation_id: str, plan_id: str, plan_code: str,
    terms: Mapping[str, Any] | None, effective_date: str, idempotency_key: str, now: datetime,
) -> tuple[PriceOverride | None, bool]:
    """A new version with ``terms`` (None: a clearing); (the version, created)."""
    organisation = await existing_organisation(uow, organisation_id, lock=True)
    plan = await _plan(uow, plan_id, plan_code)
    checked = (
        PriceOverrideTerms(currency=plan.terms.currency) if terms is None
        else validate_override_terms(terms, plan.terms)
    )
    request = {"organisation_id": organisation.id, "plan_id": plan.plan_id, "effective_date": effective_date,
               "terms": override_terms_to_dict(checked) if terms is not None else None}
    repeated = await uow.price_overrides.made_with_key(idempotency_key)
    if repeated is not None:
        made, made_fingerprint = repeated
        if made_fingerprint != fingerprint(request):
            raise Conflict("was already used for a different request", field="idempotency_key")
        return made, False
    versions = await uow.price_overrides.of(organisation.id, plan.plan_id)
    latest = versions[-1] if versions else None
    if terms is None and (latest is None or latest.terms.cleared):
        return latest, False  # nothing to clear
    effective_from = await _effective_from(uow, organisation, effective_date, latest, now)
    if latest is not None and latest.terms == checked and latest.effective_from == effective_from:
        return latest, False  # the version in force already says this
    override = PriceOverride(
        id=new_id("pov"), organisation_id=organisation.id, plan_id=plan.plan_id, plan_code=plan.plan_code,
        version=(latest.version + 1) if latest else 1, effective_from=effective_from, terms=checked, created_at=now,
    )
    await uow.price_overrides.add(override, idempotency_key=idempotency_key, fingerprint=fingerprint(request))
    await announce_update(uow, outbox, organisation.id, Change.PRICE_OVERRIDE)
    return override, True


async def set_price_override(
    uow: InvoicingTransaction, outbox: EventOutbox, *, organisation_id: str, terms: Mapping[str, Any],
    plan_id: str = "", plan_code: str = "", effective_date: str = "", idempotency_key: str = "",
    now: datetime | None = None,
) -> tuple[PriceOverride, bool]:
    """Give the organisation its own prices on a plan from ``effective_date`` (YYYY-MM-DD in its zone; today when
    empty): ``terms`` as ``price_override.validate_override_terms`` checks them against the plan's latest version.
    (the version, created)."""
    async with uow:
        override, created = await _add_version(
            uow, outbox, organisation_id=organisation_id, plan_id=plan_id, plan_code=plan_code, terms=terms,
            effective_date=effective_date, idempotency_key=idempotency_key, now=now or datetime.now(UTC),
        )
    assert override is not None
    return override, created


async def clear_price_override(
    uow: InvoicingTransaction, outbox: EventOutbox, *, organisation_id: str, plan_id: str = "",
    plan_code: str = "", effective_date: str = "", idempotency_key: str = "", now: datetime | None = None,
) -> tuple[PriceOverride | None, bool]:
    """The plan's own prices again from ``effective_date``: a version without prices. Clearing what has no
    override, or is cleared already, changes nothing ((the latest version or None, False))."""
    async with uow:
        return await _add_version(
            uow, outbox, organisation_id=organisation_id, plan_id=plan_id, plan_code=plan_code, terms=None,
            effective_date=effective_date, idempotency_key=idempotency_key, now=now or datetime.now(UTC),
        )


async def list_price_overrides(
    uow: InvoicingTransaction, organisation_id: str, *, plan_id: str = "", plan_code: str = ""
) -> list[PriceOverride]:
    """Every version of the organisation's overrides, of one plan when named, by plan code and version."""
    async with uow:
        await existing_organisation(uow, organisation_id)
        if plan_id or plan_code:
            plan_id = (await _plan(uow, plan_id, plan_code)).plan_id
        return await uow.price_overrides.of(organisation_id, plan_id)


async def override_in_force(
    uow: InvoicingTransaction, subscription: Subscription, at: datetime | None = None
) -> PriceOverride | None:
    """The override version in force at ``at`` (now) on the plan of the subscription's phase covering it."""
    at = at or datetime.now(UTC)
    phase = next(
        (p for p in reversed(subscription.phases) if p.starts_at <= at and (p.ends_at is None or at < p.ends_at)),
        None,
    )
    if phase is None:
        return None
    async with uow:
        version = await uow.catalog.get_version(phase.plan_version_id)
        if version is None:
            return None
        overrides = await uow.price_overrides.of(subscription.organisation_id, version.plan_id)
    found = in_force(overrides, version.plan_id, at)
    return found if found is not None and found.terms.currency == version.terms.currency else None
