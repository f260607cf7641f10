from billing_runtime.migrations import run_alembic_env
from services.payments.adapters.tables import metadata

run_alembic_env(metadata)
