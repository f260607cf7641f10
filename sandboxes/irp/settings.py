"""The IRP sandbox's settings: from the command line, from IRP_SANDBOX_* variables, or from a test."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IrpSandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IRP_SANDBOX_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port; the URL is printed at start")
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    username: str = "sandbox-user"
    password: str = "sandbox-password"
    # NIC gives each API user one public key to encrypt the auth payload and signs with another; so does this.
    key_dir: Path | None = Field(
        None, description="keeps auth.pem and signing.pem (made on first start); none makes fresh keys per run"
    )
    token_minutes: int = Field(360, ge=1, description="AuthToken lifetime; NIC's is 6 hours")
    cancel_hours: int = Field(24, ge=1, description="an IRN may be cancelled this long after its AckDt")
    fetch_days: int = Field(2, ge=1, description="Get IRN answers 2283 for IRNs older than this")
    state_file: Path | None = Field(None, description="persist registered IRNs here")
