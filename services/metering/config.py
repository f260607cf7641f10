from pydantic import Field
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings


class MeteringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METERING_", extra="ignore")

    grpc_port: int = 50052
    # Where invoicing (the owner of organisations) answers.
    invoicing_address: str = "127.0.0.1:50053"
    # The event consumer: how many JetStream messages (each a batch of events) one transaction takes, and how
    # long a fetch waits for the first one. A short wait keeps usage visible well under a second.
    # The durable JetStream consumer every replica shares.
    consumer_durable: str = "metering-events"
    consumer_fetch_batch: int = Field(default=64, ge=1, le=1000)
    consumer_fetch_wait_seconds: float = Field(default=0.2, gt=0, le=30)
    consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)
    consumer_max_deliver: int = Field(default=10, ge=2)
    consumer_max_ack_pending: int = Field(default=2048, ge=1)
    # Events per transaction: bigger is faster per event, smaller keeps each commit (and visibility) quick.
    consumer_max_events_per_transaction: int = Field(default=10_000, ge=1)
