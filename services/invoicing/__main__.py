"""python -m services.invoicing [serve|migrate]"""

from pathlib import Path

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime.service import Runtime, ServiceDefinition, main
from services.invoicing.adapters.invoice_document import Branding
from services.invoicing.adapters.invoice_html import InvoiceHtmlRenderer
from services.invoicing.adapters.tables import metadata
from services.invoicing.config import InvoicingSettings
from services.invoicing.domain.invoice import Party
from services.invoicing.entrypoints.grpc import InvoicingServicer
from services.invoicing.entrypoints.payment_events import ConsumerSettings, PaymentEventConsumer
from services.invoicing.entrypoints.scheduler import run_scheduler
from services.invoicing.service.billing_inputs import Supplier
from services.invoicing.service.invoice_rendering import InvoiceRendering
from services.invoicing.service.invoice_runs import InvoiceRuns
from services.invoicing.service.period_close import IssuingPolicy, PeriodClose
from services.invoicing.service.settlements import Settlements
from services.metering.client import MeteringUsage


def issuing_policy(settings: InvoicingSettings) -> IssuingPolicy:
    supplier = Party(
        name=settings.supplier_name,
        email=settings.supplier_email,
        address=settings.supplier_address,
        country="IN",
        state_code=settings.supplier_state_code,
        gstin=settings.supplier_gstin,
    )
    return IssuingPolicy(
        supplier=Supplier(party=supplier, state_code=settings.supplier_state_code),
        series=settings.invoice_series,
        payment_terms_days=settings.payment_terms_days,
        time_zone=settings.supplier_time_zone,
    )


def payment_consumer_settings(settings: InvoicingSettings) -> ConsumerSettings:
    return ConsumerSettings(
        durable=settings.payments_consumer_durable,
        ack_wait_seconds=settings.payments_consumer_ack_wait_seconds,
        max_failures=settings.payments_consumer_max_failures,
        fetch_batch=settings.payments_consumer_fetch_batch,
    )


def register(runtime: Runtime) -> list[str]:
    settings = runtime.settings
    assert isinstance(settings, InvoicingSettings)
    metering = MeteringUsage(settings.metering_address)
    runtime.on_shutdown(metering.close)
    close = PeriodClose(runtime.uow, runtime.outbox, metering, issuing_policy(settings))
    runs = InvoiceRuns(
        runtime.uow, close, lambda coro, name: runtime.spawn(coro, name=name),
        batch_size=settings.invoice_run_batch_size,
    )
    rendering = InvoiceRendering(Branding.from_settings(settings), InvoiceHtmlRenderer(settings.invoice_template_dir))
    runtime.extensions["invoice_runs"] = runs
    invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(
        InvoicingServicer(runtime, close, runs, rendering), runtime.server
    )
    return [invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"].full_name]


async def on_ready(runtime: Runtime) -> None:
    """Resume runs a crash interrupted, start the monthly close scheduler and the payment event consumer (which
    waits for payments' stream in the background)."""
    settings = runtime.settings
    assert isinstance(settings, InvoicingSettings)
    runs: InvoiceRuns = runtime.extensions["invoice_runs"]
    await runs.resume_interrupted()
    if settings.scheduler_enabled:
        runtime.spawn(run_scheduler(runs, settings.scheduler_interval_seconds), name="invoice-scheduler")
    assert runtime.js is not None
    consumer = PaymentEventConsumer(
        runtime.js, Settlements(runtime.uow, runtime.outbox), payment_consumer_settings(settings)
    )
    runtime.spawn(consumer.run(), name="payment-event-consumer")


DEFINITION = ServiceDefinition(
    name="invoicing",
    settings_cls=InvoicingSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    on_ready=on_ready,
)

if __name__ == "__main__":
    main(DEFINITION)
