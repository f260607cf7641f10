from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings


class InvoicingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICING_", extra="ignore")

    grpc_port: int = 50053
