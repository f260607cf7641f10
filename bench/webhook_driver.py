"""Signed Razorpay webhooks sent over real HTTP: the deliveries, and the two ways of sending them.

Each delivery is a real ``payment.captured`` body (the shape of Razorpay's documented UPI example in the shared
fixtures), for one order, with its own payment id and event id, signed as Razorpay signs: lowercase hex
HMAC-SHA256 of the exact body with the webhook secret. Bodies and signatures are built before any clock starts.

- :func:`paced`: open loop at a fixed offered rate. Delivery i is due at start + i / rate and is sent then,
  whatever happened to the ones before (a task each); its latency counts from when it was due, so a sender that
  falls behind, or a server that holds connections up, shows in the figure instead of slowing the offer down.
- :func:`saturate`: as fast as a bounded number of deliveries in flight allows (closed loop): throughput.

One ``httpx.AsyncClient`` with keep-alive connections either way, as one webhook sender would have.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from billing_runtime.signatures import sign

WEBHOOK_PATH = "/api/v1/webhooks/razorpay"
# The repository's tests find the shared fixtures beside the checkout (tests/shared_fixtures.py): so does this.
FIXTURE = (Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "razorpay"
           / "docs_webhook_payment.captured__upi.json")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Delivery:
    event_id: str
    payment_id: str
    order_id: str
    body: bytes
    signature: str

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-Razorpay-Signature": self.signature,
                "X-Razorpay-Event-Id": self.event_id}


@dataclass
class Sent:
    """One delivery's times (``time.perf_counter``): when it was due (paced) or picked up, when its request
    started, and when its answer arrived."""

    due: float
    started: float = 0.0
    answered: float = 0.0
    status: int = 0

    @property
    def latency(self) -> float:
        return self.answered - self.due


@dataclass
class Sending:
    """What one run sent: every delivery's times, in delivery order, and the run's span."""

    sent: list[Sent] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def acknowledged(self) -> int:
        return sum(1 for s in self.sent if s.status == 200)

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0

    def latencies(self) -> list[float]:
        return sorted(s.latency for s in self.sent if s.status == 200)

    def lateness(self) -> list[float]:
        """How late the sender started each request after it was due (its own share of the latency)."""
        return sorted(s.started - s.due for s in self.sent if s.started)

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in self.sent:
            counts[s.status] = counts.get(s.status, 0) + 1
        return counts


def _token(size: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(size))


def build_deliveries(order_ids: Sequence[str], amount_minor: int, currency: str, secret: str) -> list[Delivery]:
    """One captured payment of ``amount_minor`` per order, each with a unique payment id and event id."""
    template = json.loads(FIXTURE.read_text())
    run = _token(4)  # Razorpay ids are 14 characters after the prefix: 4 of the run, 10 of the delivery
    now = int(time.time())
    deliveries = []
    for number, order_id in enumerate(order_ids):
        payment_id, event_id = f"pay_{run}{number:010d}", f"evt_{run}{number:010d}"
        document = copy.deepcopy(template)
        entity = document["payload"]["payment"]["entity"]
        entity.update(id=payment_id, order_id=order_id, amount=amount_minor, base_amount=amount_minor,
                      currency=currency, created_at=now, email="billing@acme.example", contact="+919000090000")
        entity["acquirer_data"]["rrn"] = f"{number:012d}"
        document["created_at"] = now
        body = json.dumps(document, separators=(",", ":")).encode()  # Razorpay sends compact JSON
        deliveries.append(Delivery(event_id, payment_id, order_id, body, sign(body, secret)))
    return deliveries


def client(base_url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0)


async def _post(http: httpx.AsyncClient, delivery: Delivery, entry: Sent) -> None:
    entry.started = time.perf_counter()
    try:
        response = await http.post(WEBHOOK_PATH, content=delivery.body, headers=delivery.headers())
        entry.status = response.status_code
    except httpx.HTTPError:
        entry.status = -1
    entry.answered = time.perf_counter()


async def paced(http: httpx.AsyncClient, deliveries: Sequence[Delivery], rate: float) -> Sending:
    """Open loop: delivery i due at start + i / rate, sent when due in a task of its own."""
    result = Sending(sent=[Sent(0.0) for _ in deliveries])
    tasks: list[asyncio.Task[None]] = []
    result.started = start = time.perf_counter() + 0.01
    for number, delivery in enumerate(deliveries):
        due = start + number / rate
        entry = result.sent[number]
        entry.due = due
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(_post(http, delivery, entry)))
    await asyncio.gather(*tasks)
    result.finished = max(s.answered for s in result.sent)
    return result


async def saturate(http: httpx.AsyncClient, deliveries: Sequence[Delivery], concurrency: int) -> Sending:
    """Closed loop: ``concurrency`` deliveries in flight, the next sent as soon as one is answered."""
    result = Sending(sent=[Sent(0.0) for _ in deliveries])
    following = iter(range(len(deliveries)))

    async def worker() -> None:
        for number in following:
            entry = result.sent[number]
            entry.due = time.perf_counter()
            await _post(http, deliveries[number], entry)

    result.started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.finished = time.perf_counter()
    return result
