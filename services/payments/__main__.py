"""python -m services.payments [serve|migrate]"""

from pathlib import Path

from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_runtime import mesh
from billing_runtime.logging import get_logger
from billing_runtime.service import Runtime, ServiceDefinition, Wiring, main
from services.payments.adapters.razorpay_api import RazorpayApi
from services.payments.adapters.stripe_api import StripeApi
from services.payments.adapters.tables import metadata
from services.payments.adapters.unit_of_work import PaymentsUnitOfWork
from services.payments.config import PaymentsSettings
from services.payments.domain.payment import Provider
from services.payments.entrypoints import consumers
from services.payments.entrypoints.grpc import Collecting, PaymentsServicer
from services.payments.entrypoints.workers import AutoDebitWork, ProviderWork
from services.payments.service.checkout import Merchant
from services.payments.service.ports import PaymentProvider, Providers

log = get_logger(__name__)


def register(runtime: Runtime, settings: PaymentsSettings) -> Wiring:
    def uow() -> PaymentsUnitOfWork:
        return PaymentsUnitOfWork(runtime.engine, runtime.outbox)

    configured: list[PaymentProvider] = []
    if settings.online:
        razorpay = RazorpayApi(settings.razorpay_key_id, settings.razorpay_key_secret.get_secret_value(),
                               settings.razorpay_base_url, settings.razorpay_timeout_seconds)
        runtime.on_shutdown(razorpay.close)
        configured.append(razorpay)
    if settings.stripe_online:
        stripe = StripeApi(settings.stripe_secret_key.get_secret_value(), settings.stripe_publishable_key,
                           settings.stripe_api_base, settings.stripe_timeout_seconds)
        runtime.on_shutdown(stripe.close)
        configured.append(stripe)
    providers = Providers(*configured, default=settings.default_provider)
    collecting = Collecting(
        providers=providers,
        merchant=Merchant(settings.merchant_name, settings.razorpay_key_id, settings.checkout_url_template),
        key_secret=settings.razorpay_key_secret.get_secret_value(),
        backoff=settings.backoff(),
        capture_after=settings.capture_after,
        dunning=settings.dunning_rules(),
        checkout_url_template=settings.checkout_url_template,
    )
    payments_pb2_grpc.add_PaymentsServiceServicer_to_server(PaymentsServicer(uow, collecting), runtime.server)
    work = ProviderWork(uow, providers, settings.backoff(), settings.capture_after, collecting.dunning,
                        settings.worker_interval_seconds, settings.daily_reconciliation)
    razorpay_api = providers.get(Provider.RAZORPAY)
    debits = settings.autodebit_rules() if razorpay_api is not None else None

    async def on_ready() -> None:
        assert runtime.js is not None
        invoices = consumers.invoice_events(runtime.js, uow, settings.invoice_events_durable, collecting.dunning,
                                            work.wake, settings.default_provider, debits)
        webhooks = consumers.webhook_events(runtime.js, uow, settings.webhook_events_durable, settings.capture_after)
        runtime.spawn(invoices.run(), name="payments-invoice-events")
        runtime.spawn(webhooks.run(), name="payments-webhooks")
        runtime.spawn(work.run(), name="payments-work")
        if razorpay_api is not None and debits is not None and settings.autodebit_worker:
            autodebits = AutoDebitWork(uow, razorpay_api, razorpay_api, debits, settings.backoff(),  # type: ignore[arg-type]
                                       settings.worker_interval_seconds)
            runtime.spawn(autodebits.run(), name="payments-autodebit")
        if not providers:
            log.warning("no Razorpay or Stripe keys configured: no orders are made; invoices are payable offline only")
        else:
            log.info("collecting online", providers=[p.value for p in providers.names],
                     default=settings.default_provider.value)

    return Wiring([payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"].full_name], on_ready)


# Who may call what (billing_runtime.mesh): the gateway (and an operator); no other service calls payments.
ACCESS = mesh.methods("billing.payments.v1.PaymentsService", {
    "GetCheckout": mesh.EDGE,
    "VerifyCheckout": mesh.EDGE,
    "CreatePaymentLink": mesh.EDGE,
    "GetInvoicePayments": mesh.EDGE,
    "GetPayment": mesh.EDGE,
    "ListPayments": mesh.EDGE,
    "RecordOfflinePayment": mesh.EDGE,
    "CreateRefund": mesh.EDGE | {"invoicing"},  # invoicing: a credit note's refund
    "ListRefunds": mesh.EDGE,
    "ListWebhookEvents": mesh.EDGE,
    "GetDunning": mesh.EDGE,
    "GetDunningPolicy": mesh.EDGE,
    "SetDunningPolicy": mesh.EDGE,
    "RunReconciliation": mesh.EDGE,
    "GetReconciliationRun": mesh.EDGE,
    "ListReconciliationRuns": mesh.EDGE,
    "ListDiscrepancies": mesh.EDGE,
    "ResolveDiscrepancy": mesh.EDGE,
    "GetPaymentProvider": mesh.EDGE,
    "SetPaymentProvider": mesh.EDGE,
    "CreateMandate": mesh.EDGE,
    "ListMandates": mesh.EDGE,
    "PauseMandate": mesh.EDGE,
    "CancelMandate": mesh.EDGE,
    "GetAutoDebit": mesh.EDGE,
    "ListAutoDebits": mesh.EDGE,
})

DEFINITION = ServiceDefinition(
    name="payments",
    settings_cls=PaymentsSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    access=ACCESS,
)

if __name__ == "__main__":
    main(DEFINITION)
