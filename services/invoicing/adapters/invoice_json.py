"""An invoice as the JSON document its row keeps (the ``document`` column), and back, without losing a digit.

Decimals are written as strings and datetimes as ISO 8601, so reading a stored invoice gives back exactly the
invoice that was validated before it was stored."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from services.invoicing.domain.charges import TierAmount
from services.invoicing.domain.invoice import (
    ExchangeRate,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Party,
    TaxKind,
    TaxLine,
    TaxRegime,
)


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _parse_decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _tier_to_dict(tier: TierAmount) -> dict[str, Any]:
    return {
        "description": tier.description,
        "quantity": str(tier.quantity),
        "unit_price": str(tier.unit_price),
        "flat_fee": str(tier.flat_fee),
        "amount": str(tier.amount),
        "from_units": _decimal(tier.from_units),
        "up_to": _decimal(tier.up_to),
    }


def _tier_from_dict(raw: dict[str, Any]) -> TierAmount:
    return TierAmount(
        description=raw["description"],
        quantity=Decimal(raw["quantity"]),
        unit_price=Decimal(raw["unit_price"]),
        flat_fee=Decimal(raw["flat_fee"]),
        amount=Decimal(raw["amount"]),
        from_units=_parse_decimal(raw["from_units"]),
        up_to=_parse_decimal(raw["up_to"]),
    )


def _line_to_dict(line: InvoiceLine) -> dict[str, Any]:
    return {
        "number": line.number,
        "kind": line.kind.value,
        "description": line.description,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "amount_minor": line.amount_minor,
        "metric_code": line.metric_code,
        "charge_model": line.charge_model,
        "plan_version_id": line.plan_version_id,
        "period_start": _time(line.period_start),
        "period_end": _time(line.period_end),
        "gst_rate": str(line.gst_rate),
        "sac_code": line.sac_code,
        "breakdown": [_tier_to_dict(tier) for tier in line.breakdown],
        "coupon_code": line.coupon_code,
        "coupon_redemption_id": line.coupon_redemption_id,
        "adjusts_period_key": line.adjusts_period_key,
        "price_override_id": line.price_override_id,
        "price_override_version": line.price_override_version,
        "credit_grant_id": line.credit_grant_id,
    }


def _line_from_dict(raw: dict[str, Any]) -> InvoiceLine:
    return InvoiceLine(
        number=raw["number"],
        kind=LineKind(raw["kind"]),
        description=raw["description"],
        quantity=Decimal(raw["quantity"]),
        unit_price=Decimal(raw["unit_price"]),
        amount_minor=raw["amount_minor"],
        metric_code=raw["metric_code"],
        charge_model=raw["charge_model"],
        plan_version_id=raw["plan_version_id"],
        period_start=_parse_time(raw["period_start"]),
        period_end=_parse_time(raw["period_end"]),
        gst_rate=Decimal(raw["gst_rate"]),
        sac_code=raw["sac_code"],
        breakdown=tuple(_tier_from_dict(tier) for tier in raw["breakdown"]),
        # Documents stored before coupons existed have no coupon on any line.
        coupon_code=raw.get("coupon_code", ""),
        coupon_redemption_id=raw.get("coupon_redemption_id", ""),
        adjusts_period_key=raw.get("adjusts_period_key", ""),
        # Nor had any line a price override before they existed.
        price_override_id=raw.get("price_override_id", ""),
        price_override_version=raw.get("price_override_version", 0),
        credit_grant_id=raw.get("credit_grant_id", ""),
    )


def _party_to_dict(party: Party) -> dict[str, str]:
    return {
        "name": party.name,
        "email": party.email,
        "address": party.address,
        "country": party.country,
        "state_code": party.state_code,
        "gstin": party.gstin,
    }


def _rate_to_dict(rate: ExchangeRate | None) -> dict[str, str] | None:
    if rate is None:
        return None
    return {
        "base_currency": rate.base_currency,
        "quote_currency": rate.quote_currency,
        "rate": str(rate.rate),
        "source": rate.source,
        "effective_at": rate.effective_at.isoformat(),
    }


def _rate_from_dict(raw: dict[str, str] | None) -> ExchangeRate | None:
    if raw is None:
        return None
    return ExchangeRate(
        base_currency=raw["base_currency"],
        quote_currency=raw["quote_currency"],
        rate=Decimal(raw["rate"]),
        source=raw["source"],
        effective_at=datetime.fromisoformat(raw["effective_at"]),
    )


def to_document(invoice: Invoice) -> dict[str, Any]:
    """What the ``document`` column keeps: everything the header columns do not."""
    return {
        "lines": [_line_to_dict(line) for line in invoice.lines],
        "tax_lines": [
            {"kind": t.kind.value, "rate": str(t.rate), "taxable_minor": t.taxable_minor,
             "amount_minor": t.amount_minor}
            for t in invoice.tax_lines
        ],
        "tax_regime": invoice.tax_regime.value,
        "place_of_supply": invoice.place_of_supply,
        "supplier": _party_to_dict(invoice.supplier),
        "customer": _party_to_dict(invoice.customer),
        "exchange_rate": _rate_to_dict(invoice.exchange_rate),
        "notes": list(invoice.notes),
        "time_zone": invoice.time_zone,
        # Prepaid credit spent after tax (documents stored before credits existed have none).
        "credit_lines": [_line_to_dict(line) for line in invoice.credit_lines],
    }


def from_row(row: Any) -> Invoice:
    """An invoice from an ``invoices`` row (header columns plus the document)."""
    document = row.document
    return Invoice(
        id=row.id,
        organisation_id=row.organisation_id,
        status=InvoiceStatus(row.status),
        currency=row.currency,
        period_start=row.period_start,
        period_end=row.period_end,
        period_key=row.period_key,
        lines=tuple(_line_from_dict(line) for line in document["lines"]),
        tax_lines=tuple(
            TaxLine(TaxKind(t["kind"]), Decimal(t["rate"]), t["taxable_minor"], t["amount_minor"])
            for t in document["tax_lines"]
        ),
        subtotal_minor=row.subtotal_minor,
        tax_minor=row.tax_minor,
        total_minor=row.total_minor,
        tax_regime=TaxRegime(document["tax_regime"]),
        place_of_supply=document["place_of_supply"],
        supplier=Party(**document["supplier"]),
        customer=Party(**document["customer"]),
        exchange_rate=_rate_from_dict(document["exchange_rate"]),
        number=row.number or "",
        issue_date=row.issue_date,
        due_date=row.due_date,
        void_reason=row.void_reason,
        voided_at=row.voided_at,
        replaces_invoice_id=row.replaces_invoice_id or "",
        created_at=row.created_at,
        notes=tuple(document["notes"]),
        time_zone=document.get("time_zone", ""),
        amount_paid_minor=row.amount_paid_minor,
        amount_refunded_minor=row.amount_refunded_minor,
        amount_due_minor=row.amount_due_minor,
        credit_lines=tuple(_line_from_dict(line) for line in document.get("credit_lines", ())),
        amount_credited_minor=row.amount_credited_minor,
    )


def round_trip(invoice: Invoice, document: dict[str, Any] | None = None) -> Invoice:
    """The invoice as it will read back from storage, through JSON text as PostgreSQL keeps it (used to check
    that nothing is lost before storing). ``document``: its ``to_document``, if the caller has it already."""
    document = json.loads(json.dumps(to_document(invoice) if document is None else document))
    return from_row(SimpleNamespace(**header_values(invoice), document=document, created_at=invoice.created_at))


def header_values(invoice: Invoice) -> dict[str, Any]:
    """The ``invoices`` columns of an invoice, without ``document`` and ``created_at``."""
    return {
        "id": invoice.id,
        "organisation_id": invoice.organisation_id,
        "period_key": invoice.period_key,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "status": invoice.status.value,
        "number": invoice.number or None,
        "currency": invoice.currency,
        "subtotal_minor": invoice.subtotal_minor,
        "tax_minor": invoice.tax_minor,
        "total_minor": invoice.total_minor,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "voided_at": invoice.voided_at,
        "void_reason": invoice.void_reason,
        "replaces_invoice_id": invoice.replaces_invoice_id or None,
        "amount_paid_minor": invoice.amount_paid_minor,
        "amount_refunded_minor": invoice.amount_refunded_minor,
        "amount_due_minor": invoice.amount_due_minor,
        "amount_credited_minor": invoice.amount_credited_minor,
    }

