"""python -m services.invoicing [serve|migrate]"""

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import mesh
from billing_runtime.service import Runtime, ServiceDefinition, Wiring, main
from services.invoicing.adapters.invoice_document import Branding
from services.invoicing.adapters.invoice_html import InvoiceHtmlRenderer
from services.invoicing.adapters.irp_nic import NicCredentials, NicIrpConnector
from services.invoicing.adapters.metering_usage import MeteringUsage
from services.invoicing.adapters.payment_refunds import PaymentsRefunds
from services.invoicing.adapters.run_locks import PostgresRunLocks
from services.invoicing.adapters.tables import metadata
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.config import InvoicingSettings
from services.invoicing.domain.einvoice import SellerDetails
from services.invoicing.domain.invoice import Party
from services.invoicing.entrypoints.grpc import InvoicingServicer
from services.invoicing.entrypoints.payment_events import ConsumerSettings, PaymentEventConsumer
from services.invoicing.entrypoints.scheduler import run_scheduler
from services.invoicing.service.billing_inputs import Supplier, UsageSource
from services.invoicing.service.credit_notes import CreditNotes
from services.invoicing.service.einvoicing import EinvoicePolicy, EinvoiceRegistrar
from services.invoicing.service.invoice_rendering import InvoiceRendering
from services.invoicing.service.invoice_runs import InvoiceRuns
from services.invoicing.service.period_close import IssuingPolicy, PeriodClose
from services.invoicing.service.settlements import Settlements


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


def einvoice_policy(settings: InvoicingSettings) -> EinvoicePolicy:
    return EinvoicePolicy(
        enabled=settings.einvoice_enabled,
        seller=SellerDetails(
            legal_name=settings.supplier_name,
            address1=settings.einvoice_seller_address1,
            location=settings.einvoice_seller_location,
            pin=settings.einvoice_seller_pin,
            state_code=settings.supplier_state_code,
            email=settings.supplier_email,
        ),
        turnover_band=settings.einvoice_turnover_band,
        time_zone=settings.supplier_time_zone,
    )


def einvoice_registrar(runtime: Runtime, settings: InvoicingSettings) -> EinvoiceRegistrar | None:
    """The registrar and its NIC connector when e-invoicing is on (settings checked complete at start-up)."""
    if not settings.einvoice_enabled:
        return None
    assert settings.irp_public_key_path is not None
    credentials = NicCredentials(
        gstin=settings.supplier_gstin, client_id=settings.irp_client_id, client_secret=settings.irp_client_secret,
        username=settings.irp_username, password=settings.irp_password,
        public_key_pem=settings.irp_public_key_path.read_text(),
    )
    connector = NicIrpConnector(settings.irp_base_url, credentials)
    runtime.on_shutdown(connector.aclose)
    signing = settings.irp_signing_public_key_path.read_text() if settings.irp_signing_public_key_path else None
    return EinvoiceRegistrar(partial(InvoicingUnitOfWork, runtime.engine), connector, einvoice_policy(settings),
                             signing_public_key=signing,
                             retry_first=timedelta(seconds=settings.einvoice_retry_initial_seconds))


def payment_consumer_settings(settings: InvoicingSettings) -> ConsumerSettings:
    return ConsumerSettings(
        durable=settings.payments_consumer_durable,
        ack_wait_seconds=settings.payments_consumer_ack_wait_seconds,
        max_failures=settings.payments_consumer_max_failures,
        fetch_batch=settings.payments_consumer_fetch_batch,
    )


def period_close(runtime: Runtime, settings: InvoicingSettings, usage: UsageSource) -> tuple[PeriodClose, InvoiceRuns]:
    """The period close and the runs that drive it, as the servicer and the scheduler use them (tests build
    their own the same way)."""
    uow = partial(InvoicingUnitOfWork, runtime.engine)
    close = PeriodClose(uow, runtime.outbox, usage, issuing_policy(settings),
                        forecast_window_days=settings.forecast_window_days,
                        grace=timedelta(hours=settings.grace_period_hours),
                        late_window=timedelta(days=settings.late_usage_window_days),
                        einvoicing=einvoice_policy(settings))
    runs = InvoiceRuns(
        uow, close, lambda coro, name: runtime.spawn(coro, name=name),
        locks=PostgresRunLocks(runtime.engine), batch_size=settings.invoice_run_batch_size,
    )
    return close, runs


def register(runtime: Runtime, settings: InvoicingSettings) -> Wiring:
    metering = MeteringUsage(settings.metering_address)
    runtime.on_shutdown(metering.close)
    close, runs = period_close(runtime, settings, metering)
    rendering = InvoiceRendering(Branding.from_settings(settings), InvoiceHtmlRenderer(settings.invoice_template_dir))
    refunds = PaymentsRefunds(settings.payments_address)
    runtime.on_shutdown(refunds.close)
    uow = partial(InvoicingUnitOfWork, runtime.engine)
    credit_notes = CreditNotes(
        uow, runtime.outbox, refunds, time_zone=issuing_policy(settings).time_zone, series=settings.credit_note_series,
        einvoicing=einvoice_policy(settings),
    )
    registrar = einvoice_registrar(runtime, settings)
    invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(
        InvoicingServicer(runtime, uow, close, runs, rendering, credit_notes, registrar),
        runtime.server,
    )

    async def on_ready() -> None:
        """Resume runs a crash interrupted, start the monthly close scheduler and the payment event consumer
        (which waits for payments' stream in the background)."""
        await runs.resume_interrupted()
        if settings.scheduler_enabled:
            runtime.spawn(run_scheduler(runs, settings.scheduler_interval_seconds), name="invoice-scheduler")
        assert runtime.js is not None
        consumer = PaymentEventConsumer(
            runtime.js, Settlements(runtime.uow, runtime.outbox), payment_consumer_settings(settings)
        )
        runtime.spawn(consumer.run(), name="payment-event-consumer")
        if registrar is not None:
            stopping = asyncio.Event()

            async def stop_registrar() -> None:
                stopping.set()

            runtime.on_shutdown(stop_registrar)
            runtime.spawn(registrar.run(stopping, settings.einvoice_interval_seconds), name="einvoice-registrar")

    return Wiring([invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"].full_name], on_ready=on_ready)


# Who may call what (billing_runtime.mesh): the gateway (and an operator) everything; ingest, metering and
# notification look organisations up; metering reads plans in force and projected invoices; notification renders
# invoices for mail.
ACCESS = mesh.methods("billing.invoicing.v1.InvoicingService", {
    "CreateOrganisation": mesh.EDGE,
    "GetOrganisation": mesh.EDGE | {"ingest", "metering", "notification"},
    "ListOrganisations": mesh.EDGE,
    "CreatePlan": mesh.EDGE,
    "CreatePlanVersion": mesh.EDGE,
    "GetPlan": mesh.EDGE,
    "ListPlans": mesh.EDGE,
    "GetPlanVersion": mesh.EDGE,
    "ListPlanVersions": mesh.EDGE,
    "CreateSubscription": mesh.EDGE,
    "GetSubscription": mesh.EDGE,
    "ListSubscriptions": mesh.EDGE,
    "ChangeSubscriptionPlan": mesh.EDGE,
    "CancelSubscription": mesh.EDGE,
    "CreateExchangeRate": mesh.EDGE,
    "ListExchangeRates": mesh.EDGE,
    "QuotePrice": mesh.EDGE,
    "CreateCoupon": mesh.EDGE,
    "GetCoupon": mesh.EDGE,
    "ListCoupons": mesh.EDGE,
    "ArchiveCoupon": mesh.EDGE,
    "ApplyCoupon": mesh.EDGE,
    "RemoveCoupon": mesh.EDGE,
    "ListOrganisationCoupons": mesh.EDGE,
    "GrantCredit": mesh.EDGE,
    "TopUpCredit": mesh.EDGE,
    "VoidCreditGrant": mesh.EDGE,
    "GetCreditBalance": mesh.EDGE | {"metering"},  # low-balance alerts
    "StartInvoiceRun": mesh.EDGE,
    "GetInvoiceRun": mesh.EDGE,
    "ListInvoiceRuns": mesh.EDGE,
    "ListInvoices": mesh.EDGE,
    "GetInvoice": mesh.EDGE,
    "VoidInvoice": mesh.EDGE,
    "ReissueInvoice": mesh.EDGE,
    "RenderInvoice": mesh.EDGE | {"notification"},
    "CreateCreditNote": mesh.EDGE,
    "GetCreditNote": mesh.EDGE,
    "ListCreditNotes": mesh.EDGE,
    "RenderCreditNote": mesh.EDGE | {"notification"},
    "GetProjectedInvoice": mesh.EDGE | {"metering"},
    "ListInvoiceStatusChanges": mesh.EDGE,
    "ListInvoiceSettlements": mesh.EDGE,
    "ListReviewItems": mesh.EDGE,
    "ResolveReviewItem": mesh.EDGE,
    "GetPlanInForce": mesh.EDGE | {"metering", "ingest"},  # ingest: the plan's event rate
    "GetInvoicingHorizon": mesh.EDGE | {"metering"},  # what metering's event retention may archive
    "SetEntitlementOverride": mesh.EDGE,
    "DeleteEntitlementOverride": mesh.EDGE,
    "ListEntitlementOverrides": mesh.EDGE,
    "SetPriceOverride": mesh.EDGE,
    "ListPriceOverrides": mesh.EDGE,
    "DeletePriceOverride": mesh.EDGE,
    "ListEinvoiceRegistrations": mesh.EDGE,
    "RetryEinvoiceRegistration": mesh.EDGE,
})

DEFINITION = ServiceDefinition(
    name="invoicing",
    settings_cls=InvoicingSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    access=ACCESS,
)

if __name__ == "__main__":
    main(DEFINITION)
