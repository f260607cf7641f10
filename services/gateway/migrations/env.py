from billing_runtime.migrations import run_alembic_env
from services.gateway.adapters.tables import metadata

run_alembic_env(metadata)
