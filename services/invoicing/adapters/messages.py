"""Protobuf <-> domain for organisations and invoices, and invoicing's events."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from billing.invoicing.v1 import events_pb2, invoicing_pb2
from billing_runtime.timestamps import to_timestamp as timestamp
from services.invoicing.adapters.catalog_messages import entitlements_to_pb, plan_version_to_pb, tier_amount_to_pb
from services.invoicing.adapters.price_override_messages import price_override_to_pb
from services.invoicing.domain.invoice import Invoice, InvoiceLine, Party
from services.invoicing.domain.money import decimal_text
from services.invoicing.domain.organisation import Organisation
from services.invoicing.domain.usage_forecast import Forecast
from services.invoicing.service.plan_in_force import PlanInForce

ORGANISATION_CREATED = "billing.invoicing.v1.organisation.created"
INVOICE_ISSUED = "billing.invoicing.v1.invoice.issued"
INVOICE_VOIDED = "billing.invoicing.v1.invoice.voided"
INVOICE_PAID = "billing.invoicing.v1.invoice.paid"
SUBSCRIPTION_UPDATED = "billing.invoicing.v1.subscription.updated"


def organisation_to_pb(organisation: Organisation) -> invoicing_pb2.Organisation:
    details = organisation.details
    return invoicing_pb2.Organisation(
        id=organisation.id,
        name=details.name,
        billing_email=details.billing_email,
        billing_currency=details.billing_currency,
        country=details.country,
        state_code=details.state_code,
        gstin=details.gstin,
        timezone=details.timezone,
        create_time=timestamp(organisation.created_at),
        billing_address=details.billing_address,
    )


def plan_in_force_to_pb(answer: PlanInForce) -> invoicing_pb2.GetPlanInForceResponse:
    message = invoicing_pb2.GetPlanInForceResponse(
        organisation=organisation_to_pb(answer.organisation),
        found=answer.found,
        subscription_id=answer.subscription_id,
        period_start=timestamp(answer.period.start),
        period_end=timestamp(answer.period.end),
    )
    if answer.plan_version is not None:
        message.plan_version.CopyFrom(plan_version_to_pb(answer.plan_version))
    if answer.phase_end is not None:
        message.phase_end.CopyFrom(timestamp(answer.phase_end))
    entitlements_to_pb(message.entitlement_overrides, answer.overrides)
    if answer.price_override is not None:
        message.price_override.CopyFrom(price_override_to_pb(answer.price_override))
    return message


def organisation_created(event_id: str, organisation: Organisation) -> events_pb2.OrganisationCreated:
    return events_pb2.OrganisationCreated(event_id=event_id, organisation=organisation_to_pb(organisation))


def party_to_pb(party: Party) -> invoicing_pb2.Party:
    return invoicing_pb2.Party(
        name=party.name, email=party.email, address=party.address, country=party.country,
        state_code=party.state_code, gstin=party.gstin,
    )


def _line_to_pb(line: InvoiceLine, stamps: dict[datetime, Timestamp] | None = None) -> invoicing_pb2.InvoiceLine:
    message = invoicing_pb2.InvoiceLine(
        number=line.number,
        kind=invoicing_pb2.LineKind.Value(f"LINE_KIND_{line.kind.value.upper()}"),
        description=line.description,
        quantity=decimal_text(line.quantity),
        unit_price=decimal_text(line.unit_price),
        amount_minor=line.amount_minor,
        metric_code=line.metric_code,
        charge_model=line.charge_model,
        plan_version_id=line.plan_version_id,
        gst_rate=decimal_text(line.gst_rate),
        sac_code=line.sac_code,
        breakdown=[tier_amount_to_pb(tier) for tier in line.breakdown],
        coupon_code=line.coupon_code,
        coupon_redemption_id=line.coupon_redemption_id,
        adjusts_period_key=line.adjusts_period_key,
        price_override_id=line.price_override_id,
        price_override_version=line.price_override_version,
        credit_grant_id=line.credit_grant_id,
    )
    stamps = {} if stamps is None else stamps
    if line.period_start is not None:
        message.period_start.CopyFrom(_stamp(line.period_start, stamps))
    if line.period_end is not None:
        message.period_end.CopyFrom(_stamp(line.period_end, stamps))
    return message


def _stamp(value: datetime, stamps: dict[datetime, Timestamp]) -> Timestamp:
    """``value`` as a Timestamp, converted once per ``stamps``: an invoice's lines share a few period bounds.
    Only ever copied from, never changed."""
    stamp = stamps.get(value)
    if stamp is None:
        stamp = stamps[value] = timestamp(value)
    return stamp


def invoice_to_pb(invoice: Invoice, *, with_lines: bool = True, projected: bool = False) -> invoicing_pb2.Invoice:
    message = invoicing_pb2.Invoice(
        id=invoice.id,
        organisation_id=invoice.organisation_id,
        number=invoice.number,
        status=invoicing_pb2.InvoiceStatus.Value(f"INVOICE_STATUS_{invoice.status.value.upper()}"),
        currency=invoice.currency,
        period_key=invoice.period_key,
        period_start=timestamp(invoice.period_start),
        period_end=timestamp(invoice.period_end),
        subtotal_minor=invoice.subtotal_minor,
        tax_minor=invoice.tax_minor,
        total_minor=invoice.total_minor,
        tax_regime=invoicing_pb2.TaxRegime.Value(f"TAX_REGIME_{invoice.tax_regime.value.upper()}"),
        place_of_supply=invoice.place_of_supply,
        supplier=party_to_pb(invoice.supplier),
        customer=party_to_pb(invoice.customer),
        issue_date=invoice.issue_date.isoformat() if invoice.issue_date else "",
        due_date=invoice.due_date.isoformat() if invoice.due_date else "",
        void_reason=invoice.void_reason,
        replaces_invoice_id=invoice.replaces_invoice_id,
        notes=list(invoice.notes),
        projected=projected,
        amount_paid_minor=invoice.amount_paid_minor,
        amount_refunded_minor=invoice.amount_refunded_minor,
        amount_due_minor=invoice.amount_due_minor,
        credits_minor=invoice.credits_minor,
        amount_credited_minor=invoice.amount_credited_minor,
    )
    if with_lines:
        stamps = {invoice.period_start: message.period_start, invoice.period_end: message.period_end}
        message.lines.extend(_line_to_pb(line, stamps) for line in invoice.lines)
        message.credit_lines.extend(_line_to_pb(line, stamps) for line in invoice.credit_lines)
        for tax in invoice.tax_lines:
            message.tax_lines.add(
                kind=invoicing_pb2.TaxKind.Value(f"TAX_KIND_{tax.kind.value}"),
                rate=decimal_text(tax.rate),
                taxable_minor=tax.taxable_minor,
                amount_minor=tax.amount_minor,
            )
    if invoice.exchange_rate is not None:
        rate = invoice.exchange_rate
        message.exchange_rate.CopyFrom(
            invoicing_pb2.ExchangeRate(
                base_currency=rate.base_currency,
                quote_currency=rate.quote_currency,
                rate=decimal_text(rate.rate),
                source=rate.source,
                effective_time=timestamp(rate.effective_at),
            )
        )
    if invoice.voided_at is not None:
        message.void_time.CopyFrom(timestamp(invoice.voided_at))
    if invoice.created_at is not None:
        message.create_time.CopyFrom(timestamp(invoice.created_at))
    return message


def forecast_to_pb(forecast: Forecast) -> invoicing_pb2.InvoiceForecast:
    projection = forecast.projection
    message = invoicing_pb2.InvoiceForecast(
        method=invoicing_pb2.ForecastMethod.Value(f"FORECAST_METHOD_{projection.method.value.upper()}"),
        as_of_time=timestamp(projection.as_of),
        days_in_period=projection.days_in_period,
        days_elapsed=decimal_text(projection.days_elapsed),
        days_observed=projection.days_observed,
        window_days=projection.window_days,
        invoice=invoice_to_pb(forecast.invoice, projected=True),
    )
    segments = projection.billing.segments
    for metric in projection.metrics:
        segment = segments[metric.segment].segment
        message.metrics.add(
            metric_code=metric.metric_code,
            aggregation=metric.aggregation,
            plan_version_id=segment.plan_version_id,
            period_start=timestamp(segment.start),
            period_end=timestamp(segment.end),
            quantity_so_far=decimal_text(metric.so_far),
            projected_quantity=decimal_text(metric.projected),
            daily_rate=decimal_text(metric.daily_rate),
            days_left=decimal_text(metric.days_left),
            extrapolated=metric.extrapolated,
        )
    return message


def invoice_issued(event_id: str, invoice: Invoice) -> events_pb2.InvoiceIssued:
    return events_pb2.InvoiceIssued(event_id=event_id, invoice=invoice_to_pb(invoice))


def invoice_voided(event_id: str, invoice: Invoice) -> events_pb2.InvoiceVoided:
    return events_pb2.InvoiceVoided(event_id=event_id, invoice=invoice_to_pb(invoice))


def invoice_paid(event_id: str, invoice: Invoice) -> events_pb2.InvoicePaid:
    return events_pb2.InvoicePaid(event_id=event_id, invoice=invoice_to_pb(invoice))


def subscription_updated(
    event_id: str, organisation_id: str, subscription_id: str, change: str
) -> events_pb2.SubscriptionUpdated:
    return events_pb2.SubscriptionUpdated(
        event_id=event_id, organisation_id=organisation_id, subscription_id=subscription_id, change=change
    )
