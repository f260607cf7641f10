from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore")

    grpc_port: int = 50055
