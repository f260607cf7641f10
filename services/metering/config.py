from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings


class MeteringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METERING_", extra="ignore")

    grpc_port: int = 50052
    # Where invoicing (the owner of organisations) answers.
    invoicing_address: str = "127.0.0.1:50053"
    # The event consumer: at most how many JetStream messages (each a batch of events) one fetch takes (fewer
    # when messages are large: a fetch aims at one transaction's worth of events), and how long a fetch waits
    # when there are none. A short wait keeps usage visible well under a second.
    # The durable JetStream consumer every replica shares.
    consumer_durable: str = "metering-events"
    consumer_fetch_batch: int = Field(default=256, ge=1, le=1000)
    consumer_fetch_wait_seconds: float = Field(default=0.1, gt=0, le=30)
    consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)
    consumer_max_deliver: int = Field(default=10, ge=2)
    consumer_max_ack_pending: int = Field(default=2048, ge=1)
    # Events per transaction (and per fetch): past a few thousand, bigger is hardly faster per event, while
    # memory grows with it (about 1 kB per event in flight, up to three fetches at a time).
    consumer_max_events_per_transaction: int = Field(default=5_000, ge=1, le=100_000)

    # Quota checks (docs/alerts-and-quotas.md). What an organisation is on is asked of invoicing and kept at most
    # this long (dropped at once when invoicing announces a change; the TTL covers a missed announcement).
    plan_cache_ttl_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The lag bound: a check never answers from usage read longer ago than this (it reads synchronously
    # instead). Usage is re-read every refresh interval, which must be shorter; the difference is the time a
    # batched read may take before checks fall back to reading themselves.
    quota_max_lag_seconds: float = Field(default=0.5, gt=0, le=60)
    quota_refresh_interval_seconds: float = Field(default=0.2, gt=0, le=30)
    # Pairs (organisation, metric) nobody checked for this long are no longer refreshed.
    quota_idle_seconds: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _refresh_within_lag(self) -> MeteringSettings:
        if self.quota_refresh_interval_seconds >= self.quota_max_lag_seconds:
            raise ValueError("quota_refresh_interval_seconds must be shorter than quota_max_lag_seconds")
        return self
