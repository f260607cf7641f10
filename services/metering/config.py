from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings


class MeteringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METERING_", extra="ignore")

    grpc_port: int = 50052
