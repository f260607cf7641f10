"""Demo usage for the first start: a few metrics for the demo organisation and a modest number of events sent
through ``POST /api/v1/events`` exactly as a client would, so the first usage query shows something.

Idempotent across restarts: metrics are created with an Idempotency-Key, and the events have fixed ids, so
sending them again on the next start counts nothing twice (the answer reports them as duplicates, or metering
drops them by (project, event id)).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack import console
from devstack.console import Reporter
from devstack.demo import DemoData, DemoDataError

DEMO_METRICS: list[dict[str, Any]] = [
    {"code": "api_calls", "name": "API calls", "unit": "requests", "aggregation": "count"},
    {"code": "llm_tokens", "name": "LLM tokens", "unit": "tokens", "aggregation": "sum"},
    {"code": "storage_gb", "name": "Peak storage", "unit": "GB", "aggregation": "max"},
    # Each event is one payment's amount: the Enterprise plan's percentage charge prices them one by one.
    {"code": "payments_volume", "name": "Payments processed", "unit": "INR", "aggregation": "sum"},
]
MODELS = ("gpt-4o", "claude-sonnet", "llama-3-70b")
ENDPOINTS = ("/v1/search", "/v1/embed", "/v1/chat")
PAY_METHODS = ("upi", "card", "netbanking")
HOURS_BACK = 72  # events spread over the last three days: the day and hour windows have something in them


@dataclass(frozen=True)
class DemoUsage:
    metrics: int
    events_sent: int
    accepted: int
    duplicates: int


def demo_events(now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """About 320 events in the clients' JSON shape, with fixed ids (the same on every start)."""
    rng = random.Random(seed)

    def at(hours_ago: float) -> str:
        return (now - timedelta(hours=hours_ago)).isoformat(timespec="seconds")

    events: list[dict[str, Any]] = []
    for n in range(200):
        events.append({"metricName": "api_calls", "metricValue": 1, "timestamp": at(rng.uniform(0, HOURS_BACK)),
                       "metadata": {"endpoint": rng.choice(ENDPOINTS)}, "idempotencyKey": f"demo-api-{n:04d}"})
    for n in range(90):
        tokens = rng.randrange(200, 4000)
        events.append({"metricName": "llm_tokens", "metricValue": tokens, "unit": "tokens",
                       "timestamp": at(rng.uniform(0, HOURS_BACK)), "metadata": {"model": rng.choice(MODELS)},
                       "idempotencyKey": f"demo-llm-{n:04d}"})
    for n, hours_ago in enumerate(range(HOURS_BACK, 0, -6)):
        # Decimal strings, as a client measuring storage would send them.
        gigabytes = f"{10 + n * 0.75 + rng.randrange(0, 100) / 100:.2f}"
        events.append({"metricName": "storage_gb", "metricValue": gigabytes, "timestamp": at(hours_ago),
                       "idempotencyKey": f"demo-storage-{n:04d}"})
    for n in range(24):
        rupees, paise = rng.choice((499, 1499, 2999, 8999, 24999)), rng.randrange(0, 100)  # money: no float
        events.append({"metricName": "payments_volume", "metricValue": f"{rupees}.{paise:02d}",
                       "timestamp": at(rng.uniform(0, HOURS_BACK)), "metadata": {"method": rng.choice(PAY_METHODS)},
                       "idempotencyKey": f"demo-payment-{n:04d}"})
    return events


def ensure_demo_usage(
    gateway_url: str,
    admin_token: str,
    demo: DemoData,
    say: Reporter = console.say,
    *,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> DemoUsage:
    """Create the demo metrics (once) and send the demo events (counted once however often they are sent).

    Raises :class:`DemoDataError` if the gateway refuses a request. ``transport`` replaces the network (tests).
    """
    with httpx.Client(base_url=gateway_url, timeout=30.0, transport=transport) as client:
        admin = {"Authorization": f"Bearer {admin_token}"}
        for metric in DEMO_METRICS:
            response = client.post(
                "/api/v1/admin/metrics", json={"organisation_id": demo.organisation_id, **metric},
                headers={**admin, "Idempotency-Key": f"demo-metric-{metric['code']}"},
            )
            if response.status_code not in (200, 201):
                raise DemoDataError(f"POST /api/v1/admin/metrics ({metric['code']}) -> HTTP "
                                    f"{response.status_code}: {response.text.strip()[:500]}")
        events = demo_events(now or datetime.now(UTC))
        response = client.post("/api/v1/events", json=events, headers={"Authorization": f"Bearer {demo.api_key}"})
        if response.status_code != 202:
            raise DemoDataError(f"POST /api/v1/events -> HTTP {response.status_code}: {response.text.strip()[:500]}")
        body = response.json()
    if body["rejected"]:
        reasons = {r["reason"] for r in body["results"] if r["status"] == "rejected"}
        console.warn(f"{body['rejected']} demo event(s) were rejected: {'; '.join(sorted(reasons))[:300]}")
    usage = DemoUsage(len(DEMO_METRICS), len(events), body["accepted"], body["duplicates"])
    say(f"demo usage: {usage.metrics} metrics; {usage.events_sent} events sent through POST /api/v1/events "
        f"({usage.accepted} accepted, {usage.duplicates} duplicates; a resent event is counted once)")
    return usage
