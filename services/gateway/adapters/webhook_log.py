"""Verified provider webhooks handed on to payments through JetStream (the gateway's stream).

The gateway answers the provider only once JetStream has stored the delivery, so an answered webhook is
never lost; ``Nats-Msg-Id`` "<provider>:<event id>" makes a retry within JetStream's duplicate window a
no-op, and payments deduplicates for good in its webhook log.
"""

from __future__ import annotations

from datetime import datetime

from nats.js import JetStreamContext

from billing.gateway.v1 import events_pb2
from billing_runtime.timestamps import to_timestamp
from billing_runtime.tracing import producer_span

WEBHOOK_RECEIVED = "billing.gateway.v1.webhook.received"


class JetStreamWebhooks:
    def __init__(self, js: JetStreamContext, timeout_seconds: float = 2.0) -> None:
        self._js = js
        self._timeout = timeout_seconds

    async def store(self, provider: str, event_id: str, event_type: str, body: bytes, received_at: datetime) -> bool:
        """Store one delivery durably; returns True if JetStream had it already (a duplicate)."""
        message = events_pb2.WebhookReceived(event_id=event_id, provider=provider, event_type=event_type, body=body,
                                             receive_time=to_timestamp(received_at))
        headers = {"Nats-Msg-Id": f"{provider}:{event_id}"}
        with producer_span(WEBHOOK_RECEIVED, headers):  # payments' handling continues the HTTP request's trace
            ack = await self._js.publish(WEBHOOK_RECEIVED, message.SerializeToString(), timeout=self._timeout,
                                         headers=headers)
        return bool(ack.duplicate)
