"""SQL of coupons, their redemptions and the billing periods each redemption was used for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing_runtime.idempotency import insert_once
from services.invoicing.adapters.tables import coupon_redemption_periods, coupon_redemptions, coupons
from services.invoicing.domain.coupon import (
    Coupon,
    CouponDuration,
    CouponRedemption,
    CouponTerms,
    Discount,
    DiscountKind,
)


def _times_redeemed(label: str = "times_redeemed") -> sa.Label[Any]:
    """Redemptions ever made of the coupon in the query (removed ones too): what max_redemptions limits."""
    return (
        sa.select(sa.func.count())
        .where(coupon_redemptions.c.coupon_id == coupons.c.id)
        .correlate(coupons)
        .scalar_subquery()
        .label(label)
    )


def _coupon_values(terms: CouponTerms) -> dict[str, Any]:
    discount = terms.discount
    return {
        "code": terms.code, "name": terms.name, "discount_kind": discount.kind.value,
        "percent_off": discount.percent_off, "amount_off": discount.amount_off, "currency": discount.currency or None,
        "duration": terms.duration.value, "duration_periods": terms.duration_periods,
        "plan_codes": list(terms.plan_codes), "max_redemptions": terms.max_redemptions,
        "expires_at": terms.expires_at,
    }


def coupon_from_row(row: sa.Row[Any], prefix: str = "") -> Coupon:
    """A coupon from a row of ``coupons`` (columns named with ``prefix`` when joined) and ``times_redeemed``."""
    def column(name: str) -> Any:
        return getattr(row, prefix + name)

    terms = CouponTerms(
        code=column("code"),
        name=column("name"),
        discount=Discount(
            DiscountKind(column("discount_kind")),
            percent_off=column("percent_off"),
            amount_off=column("amount_off"),
            currency=column("currency") or "",
        ),
        duration=CouponDuration(column("duration")),
        duration_periods=column("duration_periods"),
        plan_codes=tuple(column("plan_codes")),
        max_redemptions=column("max_redemptions"),
        expires_at=column("expires_at"),
    )
    return Coupon(id=column("id"), terms=terms, created_at=column("created_at"), archived_at=column("archived_at"),
                  times_redeemed=column("times_redeemed"))


def _redemptions_query() -> sa.Select[Any]:
    """Redemptions with their coupon (its columns prefixed ``cpn_``) and the periods they were used for."""
    used = (
        sa.select(sa.func.coalesce(sa.func.array_agg(coupon_redemption_periods.c.period_key),
                         sa.literal([], sa.ARRAY(sa.Text))))
        .where(coupon_redemption_periods.c.redemption_id == coupon_redemptions.c.id)
        .correlate(coupon_redemptions)
        .scalar_subquery()
        .label("used_periods")
    )
    coupon_columns = [column.label(f"cpn_{column.name}") for column in coupons.c
                      if column.name not in ("idempotency_key", "request_fingerprint")]
    return (
        sa.select(coupon_redemptions, used, *coupon_columns, _times_redeemed("cpn_times_redeemed"))
        .join(coupons, coupons.c.id == coupon_redemptions.c.coupon_id)
    )


def _redemption_from_row(row: sa.Row[Any]) -> CouponRedemption:
    return CouponRedemption(
        id=row.id,
        coupon=coupon_from_row(row, "cpn_"),
        organisation_id=row.organisation_id,
        start_period_key=row.start_period_key,
        applied_at=row.applied_at,
        removed_at=row.removed_at,
        used_periods=frozenset(row.used_periods),
    )


class CouponRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # Coupons ------------------------------------------------------------------------------------------------

    async def lock_code(self, code: str) -> None:
        """Serialise creates of one coupon code until the transaction ends (a taken code is then a clear error,
        not a unique-index failure)."""
        await self._conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"coupon:{code}", 0)))
        )

    async def id_for_code(self, code: str) -> str | None:
        return (await self._conn.execute(sa.select(coupons.c.id).where(coupons.c.code == code))).scalar_one_or_none()

    async def made_with_key(self, coupon_id: str, idempotency_key: str) -> bool:
        if not idempotency_key:
            return False
        found = await self._conn.execute(
            sa.select(coupons.c.id).where(coupons.c.id == coupon_id, coupons.c.idempotency_key == idempotency_key)
        )
        return found.scalar_one_or_none() is not None

    async def add(
        self, coupon_id: str, terms: CouponTerms, *, idempotency_key: str, fingerprint: str
    ) -> tuple[str, bool]:
        """Insert a coupon, or find the one made with this idempotency key; (coupon id, created)."""
        row, created = await insert_once(
            self._conn, coupons, {"id": coupon_id, **_coupon_values(terms)}, idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        return row.id, created

    async def get(self, coupon_id: str, *, for_update: bool = False) -> Coupon | None:
        """With ``for_update``, the coupon stays locked until the transaction ends (its redemptions are counted
        and added one request at a time)."""
        if for_update:
            await self._conn.execute(sa.select(coupons.c.id).where(coupons.c.id == coupon_id).with_for_update())
        row = (
            await self._conn.execute(sa.select(coupons, _times_redeemed()).where(coupons.c.id == coupon_id))
        ).one_or_none()
        return coupon_from_row(row) if row else None

    async def list(self, *, limit: int, after: str | None) -> list[Coupon]:
        query = sa.select(coupons, _times_redeemed()).order_by(coupons.c.id).limit(limit)
        if after:
            query = query.where(coupons.c.id > after)
        return [coupon_from_row(row) for row in (await self._conn.execute(query)).all()]

    async def archive(self, coupon_id: str, at: datetime) -> None:
        await self._conn.execute(
            sa.update(coupons).where(coupons.c.id == coupon_id, coupons.c.archived_at.is_(None)).values(archived_at=at)
        )

    # Redemptions --------------------------------------------------------------------------------------------

    async def redemption_made_with_key(self, idempotency_key: str) -> str | None:
        """The id of the redemption made with this idempotency key, if any."""
        if not idempotency_key:
            return None
        return (
            await self._conn.execute(
                sa.select(coupon_redemptions.c.id).where(coupon_redemptions.c.idempotency_key == idempotency_key)
            )
        ).scalar_one_or_none()

    async def live_redemption(self, coupon_id: str, organisation_id: str) -> str | None:
        """The id of the organisation's redemption of the coupon that is not removed, if any."""
        return (
            await self._conn.execute(
                sa.select(coupon_redemptions.c.id).where(
                    coupon_redemptions.c.coupon_id == coupon_id,
                    coupon_redemptions.c.organisation_id == organisation_id,
                    coupon_redemptions.c.removed_at.is_(None),
                )
            )
        ).scalar_one_or_none()

    async def add_redemption(
        self, redemption_id: str, coupon_id: str, organisation_id: str, start_period_key: str, applied_at: datetime,
        *, idempotency_key: str, fingerprint: str,
    ) -> tuple[str, bool]:
        """Insert a redemption, or find the one made with this idempotency key; (redemption id, created)."""
        row, created = await insert_once(
            self._conn,
            coupon_redemptions,
            {"id": redemption_id, "coupon_id": coupon_id, "organisation_id": organisation_id,
             "start_period_key": start_period_key, "applied_at": applied_at},
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        return row.id, created

    async def get_redemption(self, redemption_id: str, *, for_update: bool = False) -> CouponRedemption | None:
        query = _redemptions_query().where(coupon_redemptions.c.id == redemption_id)
        if for_update:
            query = query.with_for_update(of=coupon_redemptions)
        row = (await self._conn.execute(query)).one_or_none()
        return _redemption_from_row(row) if row else None

    async def remove_redemption(self, redemption_id: str, at: datetime) -> None:
        await self._conn.execute(
            sa.update(coupon_redemptions)
            .where(coupon_redemptions.c.id == redemption_id, coupon_redemptions.c.removed_at.is_(None))
            .values(removed_at=at)
        )

    async def redemptions_of(self, organisation_ids: Sequence[str]) -> dict[str, list[CouponRedemption]]:
        """Every redemption (removed ones too) of these organisations, oldest applied first, by organisation."""
        if not organisation_ids:
            return {}
        rows = (
            await self._conn.execute(
                _redemptions_query()
                .where(coupon_redemptions.c.organisation_id.in_(list(organisation_ids)))
                .order_by(coupon_redemptions.c.applied_at, coupon_redemptions.c.id)
            )
        ).all()
        found: dict[str, list[CouponRedemption]] = {}
        for row in rows:
            found.setdefault(row.organisation_id, []).append(_redemption_from_row(row))
        return found

    async def lock_redemptions(self, redemption_ids: Iterable[str]) -> dict[str, CouponRedemption]:
        """These redemptions as they are now, locked in id order until the transaction ends (so concurrent
        invoice runs record their periods one at a time and never deadlock)."""
        ids = sorted(set(redemption_ids))
        if not ids:
            return {}
        await self._conn.execute(
            sa.select(coupon_redemptions.c.id)
            .where(coupon_redemptions.c.id.in_(ids))
            .order_by(coupon_redemptions.c.id)
            .with_for_update()
        )
        rows = (await self._conn.execute(_redemptions_query().where(coupon_redemptions.c.id.in_(ids)))).all()
        return {row.id: _redemption_from_row(row) for row in rows}

    async def record_uses(self, uses: Sequence[tuple[str, str, str]]) -> None:
        """(redemption id, period key, invoice id): the period is used, unless it already was."""
        if not uses:
            return
        await self._conn.execute(
            insert(coupon_redemption_periods).on_conflict_do_nothing(),
            [{"redemption_id": r, "period_key": p, "invoice_id": i} for r, p, i in uses],
        )
