"""python -m services.metering [serve|migrate]"""

import contextlib
import gc
from pathlib import Path

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_runtime import mesh
from billing_runtime.service import Runtime, ServiceDefinition, Wiring, main
from services.metering.adapters.accepted_stream import AcceptedStream
from services.metering.adapters.alerts_unit_of_work import AlertsUnitOfWork
from services.metering.adapters.dead_letters import DeadLetters
from services.metering.adapters.event_store import EventStore
from services.metering.adapters.invoicing_horizon import InvoicingHorizon
from services.metering.adapters.invoicing_organisations import InvoicingOrganisations
from services.metering.adapters.invoicing_plans import InvoicingPlans
from services.metering.adapters.invoicing_projections import InvoicingProjections
from services.metering.adapters.quota_overages import QuotaOverages
from services.metering.adapters.tables import metadata
from services.metering.adapters.usage_reconciliation import ReconciliationRepository
from services.metering.config import MeteringSettings
from services.metering.entrypoints.consumer import STREAM, EventConsumer
from services.metering.entrypoints.grpc import MeteringServicer
from services.metering.entrypoints.max_deliveries import MaxDeliveriesWatcher
from services.metering.service.alert_watch import AlertWatch
from services.metering.service.event_retention import EventRetention
from services.metering.service.quota_book import QuotaBook
from services.metering.service.quotas import QuotaChecks, UsageTotalsReader
from services.metering.service.usage_reconciliation import UsageReconciliation


def register(runtime: Runtime, settings: MeteringSettings) -> Wiring:
    organisations = InvoicingOrganisations(settings.invoicing_address)
    runtime.on_shutdown(organisations.close)
    servicer = MeteringServicer(runtime, organisations)
    plans = InvoicingPlans(settings.invoicing_address, settings.plan_cache_ttl_seconds)
    runtime.on_shutdown(plans.close)
    quota_book = QuotaBook(
        UsageTotalsReader(runtime.uow), QuotaOverages(runtime.engine), max_lag=settings.quota_max_lag_seconds,
        refresh_interval=settings.quota_refresh_interval_seconds, idle_seconds=settings.quota_idle_seconds,
    )
    servicer.serve_quotas(QuotaChecks(plans, quota_book))
    projections = InvoicingProjections(settings.invoicing_address)
    runtime.on_shutdown(projections.close)
    alerts = AlertWatch(lambda: AlertsUnitOfWork(runtime.engine), runtime.outbox, plans, projections, settings)
    servicer.attach_alerts(plans, alerts)
    metering_pb2_grpc.add_MeteringServiceServicer_to_server(servicer, runtime.server)
    horizon = InvoicingHorizon(settings.invoicing_address)
    runtime.on_shutdown(horizon.close)
    retention = EventRetention(
        runtime.engine, horizon.open_from, enabled=settings.retention_enabled,
        archive_dir=settings.retention_archive_dir, min_age_days=settings.retention_min_age_days,
        interval_seconds=settings.retention_interval_seconds,
    )

    async def start_consumer() -> None:
        """The event consumer runs in the background: it waits for ingest's stream without holding up health."""
        # on_ready runs only once NATS is connected (metering's definition uses NATS).
        assert runtime.js is not None and runtime.nats is not None
        # The consumer makes a few objects per event that reference counting frees; with the default generation-0
        # threshold (700) the cyclic collector would also scan them every few hundred events, and re-scan the
        # long-lived start-up objects with each older generation (about a fifth of decoding time). Freeze what
        # start-up made and collect less often.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        dead_letters = DeadLetters(runtime.js, replicas=settings.stream_replicas)
        runtime.spawn(retention.run(), name="metering-event-retention")
        # The rules are known before the first event is stored (after a restart too); failing that, the refresh
        # loop keeps trying and the sweep evaluates what was stored meanwhile.
        with contextlib.suppress(Exception):
            await alerts.refresh()
        runtime.spawn(alerts.run(), name="metering-alerts")
        consumer = EventConsumer(runtime.js, EventStore(runtime.engine), dead_letters, settings, alerts)
        runtime.spawn(consumer.run(), name="metering-event-consumer")
        watcher = MaxDeliveriesWatcher(runtime.nats, runtime.js, dead_letters, STREAM, settings.consumer_durable)
        await watcher.start()
        await plans.watch(runtime.nats)  # drops a cached plan when invoicing announces a change
        runtime.spawn(quota_book.run(), name="metering-quota-refresh")
        reconciliation = UsageReconciliation(
            ReconciliationRepository(runtime.engine), AcceptedStream(runtime.js, settings.consumer_durable), settings
        )
        servicer.attach_reconciliation(reconciliation)
        if settings.usage_reconciliation_enabled:
            runtime.spawn(reconciliation.run_forever(), name="metering-usage-reconciliation")

    return Wiring([metering_pb2.DESCRIPTOR.services_by_name["MeteringService"].full_name], on_ready=start_consumer)


# Who may call what (billing_runtime.mesh): the gateway (and an operator) everything; ingest checks quotas and
# reads metric definitions; invoicing reads usage for invoices (daily usage for the forecast of a projected one).
ACCESS = mesh.methods("billing.metering.v1.MeteringService", {
    "CreateMetric": mesh.EDGE,
    "GetMetric": mesh.EDGE,
    "ListMetrics": mesh.EDGE | {"ingest"},
    "ArchiveMetric": mesh.EDGE,
    "ListObservedMetrics": mesh.EDGE,
    "QueryUsage": mesh.EDGE | {"invoicing"},
    "GetUsageTotals": mesh.EDGE | {"invoicing"},
    "ListEventValues": mesh.EDGE | {"invoicing"},
    "ListDeadLetters": mesh.EDGE,
    "GetDeadLetter": mesh.EDGE,
    "ReplayDeadLetter": mesh.EDGE,
    "DiscardDeadLetter": mesh.EDGE,
    "CreateAlertRule": mesh.EDGE,
    "GetAlertRule": mesh.EDGE,
    "ListAlertRules": mesh.EDGE,
    "DeleteAlertRule": mesh.EDGE,
    "ListFiredAlerts": mesh.EDGE,
    "CheckQuota": mesh.EDGE,  # products ask through the gateway (billing_client.QuotaClient)
    "CheckQuotas": mesh.EDGE | {"ingest"},
    "GetEntitlements": mesh.EDGE,
    "RunUsageReconciliation": mesh.EDGE,
    "GetUsageReconciliation": mesh.EDGE,
    "ListUsageReconciliations": mesh.EDGE,
})

DEFINITION = ServiceDefinition(
    name="metering",
    settings_cls=MeteringSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    # Products call these in front of their own requests; see docs/alerts-and-quotas.md, "Speed".
    hot_methods=frozenset(f"/billing.metering.v1.MeteringService/{name}" for name in ("CheckQuota", "GetEntitlements")),
    access=ACCESS,
)

if __name__ == "__main__":
    main(DEFINITION)
