from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings

SERVICES = ("ingest", "metering", "invoicing", "payments", "notification")


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    grpc_port: int = 50056
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Protects /api/v1/admin until roles arrive; compare in constant time, never log it.
    admin_token: SecretStr = Field(min_length=16)
    ingest_address: str = "127.0.0.1:50051"
    metering_address: str = "127.0.0.1:50052"
    invoicing_address: str = "127.0.0.1:50053"
    payments_address: str = "127.0.0.1:50054"
    notification_address: str = "127.0.0.1:50055"
    # /healthz gives each service this long to answer before calling it down.
    health_timeout_seconds: float = Field(default=1.0, gt=0)
    # POST /api/v1/events: larger bodies answer 413 before they are read (10,000 events of ~300 bytes fit).
    events_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # How long ingest may take to make a batch durable before the request answers 503.
    events_timeout_seconds: float = Field(default=30.0, gt=0)

    # Verified webhooks stay in the gateway's stream a week (payments applies them within seconds; the week is for
    # replaying after an incident); payments' webhook log keeps each delivery for good.
    stream_max_age_seconds: float | None = Field(default=7 * 86400.0, ge=120)
    # Razorpay's webhook secret (or GATEWAY_RAZORPAY_WEBHOOK_SECRET_FILE); during a rotation the previous one is
    # accepted too, until it is removed. Never logged.
    razorpay_webhook_secret: SecretStr = SecretStr("")
    razorpay_webhook_previous_secret: SecretStr = SecretStr("")
    # Razorpay's webhook bodies are a few KiB; anything past this is refused (413) before it is read.
    webhook_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)

    def razorpay_webhook_secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.razorpay_webhook_secret, self.razorpay_webhook_previous_secret)
                if s.get_secret_value()]

    def service_addresses(self) -> dict[str, str]:
        return {name: getattr(self, f"{name}_address") for name in SERVICES}
