from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.ingest.domain.event import EventLimits
from services.ingest.domain.event_rate import EventRate


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    grpc_port: int = 50051
    # Where invoicing (the owner of organisations) answers.
    invoicing_address: str = "127.0.0.1:50053"
    # Where metering (the owner of usage and quota checks) answers.
    metering_address: str = "127.0.0.1:50052"
    # Refuse events over a hard cap of plans that enforce their quotas at ingest. Off: nothing is asked or refused.
    quota_enforcement: bool = True
    # How long a quota answer is trusted; it is then refreshed in the background and used for one more TTL at
    # most. What this process admits is counted against it at once. Enforcement lags metered usage by at most
    # twice this plus metering's own bound; a longer TTL asks metering less.
    quota_cache_seconds: float = Field(default=0.5, gt=0, le=10)
    # How long an admitted event may take to be metered: after a refresh, what this process admitted since this
    # long before metering read usage, and metering's usage has not grown by, still counts.
    quota_usage_lag_seconds: float = Field(default=1.0, ge=0, le=60)
    # How long the organisation's metric definitions (how events add up) are trusted.
    quota_metric_cache_seconds: float = Field(default=30.0, gt=0, le=3_600)
    # When metering cannot answer: accept unchecked (True: usage is revenue; logged and counted) or answer
    # UNAVAILABLE so the client retries (False).
    quota_fail_open: bool = True
    # How long to wait for metering's answer before deciding as if it were down.
    quota_check_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    # Per-project event rates (docs/events-api.md, "Rate limits"): a plan's ingest_rate_limit, or this default
    # for plans that set none (0: no default limit). The burst is events at once from idle (0: one second's worth).
    rate_limit_events_per_second: int = Field(default=0, ge=0, le=1_000_000)
    rate_limit_burst: int = Field(default=0, ge=0, le=10_000_000)
    # Off: plans' rates are neither asked nor enforced.
    rate_limiting: bool = True
    # How much of the rate a replica takes from the shared count at once (spent locally by the next batches), and
    # how long a plan's rate is trusted before invoicing is asked again.
    rate_limit_lease_seconds: float = Field(default=0.05, gt=0, le=1)
    rate_limit_plan_cache_seconds: float = Field(default=30.0, gt=0, le=3_600)
    # A stream's batch waits this long for room within its project's rate before the stream is ended with
    # RESOURCE_EXHAUSTED (IngestEvents never waits: it answers at once with a retry-after).
    rate_limit_stream_max_wait_seconds: float = Field(default=2.0, ge=0, le=30)
    # Accepted events stay in JetStream this long, and at most this much of them (metering consumes them within
    # seconds; the rest is slack for an outage of metering, and what usage reconciliation reads). Duplicates are
    # caught by metering's event table, not by this window. Size it as events/s x bytes per event x the outage to
    # survive: an event takes about 90 bytes in the stream (measured in the soak), so 4 GiB holds some 47 million
    # events, 13 hours at 1,000 events/s. Past that the oldest go; metering's consumer lag alert fires long before
    # its backlog could be among them.
    stream_max_age_seconds: float | None = Field(default=7 * 86_400, ge=120)
    stream_max_bytes: int | None = Field(default=4 * 1024**3, ge=1024 * 1024)
    # Events per IngestEvents call or stream batch.
    max_batch_events: int = Field(default=10_000, ge=1, le=100_000)
    # The accepted window around now for an event's timestamp.
    event_past_window_days: int = Field(default=35, ge=1, le=400)
    event_future_window_seconds: int = Field(default=300, ge=0, le=86_400)
    # How long a verified key is trusted before it is looked up again (a revocation through another replica
    # takes effect within this time; through this one, at once). 0 looks every batch up.
    api_key_cache_seconds: float = Field(default=10.0, ge=0)
    # How long to wait for JetStream to acknowledge a batch before answering UNAVAILABLE.
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    # Batches of one stream processed at once; the client's window beyond this waits (backpressure).
    stream_max_in_flight_batches: int = Field(default=8, ge=1, le=256)

    def default_event_rate(self) -> EventRate | None:
        if self.rate_limit_events_per_second == 0:
            return None
        return EventRate(self.rate_limit_events_per_second,
                         self.rate_limit_burst or self.rate_limit_events_per_second)

    def event_limits(self) -> EventLimits:
        return EventLimits(
            max_batch_events=self.max_batch_events,
            past_window=timedelta(days=self.event_past_window_days),
            future_window=timedelta(seconds=self.event_future_window_seconds),
        )
