import base64
import binascii
from datetime import timedelta

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.gateway.domain.networks import Network, parse_networks
from services.gateway.domain.payment_scripts import (
    RAZORPAY,
    RAZORPAY_CHECKOUT_JS,
    STRIPE,
    STRIPE_JS,
    PaymentScript,
    payment_script,
)
from services.gateway.domain.sessions import SessionPolicy

SERVICES = ("ingest", "metering", "invoicing", "payments", "notification")


def _key_bytes(text: str) -> bytes:
    """A secrets key from base64 (standard or URL-safe alphabet); the message never repeats the key."""
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raise ValueError("a key is not base64: give 32 random bytes in base64 (openssl rand -base64 32)") from None
    if len(key) != 32:
        raise ValueError(f"a key is 32 bytes in base64, not {len(key)} (openssl rand -base64 32)")
    return key


class GatewaySettings(ServiceSettings):
    """The HTTP edge's settings (``GATEWAY_`` prefix)."""

    # A refused value is not echoed in the error: it may be a key or a token.
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    grpc_port: int = 50056
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # The bootstrap admin credential (acts as the admin role; docs/security.md); compared in constant time, never
    # logged.
    admin_token: SecretStr = Field(min_length=16)
    # The key people's TOTP secrets are sealed with at rest (AES-256-GCM, docs/security.md, "TOTP secrets at rest"):
    # 32 random bytes in base64 (`openssl rand -base64 32`), or GATEWAY_SECRETS_KEY_FILE. After a rotation the keys
    # before it, comma-separated, still open what they sealed until the housekeeping has sealed it again. Never logged.
    secrets_key: SecretStr
    secrets_previous_keys: SecretStr = SecretStr("")
    # Comma-separated CIDR ranges of the proxies in front of the gateway (a load balancer, an ingress): only from
    # them is X-Forwarded-For believed, for the audit log's source address and the allowlists. Empty: the TCP peer.
    trusted_proxies: str = ""
    # Comma-separated CIDR ranges the admin API answers from (any staff credential); empty: anywhere. A staff token
    # may narrow it further with its own ranges.
    admin_allowed_cidrs: str = ""
    # People's sign-in sessions (docs/security.md): the cookie is Secure unless this is false (make run serves
    # plain http on 127.0.0.1); a session ends after this long unused (sliding) and this long after sign-in.
    cookie_secure: bool = True
    session_idle_seconds: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    session_lifetime_seconds: int = Field(default=12 * 3600, ge=300, le=30 * 86400)
    # Ended sessions (signed out, idle, past their lifetime) stay this long (for looking into an incident), then
    # every replica's housekeeping deletes them.
    session_prune_grace_seconds: int = Field(default=7 * 86400, ge=0, le=365 * 86400)
    # How often each replica's housekeeping runs (and at start-up): pruning ended sessions, sealing TOTP secrets
    # stored in plain text or under a previous key with the current one.
    housekeeping_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # The origin the dashboard is served from (https://billing.example.com) when it is not the Host the gateway
    # is reached at (a proxy rewriting Host); cookie-authenticated writes from any other Origin are refused.
    public_origin: str = ""
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

    # Writes (every method but GET/HEAD) of one staff credential, per minute, counted across every replica in the
    # gateway's database (docs/security.md, "Rate limits"); 0 turns the limit off.
    admin_write_limit_per_minute: int = Field(default=30, ge=0)
    # Failed sign-ins per source address and per email before a lockout, the window they are counted in, and the
    # longest lockout the doubling reaches.
    login_failure_limit: int = Field(default=5, ge=1)
    login_failure_window_seconds: float = Field(default=15 * 60.0, gt=0)
    login_max_backoff_seconds: float = Field(default=3600.0, gt=0)

    # Verified webhooks stay in the gateway's stream a week (payments applies them within seconds; the week is for
    # replaying after an incident); payments' webhook log keeps each delivery for good.
    stream_max_age_seconds: float | None = Field(default=7 * 86400.0, ge=120)
    # Razorpay's webhook secret (or GATEWAY_RAZORPAY_WEBHOOK_SECRET_FILE); during a rotation the previous one is
    # accepted too, until it is removed. Never logged.
    razorpay_webhook_secret: SecretStr = SecretStr("")
    razorpay_webhook_previous_secret: SecretStr = SecretStr("")
    # Stripe's endpoint secret (whsec_..., or GATEWAY_STRIPE_WEBHOOK_SECRET_FILE) and, while we rotate it, the
    # previous one. (While Stripe rolls an endpoint secret it signs with both itself: several v1 values.)
    stripe_webhook_secret: SecretStr = SecretStr("")
    stripe_webhook_previous_secret: SecretStr = SecretStr("")
    # How far a Stripe-Signature's timestamp may be from our clock, either way (Stripe's libraries use 300 s).
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=30, le=3600)
    # Provider webhook bodies are a few KiB; anything past this is refused (413) before it is read.
    webhook_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)
    # The dashboard's Pay when payments has no hosted page for the order (docs/dashboard.md, "Pay"): the invoice's
    # page loads Razorpay's Standard Checkout or Stripe.js from here. The providers' own in production; make run
    # and the tests point them at the Razorpay sandbox and the local Stripe. That page's CSP allows exactly what
    # each needs (domain/payment_scripts.py). Empty: no Pay in the dashboard for that provider's invoices.
    razorpay_checkout_js_url: str = Field(default=RAZORPAY_CHECKOUT_JS, max_length=2048)
    stripe_js_url: str = Field(default=STRIPE_JS, max_length=2048)

    def razorpay_webhook_secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.razorpay_webhook_secret, self.razorpay_webhook_previous_secret)
                if s.get_secret_value()]

    @field_validator("secrets_key", "secrets_previous_keys")
    @classmethod
    def _secrets_keys(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        keys = cls.split_ranges(value.get_secret_value())
        if info.field_name == "secrets_key" and len(keys) != 1:
            raise ValueError("must be one key: 32 random bytes in base64 (openssl rand -base64 32)")
        for key in keys:
            _key_bytes(key)
        return value

    def secrets_keys(self) -> tuple[bytes, list[bytes]]:
        """The current key and the previous ones, as bytes."""
        previous = self.split_ranges(self.secrets_previous_keys.get_secret_value())
        return _key_bytes(self.secrets_key.get_secret_value().strip()), [_key_bytes(key) for key in previous]

    def stripe_webhook_secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.stripe_webhook_secret, self.stripe_webhook_previous_secret)
                if s.get_secret_value()]

    @field_validator("razorpay_checkout_js_url", "stripe_js_url")
    @classmethod
    def _payment_script_url(cls, value: str, info: ValidationInfo) -> str:
        payment_script(RAZORPAY if info.field_name == "razorpay_checkout_js_url" else STRIPE, value)
        return value

    def payment_scripts(self) -> dict[str, PaymentScript]:
        """The scripts Pay may load, by provider name (``razorpay``, ``stripe``); a provider without one has no
        Pay in the dashboard."""
        scripts = {RAZORPAY: payment_script(RAZORPAY, self.razorpay_checkout_js_url),
                   STRIPE: payment_script(STRIPE, self.stripe_js_url)}
        return {provider: script for provider, script in scripts.items() if script is not None}

    @field_validator("trusted_proxies", "admin_allowed_cidrs")
    @classmethod
    def _cidr_ranges(cls, value: str) -> str:
        parse_networks(cls.split_ranges(value))
        return value

    @staticmethod
    def split_ranges(value: str) -> list[str]:
        return [part for part in (p.strip() for p in value.split(",")) if part]

    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.split_ranges(self.trusted_proxies))

    def admin_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.split_ranges(self.admin_allowed_cidrs))

    def session_policy(self) -> SessionPolicy:
        return SessionPolicy(idle=timedelta(seconds=self.session_idle_seconds),
                             lifetime=timedelta(seconds=self.session_lifetime_seconds))

    def service_addresses(self) -> dict[str, str]:
        return {name: getattr(self, f"{name}_address") for name in SERVICES}
