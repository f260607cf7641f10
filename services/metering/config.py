from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.metering.domain.event_retention import MIN_RETENTION_AGE_DAYS


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
    # Redelivery of a message nobody acknowledged in this long: short, so the messages a killed process held come
    # back within seconds; the consumer keeps those it works on alive with in-progress acks every third of it.
    consumer_ack_wait_seconds: float = Field(default=3.0, gt=0)
    consumer_max_deliver: int = Field(default=10, ge=2)
    consumer_max_ack_pending: int = Field(default=2048, ge=1)
    # Events per transaction (and per fetch): past a few thousand, bigger is hardly faster per event, while
    # memory grows with it (about 1 kB per event in flight, up to three fetches at a time).
    consumer_max_events_per_transaction: int = Field(default=5_000, ge=1, le=100_000)
    # Alert rules. The consumer knows which (organisation, metric) pairs threshold rules watch from a copy of the
    # live rules refreshed this often (and at once when this process creates or deletes a rule): a rule created on
    # another replica is evaluated as events are stored at most this long after, and by the sweep before that.
    alerts_rules_refresh_seconds: float = Field(default=1.0, gt=0, le=60)
    # The sweep: spike and cost rules, and threshold rules of organisations that had events since the last sweep
    # (levels reached but not fired: a new rule, or invoicing unavailable when the events were stored).
    alerts_sweep_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Every this long the sweep takes every live rule (events another replica stored while invoicing was away).
    alerts_full_sweep_seconds: float = Field(default=600.0, gt=0, le=86_400)
    # Spike and cost rules are also evaluated soon after their organisation's events are stored, at most this often
    # per rule (a cost evaluation asks invoicing for the projected invoice).
    alerts_debounce_seconds: float = Field(default=2.0, ge=0, le=600)

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

    # Usage reconciliation (docs/operations.md, "Usage reconciliation"): every check, each replica tries to claim
    # the previous full UTC hour (once it ended this long ago) and the hours before it within the look-back that
    # have no finished report; one replica runs each. A run waits this long for metering's consumer to acknowledge
    # the window's last message, else its report says metering_behind and a later check runs it again. A report
    # left running this long (its process died) is taken over.
    usage_reconciliation_enabled: bool = True
    usage_reconciliation_check_seconds: float = Field(default=60.0, gt=0, le=3600)
    usage_reconciliation_delay_seconds: float = Field(default=300.0, ge=0, le=86_400)
    usage_reconciliation_lookback_hours: int = Field(default=3, ge=1, le=48)
    usage_reconciliation_wait_seconds: float = Field(default=60.0, ge=0, le=3600)
    usage_reconciliation_stale_seconds: float = Field(default=3600.0, gt=0)

    # Retention of stored events (docs/operations.md, "Event retention"): a month of events is archived to a gzip
    # CSV file in retention_archive_dir and then its rows deleted in batches once its end is older than
    # retention_min_age_days (at least the 35-day deduplication window and a week) and it is invoiced (before
    # invoicing's horizon). Runs at start-up and every retention_interval_seconds; empty dir: not run.
    retention_enabled: bool = True
    retention_archive_dir: str = ""
    retention_min_age_days: int = Field(default=62, ge=MIN_RETENTION_AGE_DAYS, le=36_500)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _refresh_within_lag(self) -> MeteringSettings:
        if self.quota_refresh_interval_seconds >= self.quota_max_lag_seconds:
            raise ValueError("quota_refresh_interval_seconds must be shorter than quota_max_lag_seconds")
        return self
