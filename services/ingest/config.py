from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    grpc_port: int = 50051
    # Where invoicing (the owner of organisations) answers.
    invoicing_address: str = "127.0.0.1:50053"
