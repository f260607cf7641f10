"""The last safety net: a message JetStream gave up on is dead-lettered, never silently dropped.

The consumer dead-letters a message itself when it fails on its last allowed delivery. But a message whose
processing never finishes (it crashes or stalls the process every time) is simply not delivered again once
``max_deliver`` is reached; JetStream then publishes a MAX_DELIVERIES advisory. This watcher turns each such
advisory into a dead letter, reading the original from the stream by its sequence. Replicas share the work
through a queue group, and dead letters are deduplicated by source sequence anyway.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from billing_runtime.logging import get_logger
from services.metering import counters
from services.metering.adapters.dead_letters import DeadLetters

log = get_logger(__name__)


def advisory_subject(stream: str, durable: str) -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}"


class MaxDeliveriesWatcher:
    def __init__(self, nc: NATS, js: JetStreamContext, dead_letters: DeadLetters, stream: str, durable: str) -> None:
        self._nc = nc
        self._js = js
        self._dead_letters = dead_letters
        self._stream = stream
        self._durable = durable

    async def start(self) -> Subscription:
        """Subscribe (core NATS: advisories are not stored); returns the subscription to unsubscribe."""
        return await self._nc.subscribe(
            advisory_subject(self._stream, self._durable), queue="metering-max-deliveries", cb=self._on_advisory
        )

    async def _on_advisory(self, advisory: Msg) -> None:
        try:
            body = json.loads(advisory.data)
            sequence, deliveries = int(body["stream_seq"]), int(body.get("deliveries", 0))
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable max-deliveries advisory", data=advisory.data[:200])
            return
        try:
            original = await self._js.get_msg(self._stream, sequence)
            await self._dead_letters.publish(
                original.data or b"",
                reason=f"delivered {deliveries} times without being acknowledged (max_deliver reached)",
                source_stream=self._stream,
                source_sequence=sequence,
                source_subject=original.subject or "",
                delivery_count=deliveries,
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - logged loudly: this message is not counted
            counters.CONSUMER_ERRORS.labels("max_deliveries").inc()
            log.error(
                "a message reached max_deliver and could not be dead-lettered",
                stream_sequence=sequence,
                error=str(error) or repr(error),
            )
            return
        counters.BATCHES_DEAD_LETTERED.labels("too_many_deliveries").inc()
        log.warning("event batch dead-lettered", reason="max_deliver reached", stream_sequence=sequence,
                    deliveries=deliveries)
