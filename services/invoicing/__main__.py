"""python -m services.invoicing [serve|migrate]"""

from pathlib import Path

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime.service import Runtime, ServiceDefinition, main
from services.invoicing.adapters.tables import metadata
from services.invoicing.config import InvoicingSettings
from services.invoicing.entrypoints.grpc import InvoicingServicer


def register(runtime: Runtime) -> list[str]:
    invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(InvoicingServicer(runtime), runtime.server)
    return [invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"].full_name]


DEFINITION = ServiceDefinition(
    name="invoicing",
    settings_cls=InvoicingSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
)

if __name__ == "__main__":
    main(DEFINITION)
