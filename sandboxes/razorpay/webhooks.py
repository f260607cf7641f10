"""Webhook deliveries the way Razorpay makes them: the event envelope, signed with the webhook secret, POSTed
asynchronously and retried with backoff; plus the misbehaviours tests need (duplicates, delays, reordering,
forged signatures).

Each event's body is serialised once and kept: retries, duplicates and redeliveries send the same bytes with the
same `X-Razorpay-Event-Id`, which is what receivers deduplicate on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
import string
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from sandboxes.razorpay.ids import now

EVENT_ID_ALPHABET = string.ascii_letters + string.digits


def sign(body: bytes, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of the raw body: the `X-Razorpay-Signature` header."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class WebhookBehaviour:
    """How the next events are delivered. `events` limits it to that many events, then it reverts to normal."""

    duplicates: int = 0  # extra copies of each event, same id and body
    delay_ms: int = 0  # wait before the first attempt
    reorder_window: int = 0  # hold this many events, then release them reordered
    reorder: Literal["reverse", "shuffle"] = "reverse"
    seed: int | None = None
    wrong_secret: bool = False  # sign with a secret the receiver does not know
    events: int | None = None


@dataclass
class StoredEvent:
    event_id: str
    event: str
    body: bytes


@dataclass
class Delivery:
    """One line of the delivery log: one copy of one event, however many attempts it took."""

    delivery_id: int
    event_id: str
    event: str
    copy: int
    attempts: int = 0
    status_code: int | None = None
    delivered: bool = False
    finished: bool = False
    error: str | None = None
    forged: bool = False


@dataclass
class WebhookDispatcher:
    account_id: str
    secret: str
    url: str | None = None
    retry_initial_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    max_attempts: int = 8
    timeout_seconds: float = 5.0
    behaviour: WebhookBehaviour = field(default_factory=WebhookBehaviour)
    events: dict[str, StoredEvent] = field(default_factory=dict)
    log: list[Delivery] = field(default_factory=list)
    _held: list[tuple[StoredEvent, WebhookBehaviour]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None
    # Set when the latest delivery has made its first attempt: first attempts go out in publication order, so
    # only the misbehaviours asked for (delays, reordering) reorder events; retries never hold others back.
    _previous_first_attempt: asyncio.Event | None = None

    def publish(self, event: str, entities: dict[str, dict[str, Any]]) -> str:
        """Record an event and start delivering it; never waits for the receiver."""
        envelope = {
            "entity": "event",
            "account_id": self.account_id,
            "event": event,
            "contains": list(entities),
            "payload": {name: {"entity": entity} for name, entity in entities.items()},
            "created_at": now(),
        }
        stored = StoredEvent(
            event_id="".join(secrets.choice(EVENT_ID_ALPHABET) for _ in range(14)),
            event=event,
            body=json.dumps(envelope, separators=(",", ":")).encode(),
        )
        self.events[stored.event_id] = stored
        behaviour = self._take_behaviour()
        if behaviour.reorder_window > 1:
            self._held.append((stored, behaviour))
            if len(self._held) >= behaviour.reorder_window:
                self.flush(behaviour)
        else:
            self._release(stored, behaviour)
        return stored.event_id

    def _take_behaviour(self) -> WebhookBehaviour:
        current = self.behaviour
        if current.events is not None:
            current.events -= 1
            if current.events <= 0:
                # Events still held by a reorder window wait for the window to fill or for flush().
                self.behaviour = WebhookBehaviour()
        return current

    def flush(self, behaviour: WebhookBehaviour | None = None) -> int:
        """Release the held events in the configured order. Returns how many were released."""
        held, self._held = self._held, []
        order = behaviour or (held[-1][1] if held else self.behaviour)
        if order.reorder == "shuffle":
            random.Random(order.seed).shuffle(held)
        else:
            held.reverse()
        for stored, own in held:
            self._release(stored, own)
        return len(held)

    def _release(self, stored: StoredEvent, behaviour: WebhookBehaviour) -> None:
        for copy in range(1 + behaviour.duplicates):
            self._start(stored, behaviour.delay_ms / 1000, behaviour.wrong_secret, copy)

    def redeliver(self, event_id: str) -> Delivery:
        """Send a recorded event again, same id and body (Razorpay's dashboard "resend")."""
        return self._start(self.events[event_id], 0.0, False, 0)

    def _start(self, stored: StoredEvent, delay: float, forged: bool, copy: int) -> Delivery:
        record = Delivery(len(self.log) + 1, stored.event_id, stored.event, copy, forged=forged)
        self.log.append(record)
        if self.url is None:
            record.finished = True
            record.error = "no webhook URL configured"
            return record
        previous, self._previous_first_attempt = self._previous_first_attempt, asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            self._deliver(stored, record, self.url, delay, previous, self._previous_first_attempt)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return record

    async def _deliver(
        self, stored: StoredEvent, record: Delivery, url: str, delay: float,
        previous: asyncio.Event | None, first_attempt: asyncio.Event,
    ) -> None:
        try:
            if delay:
                first_attempt.set()  # a delayed event lets the ones after it overtake
                await asyncio.sleep(delay)
            elif previous is not None:
                await previous.wait()
            await self._attempts(stored, record, url, first_attempt)
        finally:
            first_attempt.set()
            record.finished = True

    async def _attempts(self, stored: StoredEvent, record: Delivery, url: str, first_attempt: asyncio.Event) -> None:
        secret = ("forged_" + self.secret) if record.forged else self.secret
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign(stored.body, secret),
            "X-Razorpay-Event-Id": stored.event_id,
            "User-Agent": "Razorpay-Webhook/v1",
        }
        backoff = self.retry_initial_seconds
        if self._client is None:
            self._client = httpx.AsyncClient()
        while True:
            record.attempts += 1
            try:
                response = await self._client.post(url, content=stored.body, headers=headers,
                                                   timeout=self.timeout_seconds)
                record.status_code = response.status_code
                record.error = None if response.is_success else f"HTTP {response.status_code}"
                if response.is_success:
                    record.delivered = True
                    return
            except httpx.HTTPError as exc:
                record.status_code = None
                record.error = f"{type(exc).__name__}: {exc}"
            first_attempt.set()
            if record.attempts >= self.max_attempts:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.retry_max_seconds)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until no delivery is in flight (tests use this instead of sleeping)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._held.clear()
        self._previous_first_attempt = None
        self.events.clear()
        self.log.clear()
        self.behaviour = WebhookBehaviour()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def log_lines(self) -> list[dict[str, Any]]:
        return [asdict(record) for record in self.log]

    def pending(self) -> int:
        return len(self._held)
