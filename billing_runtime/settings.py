"""Settings shared by every service; each service subclasses with its own env prefix (``INGEST_`` ...)."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from billing_runtime.mesh import parse_verifiers
from billing_runtime.messaging import StreamLimits


class ServiceSettings(BaseSettings):
    """Base settings. ``DATABASE_URL`` and ``NATS_URL`` without a prefix are fallbacks shared by all services,
    so a laptop needs two variables while production gives each service its own credentials."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", validate_default=True,
                                      # A refused value may be a secret (a key, a token): errors name the setting only.
                                      hide_input_in_errors=True)

    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port (tests)")
    database_url: str = ""
    nats_url: str = ""
    # Prometheus /metrics port; unset means no metrics endpoint, 0 picks a free port.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    migrate_on_start: bool = True
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    health_check_interval_seconds: float = Field(default=2.0, gt=0)
    dependency_timeout_seconds: float = Field(default=2.0, gt=0)
    # The service's JetStream stream (messaging.StreamLimits): how long and how much it keeps, whether a full
    # stream drops its oldest messages (the default: consumers read within seconds) or refuses new ones, and on
    # how many NATS servers each message is stored (3 on a 3-node cluster; at most the number of servers).
    # At least JetStream's 2-minute duplicate window, which it may not exceed.
    stream_max_age_seconds: float | None = Field(default=30 * 86_400.0, ge=120)
    stream_max_bytes: int | None = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    stream_discard: Literal["old", "new"] = "old"
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Largest gRPC message received or sent (gRPC's own default, 4 MiB, is too small for big event batches).
    grpc_max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    # Service-to-service trust (billing_runtime.mesh, docs/security.md): this service's own secret mesh token,
    # presented on every call it makes (<PREFIX>MESH_TOKEN or <PREFIX>MESH_TOKEN_FILE), and the SHA-256 verifiers
    # of every caller it accepts, "name=sha256hex,..." (MESH_VERIFIERS, shared by all services; not secret).
    # Without a token its calls are refused; without verifiers it answers only health, reflection and API-key calls.
    mesh_token: SecretStr = SecretStr("")
    mesh_verifiers: str = ""

    def stream_limits(self) -> StreamLimits:
        return StreamLimits(
            max_age_seconds=self.stream_max_age_seconds,
            max_bytes=self.stream_max_bytes,
            discard_new=self.stream_discard == "new",
            replicas=self.stream_replicas,
        )

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        """A secret may come from a file instead (Kubernetes mounts secrets as files): when ``<PREFIX><NAME>``
        is not given, ``<PREFIX><NAME>_FILE`` names a file holding it (surrounding whitespace dropped)."""
        if not isinstance(data, dict):
            return data
        prefix = cls.model_config.get("env_prefix", "")
        for name, info in cls.model_fields.items():
            if info.annotation not in (SecretStr, SecretStr | None) or data.get(name):
                continue
            variable = f"{prefix}{name}_FILE".upper()
            path = os.environ.get(variable)
            if path:
                try:
                    with open(path, encoding="utf-8") as handle:
                        data[name] = handle.read().strip()
                except OSError as error:
                    raise ValueError(f"{variable}: cannot read {path}: {error.strerror}") from None
        return data

    @model_validator(mode="after")
    def _fallback_urls(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = os.environ.get("DATABASE_URL", "")
        if not self.nats_url:
            self.nats_url = os.environ.get("NATS_URL", "")
        if not self.mesh_verifiers:
            self.mesh_verifiers = os.environ.get("MESH_VERIFIERS", "")
        parse_verifiers(self.mesh_verifiers)  # a malformed list fails at start, not at the first call
        if not self.database_url:
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError(f"database_url is required: set {prefix}DATABASE_URL or DATABASE_URL")
        return self
