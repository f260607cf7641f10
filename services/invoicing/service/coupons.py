"""Coupons and their redemptions: creating, archiving, applying a coupon to an organisation and removing it.
What a redemption takes off an invoice is the invoice builder's (``domain/discounts.py``); which periods it was
used for is recorded by the period close, with the invoices."""

from __future__ import annotations

from datetime import UTC, datetime

from billing_runtime import paging
from billing_runtime.errors import AlreadyExists, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.invoicing.domain.coupon import (
    Coupon,
    CouponRedemption,
    check_redeemable,
    normalise_code,
    validate_coupon,
    validate_period_key,
)
from services.invoicing.domain.subscription import Subscription, SubscriptionStatus
from services.invoicing.service.billing_inputs import billing_period
from services.invoicing.service.fingerprints import fingerprint
from services.invoicing.service.organisations import existing_organisation
from services.invoicing.service.ports import InvoicingTransaction


async def create_coupon(
    uow: InvoicingTransaction,
    *,
    code: str,
    name: str,
    percent_off: str = "",
    amount_off: str = "",
    currency: str = "",
    duration: str,
    duration_periods: int = 0,
    plan_codes: list[str] | tuple[str, ...] = (),
    max_redemptions: int = 0,
    expires_at: datetime | None = None,
    idempotency_key: str = "",
) -> tuple[Coupon, bool]:
    """Store a coupon. (coupon, created): a repeat with the same idempotency key returns the first; a code already
    taken (by another request) is ALREADY_EXISTS. Plan codes need not exist yet (a coupon may be made ahead of its
    plan); they are checked when the coupon is applied."""
    terms = validate_coupon(
        code=code, name=name, percent_off=percent_off, amount_off=amount_off, currency=currency, duration=duration,
        duration_periods=duration_periods, plan_codes=plan_codes, max_redemptions=max_redemptions,
        expires_at=expires_at,
    )
    async with uow:
        repository = uow.coupons
        await repository.lock_code(terms.code)
        taken_by = await repository.id_for_code(terms.code)
        if taken_by is not None and not await repository.made_with_key(taken_by, idempotency_key):
            raise AlreadyExists(f"a coupon with code {terms.code!r} exists ({taken_by})", field="code")
        coupon_id, created = await repository.add(
            new_id("cpn"), terms, idempotency_key=idempotency_key, fingerprint=fingerprint(terms.to_dict())
        )
        coupon = await repository.get(coupon_id)
    assert coupon is not None
    return coupon, created


async def get_coupon(uow: InvoicingTransaction, *, coupon_id: str = "", code: str = "") -> Coupon:
    """A coupon by id or by code (exactly one)."""
    if bool(coupon_id) == bool(code):
        raise InvalidArgument("give coupon_id or code (one of them)", field="coupon_id")
    async with uow:
        repository = uow.coupons
        if code:
            coupon_id = await repository.id_for_code(normalise_code(code)) or ""
        coupon = await repository.get(coupon_id) if coupon_id else None
    if coupon is None:
        raise NotFound(f"no coupon with code {code!r}" if code else f"no coupon with id {coupon_id!r}")
    return coupon


async def list_coupons(uow: InvoicingTransaction, page_size: int, page_token: str) -> tuple[list[Coupon], str]:
    """One page of coupons (archived ones too), oldest first."""
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        found = await uow.coupons.list(limit=size + 1, after=after)
    return paging.split_page(found, size)


async def archive_coupon(uow: InvoicingTransaction, coupon_id: str, *, now: datetime | None = None) -> Coupon:
    """No new redemptions from now on; organisations that have it keep it. Archiving again changes nothing."""
    if not coupon_id:
        raise InvalidArgument("is required", field="coupon_id")
    async with uow:
        repository = uow.coupons
        coupon = await repository.get(coupon_id, for_update=True)
        if coupon is None:
            raise NotFound(f"no coupon with id {coupon_id!r}")
        if coupon.archived_at is None:
            await repository.archive(coupon_id, now or datetime.now(UTC))
            coupon = await repository.get(coupon_id)
    assert coupon is not None
    return coupon


def _plan_version_at(subscriptions: list[Subscription], now: datetime) -> str | None:
    """The plan version of the organisation's active subscription at ``now`` (its latest phase if none covers
    ``now``: one that starts later), or None without an active subscription."""
    active = next((s for s in subscriptions if s.status is SubscriptionStatus.ACTIVE), None)
    if active is None:
        return None
    covering = [p for p in active.phases if p.starts_at <= now and (p.ends_at is None or now < p.ends_at)]
    return (covering[0] if covering else active.current_phase).plan_version_id


async def apply_coupon(
    uow: InvoicingTransaction,
    *,
    organisation_id: str,
    coupon_code: str,
    start_period_key: str = "",
    idempotency_key: str = "",
    now: datetime | None = None,
) -> tuple[CouponRedemption, bool]:
    """Apply a coupon to an organisation from ``start_period_key`` (YYYY-MM; default its current billing period)
    on: its invoices from that period are discounted for the coupon's duration. (redemption, created); a repeat
    with the same idempotency key returns the first. NOT_FOUND for an unknown organisation or code;
    FAILED_PRECONDITION when the coupon is archived, expired, at its redemption limit, an amount in another
    currency than the organisation's, or for other plans than the organisation's; ALREADY_EXISTS when the
    organisation already has it."""
    now = now or datetime.now(UTC)
    code = normalise_code(coupon_code, "coupon_code")
    if start_period_key:
        validate_period_key(start_period_key)
    # The request as the client sent it: a retry next month must not read as another request.
    request = {"organisation_id": organisation_id, "coupon_code": code, "start_period_key": start_period_key}
    async with uow:
        # One organisation's coupons change one request at a time; the coupon's row serialises its redemptions.
        organisation = await existing_organisation(uow, organisation_id, lock=True)
        repository = uow.coupons
        coupon_id = await repository.id_for_code(code)
        coupon = await repository.get(coupon_id, for_update=True) if coupon_id else None
        if coupon is None:
            raise NotFound(f"no coupon with code {code!r}", field="coupon_code")
        subscriptions = (await uow.subscriptions.for_organisations([organisation.id])).get(organisation.id, [])
        if await repository.redemption_made_with_key(idempotency_key) is None:
            live = await repository.live_redemption(coupon.id, organisation.id)
            if live is not None:
                raise AlreadyExists(
                    f"organisation {organisation.id} already has coupon {code} ({live}); remove it first to apply "
                    "it again",
                    field="coupon_code",
                )
            version_id = _plan_version_at(subscriptions, now)
            version = await uow.catalog.get_version(version_id) if version_id else None
            check_redeemable(coupon, now=now, billing_currency=organisation.details.billing_currency,
                             plan_code=version.plan_code if version else None)
        period_key = start_period_key or billing_period(organisation, subscriptions, at=now).key
        redemption_id, created = await repository.add_redemption(
            new_id("cpr"), coupon.id, organisation.id, period_key, now, idempotency_key=idempotency_key,
            fingerprint=fingerprint(request),
        )
        redemption = await repository.get_redemption(redemption_id)
    assert redemption is not None
    return redemption, created


async def remove_coupon(
    uow: InvoicingTransaction, *, organisation_id: str, redemption_id: str, now: datetime | None = None
) -> CouponRedemption:
    """Take a coupon off an organisation: invoices stored from now on are not discounted by it (a period it was
    already used for keeps its discount when reissued). Removing it again changes nothing."""
    if not redemption_id:
        raise InvalidArgument("is required", field="coupon_redemption_id")
    async with uow:
        organisation = await existing_organisation(uow, organisation_id, lock=True)
        repository = uow.coupons
        redemption = await repository.get_redemption(redemption_id, for_update=True)
        if redemption is None or redemption.organisation_id != organisation.id:
            raise NotFound(f"organisation {organisation.id} has no coupon redemption {redemption_id!r}")
        if redemption.removed_at is None:
            await repository.remove_redemption(redemption_id, now or datetime.now(UTC))
            redemption = await repository.get_redemption(redemption_id)
    assert redemption is not None
    return redemption


async def list_organisation_coupons(uow: InvoicingTransaction, organisation_id: str) -> list[CouponRedemption]:
    """Every coupon the organisation has had (removed and used-up ones too), oldest applied first."""
    async with uow:
        organisation = await existing_organisation(uow, organisation_id)
        found = await uow.coupons.redemptions_of([organisation.id])
    return found.get(organisation.id, [])
