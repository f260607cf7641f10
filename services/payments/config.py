from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.payments.domain.dunning import DunningPolicy
from services.payments.domain.payment import Provider
from services.payments.domain.provider import Backoff
from services.payments.service.autodebit import AutoDebitRules
from services.payments.service.dunning import DunningRules
from services.payments.service.links import LinkPolicy


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

    # Stripe's secret key (sk_..., from the environment or PAYMENTS_STRIPE_SECRET_KEY_FILE; never logged) and the
    # publishable key (pk_...) Stripe.js uses in the payer's browser. Without the secret key no Stripe orders are
    # made and organisations cannot choose Stripe.
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_publishable_key: str = Field(default="", max_length=255)
    # Stripe's API, or the local Stripe's (make run and the tests point it at localstripe on 127.0.0.1).
    stripe_api_base: str = Field(default="https://api.stripe.com", pattern=r"^https?://")
    stripe_timeout_seconds: float = Field(default=10.0, ge=0.5, le=60.0)
    # The provider of organisations that chose none: razorpay or stripe (it must be configured).
    default_provider: Provider = Provider.RAZORPAY

    # An authorized payment not captured (by the provider's auto-capture) after this long is captured through
    # the API; a payment known only from Checkout's callback is fetched after the same delay.
    capture_after_seconds: float = Field(default=300.0, ge=0.0, le=5 * 24 * 3600.0)
    # Retries of provider calls after an outage: base * factor**n, capped.
    provider_retry_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    provider_retry_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    provider_retry_cap_seconds: float = Field(default=600.0, gt=0, le=86400)
    # How often background work (orders, refunds, payment checks) looks for something due.
    worker_interval_seconds: float = Field(default=1.0, gt=0, le=60)

    # Dunning by default (organisations may have their own): retries after the due date, either on explicit
    # days (JSON list, one per attempt, e.g. [1, 3, 7]) or with backoff (base * factor**n, capped).
    dunning_max_attempts: int = Field(default=3, ge=0, le=20)
    dunning_retry_days: list[int] = Field(default_factory=list)
    dunning_base_seconds: int = Field(default=86400, ge=60, le=120 * 86400)
    dunning_factor: Decimal = Field(default=Decimal(2), ge=1, le=10)
    dunning_cap_seconds: int = Field(default=14 * 86400, ge=60, le=120 * 86400)
    # Due dates are days in this zone (the supplier's, as invoicing issues them).
    dunning_time_zone: str = "Asia/Kolkata"
    # Payment links (for emails and dunning attempts) stay payable this long; where the customer goes after.
    payment_link_valid_days: int = Field(default=7, ge=1, le=180)
    payment_link_callback_url: str = ""

    # Reconcile the previous UTC day with the provider every day (after 01:00 UTC).
    daily_reconciliation: bool = True
    # Charge issued invoices on organisations' mandates in the background (docs/payments.md, "Recurring
    # auto-debit"). Debits are scheduled on issue either way; off, nothing is sent to Razorpay for them (tests
    # drive the worker with their own clock).
    autodebit_worker: bool = True

    # Durable consumers of invoicing's invoice events and of the webhooks the gateway verified.
    invoice_events_durable: str = "payments-invoice-events"
    webhook_events_durable: str = "payments-webhooks"

    def dunning_rules(self) -> DunningRules:
        try:
            ZoneInfo(self.dunning_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"dunning_time_zone: {self.dunning_time_zone!r} is not an IANA time zone") from None
        policy = DunningPolicy(
            max_attempts=self.dunning_max_attempts, retry_days=tuple(self.dunning_retry_days),
            base=timedelta(seconds=self.dunning_base_seconds), factor=float(self.dunning_factor),
            cap=timedelta(seconds=self.dunning_cap_seconds))
        return DunningRules(policy, self.dunning_time_zone,
                            LinkPolicy(timedelta(days=self.payment_link_valid_days), self.payment_link_callback_url))

    def autodebit_rules(self) -> AutoDebitRules:
        """Debits are timed in the zone due dates are days in, and their fallback links live as long as others."""
        rules = self.dunning_rules()
        return AutoDebitRules(rules.zone, rules.links)

    def backoff(self) -> Backoff:
        return Backoff(timedelta(seconds=self.provider_retry_base_seconds), self.provider_retry_factor,
                       timedelta(seconds=self.provider_retry_cap_seconds))

    @property
    def capture_after(self) -> timedelta:
        return timedelta(seconds=self.capture_after_seconds)

    @property
    def online(self) -> bool:
        """Razorpay keys are configured."""
        return bool(self.razorpay_key_id and self.razorpay_key_secret.get_secret_value())

    @property
    def stripe_online(self) -> bool:
        return bool(self.stripe_secret_key.get_secret_value())

    @model_validator(mode="after")
    def _default_provider_is_usable(self) -> "PaymentsSettings":
        if not self.default_provider.online:
            raise ValueError("default_provider: must be razorpay or stripe")
        if self.default_provider is Provider.STRIPE and not self.stripe_online:
            raise ValueError("default_provider: stripe needs PAYMENTS_STRIPE_SECRET_KEY")
        return self
