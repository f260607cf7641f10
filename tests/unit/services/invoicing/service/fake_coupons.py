"""Coupons in memory, keeping the PostgreSQL repository's contracts: one coupon per code, idempotency keys, one
live redemption of a coupon per organisation, and one use per (redemption, period)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services.invoicing.domain.coupon import Coupon, CouponRedemption, CouponTerms
from tests.unit.services.invoicing.service.fakes import STORED_AT, Tables, insert_once, page


@dataclass
class RedemptionRow:
    id: str
    coupon_id: str
    organisation_id: str
    start_period_key: str
    applied_at: datetime
    removed_at: datetime | None = None


class FakeCoupons:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def _coupon(self, coupon_id: str) -> Coupon:
        redeemed = sum(1 for r in self._tables.redemptions.values() if r.value.coupon_id == coupon_id)
        return replace(self._tables.coupons[coupon_id].value, times_redeemed=redeemed)

    def _redemption(self, row: RedemptionRow) -> CouponRedemption:
        used = frozenset(period for (redemption_id, period) in self._tables.redemption_periods
                         if redemption_id == row.id)
        return CouponRedemption(row.id, self._coupon(row.coupon_id), row.organisation_id, row.start_period_key,
                                row.applied_at, row.removed_at, used)

    async def lock_code(self, code: str) -> None:
        self._tables.locks.append(f"coupon code {code}")

    async def id_for_code(self, code: str) -> str | None:
        return next((c.value.id for c in self._tables.coupons.values() if c.value.code == code), None)

    async def made_with_key(self, coupon_id: str, idempotency_key: str) -> bool:
        found = self._tables.coupons.get(coupon_id)
        return bool(idempotency_key) and found is not None and found.idempotency_key == idempotency_key

    async def add(
        self, coupon_id: str, terms: CouponTerms, *, idempotency_key: str, fingerprint: str
    ) -> tuple[str, bool]:
        assert await self.id_for_code(terms.code) is None or idempotency_key, "the unique index on code"
        coupon, created = insert_once(self._tables.coupons, coupon_id, Coupon(coupon_id, terms, STORED_AT),
                                      idempotency_key, fingerprint)
        return coupon.id, created

    async def get(self, coupon_id: str, *, for_update: bool = False) -> Coupon | None:
        if for_update:
            self._tables.locks.append(f"coupon {coupon_id}")
        return self._coupon(coupon_id) if coupon_id in self._tables.coupons else None

    async def list(self, *, limit: int, after: str | None) -> list[Coupon]:
        return page((self._coupon(coupon_id) for coupon_id in self._tables.coupons), limit, after)

    async def archive(self, coupon_id: str, at: datetime) -> None:
        stored = self._tables.coupons[coupon_id]
        if stored.value.archived_at is None:
            stored.value = replace(stored.value, archived_at=at)

    async def redemption_made_with_key(self, idempotency_key: str) -> str | None:
        return next((r.value.id for r in self._tables.redemptions.values()
                     if idempotency_key and r.idempotency_key == idempotency_key), None)

    async def live_redemption(self, coupon_id: str, organisation_id: str) -> str | None:
        return next((r.value.id for r in self._tables.redemptions.values()
                     if r.value.coupon_id == coupon_id and r.value.organisation_id == organisation_id
                     and r.value.removed_at is None), None)

    async def add_redemption(
        self, redemption_id: str, coupon_id: str, organisation_id: str, start_period_key: str, applied_at: datetime,
        *, idempotency_key: str, fingerprint: str,
    ) -> tuple[str, bool]:
        row = RedemptionRow(redemption_id, coupon_id, organisation_id, start_period_key, applied_at)
        stored, created = insert_once(self._tables.redemptions, redemption_id, row, idempotency_key, fingerprint)
        return stored.id, created

    async def get_redemption(self, redemption_id: str, *, for_update: bool = False) -> CouponRedemption | None:
        if for_update:
            self._tables.locks.append(f"coupon redemption {redemption_id}")
        found = self._tables.redemptions.get(redemption_id)
        return self._redemption(found.value) if found else None

    async def remove_redemption(self, redemption_id: str, at: datetime) -> None:
        row = self._tables.redemptions[redemption_id].value
        if row.removed_at is None:
            row.removed_at = at

    async def redemptions_of(self, organisation_ids: Sequence[str]) -> dict[str, list[CouponRedemption]]:
        found: dict[str, list[CouponRedemption]] = {}
        rows = sorted((r.value for r in self._tables.redemptions.values()), key=lambda r: (r.applied_at, r.id))
        for row in rows:
            if row.organisation_id in organisation_ids:
                found.setdefault(row.organisation_id, []).append(self._redemption(row))
        return found

    async def lock_redemptions(self, redemption_ids: Iterable[str]) -> dict[str, CouponRedemption]:
        ids = sorted(set(redemption_ids))
        self._tables.locks.extend(f"coupon redemption {i}" for i in ids)
        return {i: self._redemption(self._tables.redemptions[i].value) for i in ids if i in self._tables.redemptions}

    async def record_uses(self, uses: Sequence[tuple[str, str, str]]) -> None:
        for redemption_id, period_key, invoice_id in uses:
            assert invoice_id in self._tables.invoices, "the foreign key to invoices"
            self._tables.redemption_periods.setdefault((redemption_id, period_key), invoice_id)
