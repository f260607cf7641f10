"""The local Stripe's settings: from the command line, from STRIPE_SANDBOX_* variables, or from a test."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalStripeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRIPE_SANDBOX_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port; the URL is printed at start")
    # localstripe accepts any key that starts with sk_ (secret) or pk_ (publishable, for Stripe.js's calls).
    secret_key: str = Field("sk_test_localstripe", pattern=r"^sk_")
    publishable_key: str = Field("pk_test_localstripe", pattern=r"^pk_")
    webhook_url: str | None = Field(None, description="where events are POSTed; none keeps them unsent")
    webhook_secret: str = Field("whsec_localstripe", description="the endpoint secret events are signed with")
    # Stripe sends an event shortly after the API call that caused it, and retries a failed delivery with
    # backoff for up to three days; tests want the same in a fraction of a second.
    webhook_delay_seconds: float = Field(1.0, ge=0, description="localstripe's own wait before sending")
    webhook_retry_initial_seconds: float = Field(5.0, gt=0, description="first retry delay; doubles each attempt")
    webhook_retry_max_seconds: float = Field(300.0, gt=0)
    webhook_max_attempts: int = Field(8, ge=1)
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    state_file: Path | None = Field(None, description="keep customers, intents and refunds here across restarts")
