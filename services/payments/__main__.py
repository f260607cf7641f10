"""python -m services.payments [serve|migrate]"""

from pathlib import Path

from billing_runtime.service import ServiceDefinition, Wiring, main
from services.payments.adapters.tables import metadata
from services.payments.config import PaymentsSettings

DEFINITION = ServiceDefinition(
    name="payments",
    settings_cls=PaymentsSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=lambda runtime, settings: Wiring([]),
)

if __name__ == "__main__":
    main(DEFINITION)
