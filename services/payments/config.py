from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.payments.domain.provider import Backoff


class PaymentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    grpc_port: int = 50054

    # Razorpay API keys (from the environment, or PAYMENTS_RAZORPAY_KEY_SECRET_FILE); never logged. Without
    # them no orders are made: invoices stay payable offline and checkout says online payment is off.
    razorpay_key_id: str = Field(default="", max_length=64)
    razorpay_key_secret: SecretStr = SecretStr("")
    # Razorpay's API, or the local sandbox's (make run points it there unless real keys are configured).
    razorpay_base_url: str = Field(default="https://api.razorpay.com", pattern=r"^https?://")
    # Every call to the provider gives up after this long (the SDK itself has no timeout).
    razorpay_timeout_seconds: float = Field(default=10.0, ge=0.5, le=60.0)
    # The merchant name Checkout shows, and where a browser can pay an order without our own page:
    # "{order_id}" is replaced (the sandbox serves http://127.0.0.1:<port>/checkout/{order_id}).
    merchant_name: str = Field(default="Billing Platform", min_length=1, max_length=100)
    checkout_url_template: str = ""

    # An authorized payment not captured (by the provider's auto-capture) after this long is captured through
    # the API; a payment known only from Checkout's callback is fetched after the same delay.
    capture_after_seconds: float = Field(default=300.0, ge=0.0, le=5 * 24 * 3600.0)
    # Retries of provider calls after an outage: base * factor**n, capped.
    provider_retry_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    provider_retry_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    provider_retry_cap_seconds: float = Field(default=600.0, gt=0, le=86400)
    # How often background work (orders, refunds, payment checks) looks for something due.
    worker_interval_seconds: float = Field(default=1.0, gt=0, le=60)

    # Durable consumers of invoicing's invoice events and of the webhooks the gateway verified.
    invoice_events_durable: str = "payments-invoice-events"
    webhook_events_durable: str = "payments-webhooks"

    def backoff(self) -> Backoff:
        return Backoff(timedelta(seconds=self.provider_retry_base_seconds), self.provider_retry_factor,
                       timedelta(seconds=self.provider_retry_cap_seconds))

    @property
    def capture_after(self) -> timedelta:
        return timedelta(seconds=self.capture_after_seconds)

    @property
    def online(self) -> bool:
        return bool(self.razorpay_key_id and self.razorpay_key_secret.get_secret_value())
