"""Protobuf <-> domain for payments' contract and events, and the subjects it publishes and consumes.

Event ids are derived from the provider's ids (``payment.captured:pay_...``), so however often a webhook is
delivered or reprocessed, its consequence is one event: the outbox's unique event id and JetStream's
Nats-Msg-Id drop the copies, and consumers deduplicate by it for good.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.payments.v1 import events_pb2, payments_pb2
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp as timestamp
from services.payments.adapters.reconciliation_repository import Discrepancy, Run
from services.payments.domain.dunning import Dunning, DunningPolicy, DunningState
from services.payments.domain.entities import (
    CreditNote,
    Invoice,
    InvoiceState,
    Order,
    OrderStatus,
    Payment,
    PaymentLink,
    Refund,
)
from services.payments.domain.mandate import Debit, DebitState, Mandate, MandateMethod, MandateState
from services.payments.domain.payment import PaymentStatus, Provider
from services.payments.domain.provider import ProviderFailure
from services.payments.domain.refund import RefundStatus

PAYMENT_CAPTURED = "billing.payments.v1.payment.captured"
PAYMENT_FAILED = "billing.payments.v1.payment.failed"
REFUND_CREATED = "billing.payments.v1.refund.created"
REFUND_PROCESSED = "billing.payments.v1.refund.processed"
REFUND_FAILED = "billing.payments.v1.refund.failed"
PAYMENT_RETRY_SCHEDULED = "billing.payments.v1.payment.retry_scheduled"
INVOICE_OVERDUE = "billing.payments.v1.invoice.overdue"
INVOICE_UNCOLLECTIBLE = "billing.payments.v1.invoice.uncollectible"
AUTODEBIT_LINK_SENT = "billing.payments.v1.autodebit.link_sent"

# Consumed: invoicing's invoice events, and the provider webhooks the gateway verified.
INVOICE_ISSUED = "billing.invoicing.v1.invoice.issued"
INVOICE_VOIDED = "billing.invoicing.v1.invoice.voided"
CREDIT_NOTE_ISSUED = "billing.invoicing.v1.credit_note.issued"
WEBHOOK_RECEIVED = "billing.gateway.v1.webhook.received"

_PROVIDERS = {Provider.RAZORPAY: events_pb2.PROVIDER_RAZORPAY, Provider.STRIPE: events_pb2.PROVIDER_STRIPE,
              Provider.OFFLINE: events_pb2.PROVIDER_OFFLINE, Provider.NONE: events_pb2.PROVIDER_NONE}
_PROVIDERS_BY_NUMBER = {number: provider for provider, number in _PROVIDERS.items()}


def provider_to_pb(provider: Provider) -> int:
    return _PROVIDERS[provider]


def provider_from_pb(number: int) -> Provider | None:
    """The provider a request names; None for PROVIDER_UNSPECIFIED (or a number this service does not know)."""
    return _PROVIDERS_BY_NUMBER.get(number)
_PAYMENT_STATUSES = {
    PaymentStatus.CREATED: payments_pb2.PAYMENT_STATUS_CREATED,
    PaymentStatus.AUTHORIZED: payments_pb2.PAYMENT_STATUS_AUTHORIZED,
    PaymentStatus.CAPTURED: payments_pb2.PAYMENT_STATUS_CAPTURED,
    PaymentStatus.FAILED: payments_pb2.PAYMENT_STATUS_FAILED,
}
_REFUND_STATUSES = {
    RefundStatus.REQUESTED: payments_pb2.REFUND_STATUS_REQUESTED,
    RefundStatus.PENDING: payments_pb2.REFUND_STATUS_PENDING,
    RefundStatus.PROCESSED: payments_pb2.REFUND_STATUS_PROCESSED,
    RefundStatus.FAILED: payments_pb2.REFUND_STATUS_FAILED,
}
_ORDER_STATUSES = {
    OrderStatus.PENDING: payments_pb2.ORDER_STATUS_PENDING,
    OrderStatus.CREATED: payments_pb2.ORDER_STATUS_CREATED,
    OrderStatus.PAID: payments_pb2.ORDER_STATUS_PAID,
    OrderStatus.FAILED: payments_pb2.ORDER_STATUS_FAILED,
    OrderStatus.NOT_NEEDED: payments_pb2.ORDER_STATUS_NOT_NEEDED,
    OrderStatus.CANCELLED: payments_pb2.ORDER_STATUS_CANCELLED,
}


def invoice_from_issued(message: invoicing_events.InvoiceIssued) -> Invoice:
    invoice = message.invoice
    return Invoice(
        invoice_id=invoice.id,
        organisation_id=invoice.organisation_id,
        number=invoice.number,
        currency=invoice.currency,
        # What payments collect: the total less the prepaid credit invoicing spent on it (docs/credits.md).
        total_minor=invoice.total_minor - invoice.credits_minor,
        state=InvoiceState.OPEN,
        issue_date=_date(invoice.issue_date),
        due_date=_date(invoice.due_date),
        customer_name=invoice.customer.name,
        customer_email=invoice.customer.email,
    )


def credit_note_from_issued(message: invoicing_events.CreditNoteIssued) -> CreditNote:
    return CreditNote(
        credit_note_id=message.credit_note_id, invoice_id=message.invoice_id, number=message.number,
        applied_to_due_minor=max(message.applied_to_due_minor, 0),
        invoice_amount_due_minor=max(message.invoice_amount_due_minor, 0),
    )


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _time(value: datetime | None):  # noqa: ANN202 - a Timestamp or None, for message constructors
    return timestamp(value) if value is not None else None


def payment_captured(payment: Payment, invoice: Invoice) -> events_pb2.PaymentCaptured:
    return events_pb2.PaymentCaptured(
        event_id=captured_event_id(payment), payment_id=payment.id, invoice_id=invoice.invoice_id,
        organisation_id=invoice.organisation_id, provider=_PROVIDERS[payment.provider],
        provider_payment_id=payment.provider_payment_id or payment.reference, currency=payment.currency,
        amount_minor=payment.amount_minor, method=payment.method, capture_time=_time(payment.captured_at),
        invoice_number=invoice.number,
    )


def captured_event_id(payment: Payment) -> str:
    return f"payment.captured:{payment.provider_payment_id or payment.id}"


def payment_failed(payment: Payment, invoice: Invoice) -> events_pb2.PaymentFailed:
    return events_pb2.PaymentFailed(
        event_id=f"payment.failed:{payment.provider_payment_id or payment.id}", payment_id=payment.id,
        invoice_id=invoice.invoice_id, organisation_id=invoice.organisation_id, provider=_PROVIDERS[payment.provider],
        provider_payment_id=payment.provider_payment_id or "", currency=payment.currency,
        amount_minor=payment.amount_minor, method=payment.method, failure_time=_time(payment.failed_at),
        error_code=payment.error_code, error_description=payment.error_description,
        error_reason=payment.error_reason, invoice_number=invoice.number,
    )


def refund_event(refund: Refund, invoice_number: str, status: RefundStatus, when: datetime):  # noqa: ANN201
    """(subject, event id, message) announcing that ``refund`` reached ``status``."""
    common = dict(
        refund_id=refund.id, payment_id=refund.payment_id, invoice_id=refund.invoice_id,
        organisation_id=refund.organisation_id, provider_refund_id=refund.provider_refund_id or "",
        currency=refund.currency, amount_minor=refund.amount_minor, reason=refund.reason,
        invoice_number=invoice_number,
    )
    if status is RefundStatus.PROCESSED:
        event_id = f"refund.processed:{refund.id}"
        return REFUND_PROCESSED, event_id, events_pb2.RefundProcessed(event_id=event_id, process_time=_time(when),
                                                                      **common)
    if status is RefundStatus.FAILED:
        event_id = f"refund.failed:{refund.id}"
        return REFUND_FAILED, event_id, events_pb2.RefundFailed(event_id=event_id, failure_time=_time(when), **common)
    event_id = f"refund.created:{refund.id}"
    return REFUND_CREATED, event_id, events_pb2.RefundCreated(event_id=event_id, create_time=_time(when), **common)


def provider_error_to_pb(error: ProviderFailure | None) -> payments_pb2.ProviderError | None:
    if error is None:
        return None
    return payments_pb2.ProviderError(http_status=error.http_status, code=error.code, description=error.description,
                                      field=error.field, reason=error.reason, source=error.source, step=error.step)


def order_to_pb(order: Order, invoice: Invoice) -> payments_pb2.Order:
    return payments_pb2.Order(
        invoice_id=order.invoice_id, organisation_id=invoice.organisation_id, invoice_number=invoice.number,
        status=_ORDER_STATUSES[order.status], provider_order_id=order.provider_order_id, currency=order.currency,
        amount_minor=order.amount_minor, status_reason=order.status_reason, error=provider_error_to_pb(order.error),
        create_attempts=order.create_attempts, create_time=_time(order.created_at), provider=_PROVIDERS[order.provider],
    )


def payment_to_pb(payment: Payment) -> payments_pb2.Payment:
    return payments_pb2.Payment(
        id=payment.id, invoice_id=payment.invoice_id or "", organisation_id=payment.organisation_id,
        provider=_PROVIDERS[payment.provider], provider_payment_id=payment.provider_payment_id or "",
        provider_order_id=payment.provider_order_id, status=_PAYMENT_STATUSES[payment.status],
        currency=payment.currency, amount_minor=payment.amount_minor, amount_refunded_minor=payment.refunded_minor,
        method=payment.method, email=payment.email, contact=payment.contact, error_code=payment.error_code,
        error_description=payment.error_description, error_reason=payment.error_reason,
        reference=payment.reference, note=payment.note, create_time=_time(payment.created_at),
        authorize_time=_time(payment.authorized_at), capture_time=_time(payment.captured_at),
        failure_time=_time(payment.failed_at),
    )


def refund_to_pb(refund: Refund) -> payments_pb2.Refund:
    return payments_pb2.Refund(
        id=refund.id, payment_id=refund.payment_id, invoice_id=refund.invoice_id,
        organisation_id=refund.organisation_id, provider_refund_id=refund.provider_refund_id or "",
        status=_REFUND_STATUSES[refund.status], currency=refund.currency, amount_minor=refund.amount_minor,
        reason=refund.reason, idempotency_key=refund.idempotency_key or "", error=provider_error_to_pb(refund.error),
        create_time=_time(refund.created_at), process_time=_time(refund.processed_at),
    )


def link_to_pb(link: PaymentLink) -> payments_pb2.PaymentLink:
    return payments_pb2.PaymentLink(
        id=link.id, invoice_id=link.invoice_id, provider_link_id=link.provider_link_id or "",
        short_url=link.short_url, status=link.status, amount_minor=link.amount_minor, currency=link.currency,
        create_time=_time(link.created_at), expire_time=_time(link.expire_at),
    )


_DUNNING_STATES = {
    DunningState.SCHEDULED: payments_pb2.DUNNING_STATE_SCHEDULED,
    DunningState.RETRYING: payments_pb2.DUNNING_STATE_RETRYING,
    DunningState.STOPPED: payments_pb2.DUNNING_STATE_STOPPED,
    DunningState.EXHAUSTED: payments_pb2.DUNNING_STATE_EXHAUSTED,
}


def policy_to_pb(policy: DunningPolicy) -> payments_pb2.DunningPolicy:
    return payments_pb2.DunningPolicy(
        max_attempts=policy.max_attempts, retry_days=list(policy.retry_days),
        base_seconds=int(policy.base.total_seconds()), factor=format(Decimal(str(policy.factor)).normalize(), "f"),
        cap_seconds=int(policy.cap.total_seconds()))


def policy_from_pb(message: payments_pb2.DunningPolicy) -> DunningPolicy:
    """The policy a request asks for; unset backoff fields take the usual defaults."""
    try:
        factor = Decimal(message.factor or "2")
    except InvalidOperation:
        raise InvalidArgument("must be a decimal number such as 2", field="policy.factor") from None
    if not factor.is_finite():
        raise InvalidArgument("must be a decimal number such as 2", field="policy.factor")
    try:
        return DunningPolicy(
            max_attempts=message.max_attempts, retry_days=tuple(message.retry_days),
            base=timedelta(seconds=message.base_seconds or 86400), factor=float(factor),
            cap=timedelta(seconds=message.cap_seconds or 14 * 86400))
    except InvalidArgument as error:
        raise InvalidArgument(error.message, field=f"policy.{error.field}") from None
    except OverflowError:
        raise InvalidArgument("is too large", field="policy") from None


def dunning_to_pb(dunning: Dunning) -> payments_pb2.Dunning:
    return payments_pb2.Dunning(
        invoice_id=dunning.invoice_id, state=_DUNNING_STATES[dunning.state], attempts=dunning.attempts,
        policy=policy_to_pb(dunning.policy), due_time=_time(dunning.due_at), next_time=_time(dunning.next_at),
        reason=dunning.reason)


_RECONCILIATION_STATES = {"running": payments_pb2.RECONCILIATION_STATE_RUNNING,
                          "completed": payments_pb2.RECONCILIATION_STATE_COMPLETED,
                          "failed": payments_pb2.RECONCILIATION_STATE_FAILED}


def run_to_pb(run: Run) -> payments_pb2.ReconciliationRun:
    return payments_pb2.ReconciliationRun(
        id=run.id, state=_RECONCILIATION_STATES[run.state], start_time=_time(run.start_at), end_time=_time(run.end_at),
        trigger=run.trigger, payments_checked=run.payments_checked, refunds_checked=run.refunds_checked,
        discrepancies=run.discrepancies, error=run.error, create_time=_time(run.created_at),
        finish_time=_time(run.finished_at))


def discrepancy_to_pb(found: Discrepancy) -> payments_pb2.Discrepancy:
    return payments_pb2.Discrepancy(
        id=found.id, run_id=found.run_id,
        kind=payments_pb2.DiscrepancyKind.Value(f"DISCREPANCY_KIND_{found.kind.upper()}"),
        object_type=found.object_type, provider_id=found.provider_id, our_id=found.our_id, detail=found.detail,
        ours=found.ours, theirs=found.theirs, resolved=found.resolved_at is not None, resolution=found.resolution,
        create_time=_time(found.created_at), resolve_time=_time(found.resolved_at))



_MANDATE_METHODS = {MandateMethod.CARD: payments_pb2.MANDATE_METHOD_CARD,
                    MandateMethod.UPI: payments_pb2.MANDATE_METHOD_UPI,
                    MandateMethod.EMANDATE: payments_pb2.MANDATE_METHOD_EMANDATE}
_MANDATE_METHODS_BY_NUMBER = {number: method for method, number in _MANDATE_METHODS.items()}
_MANDATE_STATES = {state: payments_pb2.MandateState.Value(f"MANDATE_STATE_{state.name}") for state in MandateState}
_DEBIT_STATES = {state: payments_pb2.DebitState.Value(f"DEBIT_STATE_{state.name}") for state in DebitState}


def mandate_method_from_pb(number: int) -> str:
    """The method's name, or '' for one not given (the use case names the field)."""
    found = _MANDATE_METHODS_BY_NUMBER.get(number)
    return found.value if found else ""


def mandate_to_pb(mandate: Mandate, key_id: str = "") -> payments_pb2.Mandate:
    """``key_id``: the Razorpay key id Checkout authorises it with (public)."""
    return payments_pb2.Mandate(
        id=mandate.id, organisation_id=mandate.organisation_id, method=_MANDATE_METHODS[mandate.method],
        state=_MANDATE_STATES[mandate.state], max_amount_minor=mandate.max_amount_minor,
        expire_time=_time(mandate.expire_at), customer_id=mandate.customer_id,
        authorisation_order_id=mandate.auth_order_id, token_id=mandate.token_id, checkout_url=mandate.checkout_url,
        reason=mandate.reason, create_time=_time(mandate.created_at), key_id=key_id,
        authorisation_amount_minor=mandate.auth_amount_minor, authorisation_currency=mandate.auth_currency)


def debit_to_pb(debit: Debit) -> payments_pb2.AutoDebit:
    return payments_pb2.AutoDebit(
        invoice_id=debit.invoice_id, mandate_id=debit.mandate_id, method=_MANDATE_METHODS[debit.method],
        state=_DEBIT_STATES[debit.state], currency=debit.currency, amount_minor=debit.amount_minor,
        due_time=_time(debit.due_at), debit_time=_time(debit.debit_at), provider_order_id=debit.provider_order_id,
        provider_payment_id=debit.provider_payment_id, notify_time=_time(debit.notified_at), reason=debit.reason,
        payment_link_url=debit.link_url, attempts=debit.attempts)
