from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings


class PaymentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    grpc_port: int = 50054
