"""python -m services.ingest [serve|migrate]"""

from pathlib import Path

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing_runtime import mesh
from billing_runtime.rate_limit_store import PostgresRateLimits
from billing_runtime.service import Runtime, ServiceDefinition, Wiring, main
from services.ingest.adapters.invoicing_organisations import InvoicingOrganisations
from services.ingest.adapters.metering_quotas import MeteringQuotas
from services.ingest.adapters.tables import metadata
from services.ingest.adapters.unit_of_work import IngestUnitOfWork
from services.ingest.config import IngestSettings
from services.ingest.entrypoints.grpc import IngestServicer, raw_event_handlers
from services.ingest.service.quotas import QuotaEnforcer
from services.ingest.service.rate_limits import EventRateLimiter


def register(runtime: Runtime, settings: IngestSettings) -> Wiring:
    organisations = InvoicingOrganisations(settings.invoicing_address)
    runtime.on_shutdown(organisations.close)
    quotas = None
    if settings.quota_enforcement:
        metering = MeteringQuotas(settings.metering_address, timeout_seconds=settings.quota_check_timeout_seconds)
        runtime.on_shutdown(metering.close)
        quotas = QuotaEnforcer(
            metering,
            ttl_seconds=settings.quota_cache_seconds,
            metric_ttl_seconds=settings.quota_metric_cache_seconds,
            usage_lag_seconds=settings.quota_usage_lag_seconds,
            fail_open=settings.quota_fail_open,
        )
    rates = None
    if settings.rate_limiting:
        rates = EventRateLimiter(
            organisations,
            PostgresRateLimits(runtime.engine, schema="ingest"),
            default=settings.default_event_rate(),
            lease_seconds=settings.rate_limit_lease_seconds,
            plan_ttl_seconds=settings.rate_limit_plan_cache_seconds,
        )
    servicer = IngestServicer(
        runtime, settings, lambda: IngestUnitOfWork(runtime.engine), organisations, quotas, rates
    )
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(servicer, runtime.server)
    name = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name
    runtime.server.add_registered_method_handlers(name, raw_event_handlers(servicer))
    return Wiring([name])


# Who may call what (billing_runtime.mesh): the admin API through the gateway; events from anyone with a key.
ACCESS = mesh.methods("billing.ingest.v1.IngestService", {
    "CreateProject": mesh.EDGE,
    "GetProject": mesh.EDGE,
    "ListProjects": mesh.EDGE,
    "CreateApiKey": mesh.EDGE,
    "ListApiKeys": mesh.EDGE,
    "RevokeApiKey": mesh.EDGE,
    "VerifyApiKey": mesh.EDGE,
    "IngestEvents": mesh.API_KEY,  # billing_client's EventSender, and the gateway's POST /api/v1/events
    "StreamEvents": mesh.API_KEY,
})

DEFINITION = ServiceDefinition(
    name="ingest",
    settings_cls=IngestSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    access=ACCESS,
)

if __name__ == "__main__":
    main(DEFINITION)
