"""Python client for high-volume usage-event senders (batching, gRPC streaming, exactly-once resends,
backpressure), quota and entitlement checks with a local cache, and an ASGI middleware putting both in front of
an API.

    async with EventSender("127.0.0.1:50051", api_key) as sender:
        await sender.send("api.requests", 1, dimensions={"region": "ap-south-1"})

See docs/client.md for the guarantees and tuning.
"""

from billing_client.asgi import Metered, SenderPool, UsageMiddleware
from billing_client.events import build_event, new_event_id
from billing_client.quotas import QuotaCheckFailed, QuotaClient, QuotaDecision
from billing_client.results import (
    EventResult,
    EventSenderError,
    EventStatus,
    RejectedEvent,
    SenderClosed,
    SenderFailed,
    SenderStats,
)
from billing_client.sender import EventSender
from billing_client.sync import SyncEventSender

__all__ = [
    "EventResult",
    "EventSender",
    "EventSenderError",
    "EventStatus",
    "Metered",
    "QuotaCheckFailed",
    "QuotaClient",
    "QuotaDecision",
    "RejectedEvent",
    "SenderClosed",
    "SenderFailed",
    "SenderPool",
    "SenderStats",
    "SyncEventSender",
    "UsageMiddleware",
    "build_event",
    "new_event_id",
]
