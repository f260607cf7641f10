"""Invoicing's and payments' events as notices (and as closures, for the reminders they stop), and metering's
fired alerts, by subject."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from google.protobuf.message import DecodeError

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.metering.v1 import events_pb2 as metering_events
from billing.metering.v1 import metering_pb2
from billing.payments.v1 import events_pb2 as payments_events
from billing_runtime.timestamps import from_timestamp
from services.notification.domain.alerts import AlertKind, AlertTriggered, FiredAlert, ThresholdBasis
from services.notification.domain.messages import MessageKind
from services.notification.domain.notice import InvoiceFacts, Notice
from services.notification.domain.reminders import Closure, ClosureReason

INVOICE_ISSUED = "billing.invoicing.v1.invoice.issued"
INVOICE_PAID = "billing.invoicing.v1.invoice.paid"
INVOICE_VOIDED = "billing.invoicing.v1.invoice.voided"
PAYMENT_FAILED = "billing.payments.v1.payment.failed"
PAYMENT_RETRY_SCHEDULED = "billing.payments.v1.payment.retry_scheduled"
INVOICE_OVERDUE = "billing.payments.v1.invoice.overdue"
REFUND_PROCESSED = "billing.payments.v1.refund.processed"
ALERT_TRIGGERED = "billing.metering.v1.alert.triggered"

INVOICING_SUBJECTS = [INVOICE_ISSUED, INVOICE_PAID, INVOICE_VOIDED]
AUTODEBIT_LINK_SENT = "billing.payments.v1.autodebit.link_sent"
PAYMENTS_SUBJECTS = [PAYMENT_FAILED, PAYMENT_RETRY_SCHEDULED, INVOICE_OVERDUE, REFUND_PROCESSED, AUTODEBIT_LINK_SENT]
METERING_SUBJECTS = [ALERT_TRIGGERED]

_ALERT_KINDS = {metering_pb2.ALERT_KIND_THRESHOLD: AlertKind.THRESHOLD, metering_pb2.ALERT_KIND_SPIKE: AlertKind.SPIKE,
                metering_pb2.ALERT_KIND_COST: AlertKind.COST,
                metering_pb2.ALERT_KIND_CREDIT_BALANCE: AlertKind.CREDIT_BALANCE}
_BASES = {metering_pb2.THRESHOLD_BASIS_ABSOLUTE: ThresholdBasis.ABSOLUTE,
          metering_pb2.THRESHOLD_BASIS_QUOTA_PERCENT: ThresholdBasis.QUOTA_PERCENT}
_COST_BASES = {metering_pb2.COST_BASIS_TO_DATE: "to_date", metering_pb2.COST_BASIS_FORECAST: "forecast"}


class Undecodable(ValueError):
    """Not the message its subject promises."""


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Decoded:
    """What an event means to notification: mail and webhooks (``notice``), the invoice's facts to keep
    (invoice.issued), and whether it closes the invoice, stopping its reminders (invoice.paid, invoice.voided);
    or a fired alert (alert.triggered), which is about an organisation rather than an invoice."""

    notice: Notice | None
    issued: InvoiceFacts | None = None
    closure: Closure | None = None
    alert: AlertTriggered | None = None


def decode(subject: str, data: bytes) -> Decoded:
    try:
        if subject == ALERT_TRIGGERED:
            return Decoded(None, alert=_alert(metering_events.AlertTriggered.FromString(data)))
        if subject == INVOICE_VOIDED:
            voided = invoicing_events.InvoiceVoided.FromString(data)
            return Decoded(None, closure=Closure(voided.invoice.id, voided.event_id, ClosureReason.VOID))
        notice, issued = _decode(subject, data)
    except DecodeError as error:
        raise Undecodable(f"not a {subject} message: {error}") from None
    closure = (Closure(notice.invoice_id, notice.event_id, ClosureReason.PAID)
               if subject == INVOICE_PAID else None)
    return Decoded(notice, issued, closure)


def _alert(event: metering_events.AlertTriggered) -> AlertTriggered:
    fired, rule = event.alert, event.rule
    kind = _ALERT_KINDS.get(fired.kind) or _ALERT_KINDS.get(rule.kind)
    if kind is None:
        raise Undecodable(f"alert {fired.id!r} has no kind")
    return AlertTriggered(event.event_id, FiredAlert(
        alert_id=fired.id, rule_id=fired.rule_id or rule.id,
        organisation_id=fired.organisation_id or rule.organisation_id, kind=kind,
        rule_name=fired.rule_name or rule.name, project_id=fired.project_id,
        metric_code=fired.metric_code or rule.metric_code, basis=_BASES.get(rule.basis), level=fired.level,
        threshold=fired.threshold, value=fired.value, baseline=fired.baseline,
        currency=fired.currency or rule.currency, event_id=fired.event_id, event_project_id=fired.event_project_id,
        event_time=from_timestamp(fired.event_time), period_start=from_timestamp(fired.period_start),
        period_end=from_timestamp(fired.period_end), fire_time=from_timestamp(fired.fire_time),
        levels=tuple(rule.levels), window_seconds=rule.window_seconds, baseline_seconds=rule.baseline_seconds,
        factor=rule.factor, min_volume=rule.min_volume, budget=rule.budget,
        cost_basis=_COST_BASES.get(rule.cost_basis, "to_date" if kind is AlertKind.COST else "")))


def _decode(subject: str, data: bytes) -> tuple[Notice, InvoiceFacts | None]:
    if subject == INVOICE_ISSUED:
        issued = invoicing_events.InvoiceIssued.FromString(data)
        invoice = issued.invoice
        facts = InvoiceFacts(
            invoice_id=invoice.id, organisation_id=invoice.organisation_id, number=invoice.number,
            currency=invoice.currency, total_minor=invoice.total_minor, billing_email=invoice.customer.email,
            customer_name=invoice.customer.name, issue_date=_date(invoice.issue_date),
            due_date=_date(invoice.due_date), period_key=invoice.period_key)
        # What is due: the total less the prepaid credit spent on it (docs/credits.md).
        return Notice(issued.event_id, MessageKind.INVOICE_ISSUED, invoice.id,
                      amount_minor=invoice.total_minor - invoice.credits_minor), facts
    if subject == INVOICE_PAID:
        paid = invoicing_events.InvoicePaid.FromString(data)
        return Notice(paid.event_id, MessageKind.PAYMENT_RECEIPT, paid.invoice.id,
                      amount_minor=paid.invoice.amount_paid_minor), None
    if subject == PAYMENT_FAILED:
        failed = payments_events.PaymentFailed.FromString(data)
        return Notice(failed.event_id, MessageKind.PAYMENT_FAILED, failed.invoice_id,
                      occurred_at=from_timestamp(failed.failure_time), amount_minor=failed.amount_minor,
                      reason=failed.error_description or failed.error_reason), None
    if subject == PAYMENT_RETRY_SCHEDULED:
        retry = payments_events.PaymentRetryScheduled.FromString(data)
        return Notice(retry.event_id, MessageKind.PAYMENT_RETRY, retry.invoice_id,
                      amount_minor=retry.amount_due_minor, payment_link_url=retry.payment_link_url,
                      attempt_number=retry.attempt_number, max_attempts=retry.max_attempts,
                      next_attempt_at=from_timestamp(retry.next_attempt_time)), None
    if subject == AUTODEBIT_LINK_SENT:
        sent = payments_events.AutoDebitLinkSent.FromString(data)
        return Notice(sent.event_id, MessageKind.AUTODEBIT_LINK, sent.invoice_id, amount_minor=sent.amount_due_minor,
                      payment_link_url=sent.payment_link_url, reason=sent.reason), None
    if subject == INVOICE_OVERDUE:
        overdue = payments_events.InvoiceOverdue.FromString(data)
        return Notice(overdue.event_id, MessageKind.INVOICE_OVERDUE, overdue.invoice_id,
                      occurred_at=from_timestamp(overdue.overdue_time), amount_minor=overdue.amount_due_minor), None
    if subject == REFUND_PROCESSED:
        refund = payments_events.RefundProcessed.FromString(data)
        return Notice(refund.event_id, MessageKind.REFUND_PROCESSED, refund.invoice_id,
                      occurred_at=from_timestamp(refund.process_time), amount_minor=refund.amount_minor,
                      reason=refund.reason), None
    raise Undecodable(f"notification does not consume {subject}")
