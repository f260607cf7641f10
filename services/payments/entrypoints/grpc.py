"""PaymentsService over gRPC: protobuf in, use case, protobuf out. Nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing.payments.v1 import events_pb2, payments_pb2, payments_pb2_grpc
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.payments.adapters import messages
from services.payments.domain.payment import Provider
from services.payments.domain.provider import Backoff
from services.payments.service import (
    checkout,
    choices,
    dunning,
    links,
    mandates,
    offline,
    queries,
    reconciliation,
    refunds,
)
from services.payments.service.ports import Providers, UnitFactory


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Collecting:
    """How payments collects: the configured providers (none when no keys are configured) and its policies."""

    providers: Providers
    merchant: checkout.Merchant
    key_secret: str
    backoff: Backoff
    capture_after: timedelta
    dunning: dunning.DunningRules
    checkout_url_template: str = ""

    def online(self) -> Providers:
        if not self.providers:
            raise FailedPrecondition("online payments are not configured (no Razorpay or Stripe keys): pay offline")
        return self.providers


class PaymentsServicer(payments_pb2_grpc.PaymentsServiceServicer):
    def __init__(self, uow: UnitFactory, collecting: Collecting) -> None:
        self._uow = uow
        self._collecting = collecting

    async def GetCheckout(self, request, context):  # noqa: N802 - gRPC method names
        found = await checkout.get_checkout(self._uow, self._collecting.online(), self._collecting.merchant,
                                            request.invoice_id)
        invoice, order = found.invoice, found.order
        return payments_pb2.GetCheckoutResponse(checkout=payments_pb2.Checkout(
            provider=messages.provider_to_pb(order.provider), client_secret=found.client_secret,
            key_id=found.key_id, order_id=order.provider_order_id, amount_minor=order.amount_minor,
            currency=order.currency, name=found.name, description=found.description,
            prefill_name=invoice.customer_name, prefill_email=invoice.customer_email, invoice_id=invoice.invoice_id,
            invoice_number=invoice.number, checkout_url=found.checkout_url,
        ))

    async def VerifyCheckout(self, request, context):  # noqa: N802
        self._collecting.providers.required(Provider.RAZORPAY)  # Checkout's callback is Razorpay's
        payment = await checkout.verify_checkout(
            self._uow, self._collecting.key_secret,
            checkout.CheckoutCallback(request.invoice_id, request.razorpay_order_id, request.razorpay_payment_id,
                                      request.razorpay_signature),
            _now(),
        )
        return payments_pb2.VerifyCheckoutResponse(payment=messages.payment_to_pb(payment))

    async def CreatePaymentLink(self, request, context):  # noqa: N802
        link, created = await links.open_link(self._uow, self._collecting.providers, request.invoice_id,
                                              self._collecting.dunning.links, _now())
        return payments_pb2.CreatePaymentLinkResponse(payment_link=messages.link_to_pb(link), created=created)

    async def GetInvoicePayments(self, request, context):  # noqa: N802
        found = await queries.invoice_collection(self._uow, request.invoice_id)
        invoice = found.invoice
        return payments_pb2.GetInvoicePaymentsResponse(
            order=messages.order_to_pb(found.order, invoice) if found.order else None,
            payments=[messages.payment_to_pb(p) for p in found.payments],
            refunds=[messages.refund_to_pb(r) for r in found.refunds],
            payment_links=[messages.link_to_pb(link) for link in found.links],
            currency=invoice.currency, total_minor=invoice.total_minor, amount_captured_minor=invoice.captured_minor,
            amount_refunded_minor=found.refunded_minor,
            due_date=invoice.due_date.isoformat() if invoice.due_date else "",
            amount_credited_minor=invoice.credited_minor, amount_due_minor=invoice.collecting_minor,
        )

    async def GetPayment(self, request, context):  # noqa: N802
        payment, its_refunds = await queries.get_payment(self._uow, request.payment_id)
        return payments_pb2.GetPaymentResponse(payment=messages.payment_to_pb(payment),
                                               refunds=[messages.refund_to_pb(r) for r in its_refunds])

    async def ListPayments(self, request, context):  # noqa: N802
        page, token = await queries.list_payments(self._uow, request.organisation_id, request.invoice_id,
                                                  request.page_size, request.page_token)
        return payments_pb2.ListPaymentsResponse(payments=[messages.payment_to_pb(p) for p in page],
                                                 next_page_token=token)

    async def RecordOfflinePayment(self, request, context):  # noqa: N802
        received = from_timestamp(request.receive_time, "receive_time") if request.HasField("receive_time") else None
        payment, created = await offline.record_offline_payment(
            self._uow,
            offline.OfflinePayment(request.invoice_id, request.amount_minor, request.currency, request.method,
                                   request.reference, request.note, received),
            _now(),
        )
        return payments_pb2.RecordOfflinePaymentResponse(payment=messages.payment_to_pb(payment), created=created)

    async def CreateRefund(self, request, context):  # noqa: N802
        refund, created = await refunds.create_refund(
            self._uow, self._collecting.providers,
            refunds.CreateRefund(request.payment_id, request.amount_minor, request.reason, request.idempotency_key),
            _now(), self._collecting.backoff, clock=_now,
        )
        return payments_pb2.CreateRefundResponse(refund=messages.refund_to_pb(refund), created=created)

    async def ListRefunds(self, request, context):  # noqa: N802
        page, token = await queries.list_refunds(self._uow, request.payment_id, request.invoice_id,
                                                 request.page_size, request.page_token)
        return payments_pb2.ListRefundsResponse(refunds=[messages.refund_to_pb(r) for r in page],
                                                next_page_token=token)

    async def ListWebhookEvents(self, request, context):  # noqa: N802
        page, token = await queries.list_webhook_events(self._uow, request.event_type, request.page_size,
                                                        request.page_token)
        return payments_pb2.ListWebhookEventsResponse(
            events=[payments_pb2.WebhookEvent(
                event_id=e.event_id, provider=events_pb2.Provider.Value(f"PROVIDER_{e.provider.upper()}"),
                event_type=e.event_type, receive_time=to_timestamp(e.received_at),
                process_time=to_timestamp(e.processed_at) if e.processed_at else None, outcome=e.outcome,
            ) for e in page],
            next_page_token=token,
        )

    async def GetDunning(self, request, context):  # noqa: N802
        found = await dunning.get(self._uow, request.invoice_id)
        return payments_pb2.GetDunningResponse(dunning=messages.dunning_to_pb(found))

    async def GetDunningPolicy(self, request, context):  # noqa: N802
        policy, own = await dunning.policy(self._uow, self._collecting.dunning, request.organisation_id)
        return payments_pb2.GetDunningPolicyResponse(policy=messages.policy_to_pb(policy), own=own)

    async def SetDunningPolicy(self, request, context):  # noqa: N802
        new = None if request.clear else messages.policy_from_pb(request.policy)
        policy, own = await dunning.set_policy(self._uow, self._collecting.dunning, request.organisation_id, new)
        return payments_pb2.SetDunningPolicyResponse(policy=messages.policy_to_pb(policy), own=own)

    async def RunReconciliation(self, request, context):  # noqa: N802
        for name in ("start_time", "end_time"):
            if not request.HasField(name):
                raise InvalidArgument("is required", field=name)
        run, found = await reconciliation.run(self._uow, self._collecting.online(),
                                              from_timestamp(request.start_time, "start_time"),
                                              from_timestamp(request.end_time, "end_time"), "manual", _now())
        return payments_pb2.RunReconciliationResponse(run=messages.run_to_pb(run),
                                                      discrepancies=[messages.discrepancy_to_pb(d) for d in found])

    async def GetReconciliationRun(self, request, context):  # noqa: N802
        run, found = await reconciliation.get_run(self._uow, request.run_id)
        return payments_pb2.GetReconciliationRunResponse(run=messages.run_to_pb(run),
                                                         discrepancies=[messages.discrepancy_to_pb(d) for d in found])

    async def ListReconciliationRuns(self, request, context):  # noqa: N802
        page, token = await reconciliation.list_runs(self._uow, request.page_size, request.page_token)
        return payments_pb2.ListReconciliationRunsResponse(runs=[messages.run_to_pb(r) for r in page],
                                                           next_page_token=token)

    async def ListDiscrepancies(self, request, context):  # noqa: N802
        page, token = await reconciliation.list_discrepancies(self._uow, request.include_resolved,
                                                              request.page_size, request.page_token)
        return payments_pb2.ListDiscrepanciesResponse(discrepancies=[messages.discrepancy_to_pb(d) for d in page],
                                                      next_page_token=token)

    async def ResolveDiscrepancy(self, request, context):  # noqa: N802
        found = await reconciliation.resolve(self._uow, request.discrepancy_id, request.resolution)
        return payments_pb2.ResolveDiscrepancyResponse(discrepancy=messages.discrepancy_to_pb(found))

    async def GetPaymentProvider(self, request, context):  # noqa: N802
        providers = self._collecting.providers
        provider, own = await choices.get_choice(self._uow, providers, request.organisation_id)
        return payments_pb2.GetPaymentProviderResponse(
            provider=messages.provider_to_pb(provider), own=own,
            available=[messages.provider_to_pb(name) for name in providers.names])

    async def SetPaymentProvider(self, request, context):  # noqa: N802
        chosen = None
        if not request.clear:
            chosen = messages.provider_from_pb(request.provider)
            if chosen is None:
                raise InvalidArgument("must be razorpay or stripe", field="provider")
        provider, own = await choices.set_choice(self._uow, self._collecting.providers, request.organisation_id,
                                                 chosen)
        return payments_pb2.SetPaymentProviderResponse(provider=messages.provider_to_pb(provider), own=own)


    # ---- recurring mandates (docs/payments.md, "Recurring auto-debit")
    def _recurring(self):  # noqa: ANN202 - the Razorpay adapter, which makes tokens and recurring debits
        return self._collecting.providers.required(Provider.RAZORPAY)

    def _mandate(self, mandate):  # noqa: ANN001, ANN202 - a domain Mandate in, its protobuf out
        # With Razorpay's key id (public), which Checkout.js authorises it with where there is no hosted page.
        razorpay = self._collecting.providers.get(Provider.RAZORPAY)
        return messages.mandate_to_pb(mandate, razorpay.key_id if razorpay is not None else "")

    async def CreateMandate(self, request, context):  # noqa: N802
        expire_at = from_timestamp(request.expire_time, "expire_time") if request.HasField("expire_time") else None
        mandate, created = await mandates.create(
            self._uow, self._recurring(),
            mandates.CreateMandate(request.organisation_id, messages.mandate_method_from_pb(request.method),
                                   request.max_amount_minor, request.customer_name, request.customer_email,
                                   request.customer_contact, expire_at, request.idempotency_key),
            self._collecting.checkout_url_template, _now())
        return payments_pb2.CreateMandateResponse(mandate=self._mandate(mandate), created=created)

    async def ListMandates(self, request, context):  # noqa: N802
        found = await mandates.list_mandates(self._uow, request.organisation_id, request.include_finished)
        return payments_pb2.ListMandatesResponse(mandates=[self._mandate(m) for m in found])

    async def PauseMandate(self, request, context):  # noqa: N802
        mandate = await mandates.pause(self._uow, self._recurring(), request.mandate_id, request.organisation_id)
        return payments_pb2.PauseMandateResponse(mandate=self._mandate(mandate))

    async def CancelMandate(self, request, context):  # noqa: N802
        mandate = await mandates.cancel(self._uow, self._recurring(), request.mandate_id, request.organisation_id)
        return payments_pb2.CancelMandateResponse(mandate=self._mandate(mandate))

    async def GetAutoDebit(self, request, context):  # noqa: N802
        if not request.invoice_id:
            raise InvalidArgument("is required", field="invoice_id")
        found = await mandates.debit_of(self._uow, request.invoice_id)
        if found is None:
            raise NotFound(f"invoice {request.invoice_id!r} has no debit on a mandate")
        return payments_pb2.GetAutoDebitResponse(debit=messages.debit_to_pb(found))

    async def ListAutoDebits(self, request, context):  # noqa: N802
        found = await mandates.debits(self._uow, request.mandate_id, request.organisation_id)
        return payments_pb2.ListAutoDebitsResponse(debits=[messages.debit_to_pb(d) for d in found])
