"""The sandbox's settings: from the command line, from RAZORPAY_SANDBOX_* variables, or from a test."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAZORPAY_SANDBOX_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port; the URL is printed at start")
    public_url: str | None = Field(
        None, description="URL the checkout links (short_url) point to, when the sandbox sits behind a proxy"
    )
    key_id: str = "rzp_test_sandbox00000001"
    key_secret: str = "sandbox_key_secret"
    merchant_name: str = Field("Billing Platform (sandbox)", description="shown on the checkout page")
    account_id: str = Field("acc_Sandbox0000001", description="the `account_id` of every webhook event")
    webhook_url: str | None = Field(None, description="where events are POSTed; none keeps them in the log only")
    webhook_secret: str = "sandbox_webhook_secret"
    # Razorpay retries failed deliveries for a day; tests want the same behaviour in a fraction of a second.
    webhook_retry_initial_seconds: float = Field(5.0, gt=0, description="first retry delay; doubles each attempt")
    webhook_retry_max_seconds: float = Field(300.0, gt=0)
    webhook_max_attempts: int = Field(8, ge=1)
    webhook_timeout_seconds: float = Field(5.0, gt=0, description="Razorpay waits 5 s for the receiver")
    refund_settle_seconds: float = Field(
        0.0, ge=0, description="delay before a pending refund is processed (or fails, when armed)"
    )
    state_file: Path | None = Field(None, description="persist orders, payments, refunds and links here")
