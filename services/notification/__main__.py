"""python -m services.notification [serve|migrate]"""

from pathlib import Path

from billing_runtime.service import ServiceDefinition, Wiring, main
from services.notification.adapters.tables import metadata
from services.notification.config import NotificationSettings

DEFINITION = ServiceDefinition(
    name="notification",
    settings_cls=NotificationSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=lambda runtime, settings: Wiring([]),
)

if __name__ == "__main__":
    main(DEFINITION)
