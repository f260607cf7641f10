from billing_runtime.migrations import run_alembic_env
from services.invoicing.adapters.tables import metadata

run_alembic_env(metadata)
