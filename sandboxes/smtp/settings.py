"""The mailbox's settings: from the command line, from SMTP_SANDBOX_* variables, or from a test."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MailboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMTP_SANDBOX_", extra="forbid")

    host: str = Field("127.0.0.1", description="bind address of both the SMTP server and the web page")
    smtp_port: int = Field(0, ge=0, le=65535, description="0 picks a free port; the address is printed at start")
    http_port: int = Field(0, ge=0, le=65535, description="0 picks a free port; the URL is printed at start")
    store_dir: Path | None = Field(
        None, description="keep every message here as .eml plus index.json; none keeps them in memory only"
    )
    max_messages: int = Field(
        1000, ge=1, description="the oldest messages are dropped beyond this, so a long-running stack stays small"
    )
    max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="larger messages are refused with 552")
    # Without credentials any AUTH is accepted and none is required, like the mail catchers people know; with
    # them, AUTH is required and only these pass. Plain text AUTH is allowed: this server only ever runs locally.
    username: str | None = None
    password: str | None = None
    tls_cert_file: Path | None = Field(None, description="PEM certificate; with a key it offers STARTTLS")
    tls_key_file: Path | None = None
    # Greeting name: aiosmtpd's default asks DNS for the FQDN, which can stall start-up on a laptop offline.
    server_name: str = "mailbox.localhost"

    @model_validator(mode="after")
    def _pairs(self) -> MailboxSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        return self

    @property
    def auth_required(self) -> bool:
        return self.username is not None
