"""The exchange-rate table admins manage: rate, source and the time it takes effect."""

from __future__ import annotations

from datetime import UTC, datetime

from billing_runtime.errors import AlreadyExists
from billing_runtime.ids import new_id
from services.invoicing.domain.exchange import validate_rate
from services.invoicing.domain.money import parse_decimal
from services.invoicing.service.ports import ExchangeRateRecord, InvoicingTransaction


async def create_exchange_rate(
    uow: InvoicingTransaction,
    *,
    base_currency: str,
    quote_currency: str,
    rate: str,
    source: str,
    effective_at: datetime | None = None,
) -> tuple[ExchangeRateRecord, bool]:
    """Record a rate. The same pair and effective time again: the stored row if the rate and source are the same
    (created False), else ALREADY_EXISTS, since a rate invoices may already use is never rewritten."""
    validated = validate_rate(
        base_currency=base_currency,
        quote_currency=quote_currency,
        rate=parse_decimal(rate, "rate"),
        source=source,
        effective_at=effective_at or datetime.now(UTC),
    )
    async with uow:
        row, created = await uow.exchange_rates.add(new_id("fx"), validated)
    if not created and (row.rate != validated.rate or row.source != validated.source):
        raise AlreadyExists(
            f"a {validated.base_currency} to {validated.quote_currency} rate effective at "
            f"{validated.effective_at.isoformat()} exists ({row.rate}, {row.source}); record the new rate with a "
            "later effective time",
            field="effective_time",
        )
    return row, created


async def list_exchange_rates(
    uow: InvoicingTransaction, *, base_currency: str = "", quote_currency: str = ""
) -> list[ExchangeRateRecord]:
    async with uow:
        return await uow.exchange_rates.list(
            base_currency=base_currency.strip().upper(), quote_currency=quote_currency.strip().upper()
        )
