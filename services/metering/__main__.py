"""python -m services.metering [serve|migrate]"""

from pathlib import Path

from billing_runtime.service import ServiceDefinition, main
from services.metering.adapters.tables import metadata
from services.metering.config import MeteringSettings

DEFINITION = ServiceDefinition(
    name="metering",
    settings_cls=MeteringSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=lambda runtime: [],
)

if __name__ == "__main__":
    main(DEFINITION)
