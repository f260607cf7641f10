"""QuotaClient without a server: what it asks the gateway, how long it reuses an answer, that concurrent askers
share one call, and how failures surface. The gateway's HTTP is an in-process httpx transport; the client against
the real platform is in tests/e2e/test_alerts_quotas.py."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest

from billing_client import QuotaCheckFailed, QuotaClient

ALLOWED = {"organisation_id": "org_1", "metric": "api_calls", "allowed": True, "reason": "within_limit",
           "message": "within quota", "quantity": "1", "used": "10", "limit": "100", "remaining": "90",
           "cap": "hard", "grace_limit": None, "grace_ends_at": None, "period_start": "2026-12-01T00:00:00Z",
           "resets_at": "2027-01-01T00:00:00Z", "enforced_at_ingest": True, "plan_code": "standard",
           "plan_version": 1, "usage_as_of": "2026-12-05T10:00:00Z"}
HEADERS = {"RateLimit-Policy": '"api_calls";q=100;w=2678400', "RateLimit": '"api_calls";r=90;t=100'}


class Gateway:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = (200, ALLOWED)
        self.delay = 0.0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        status, body = self.answer
        return httpx.Response(status, json=body, headers=HEADERS if status == 200 else {})


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def client(gateway: Gateway, now: list[float], **options) -> QuotaClient:
    http = httpx.AsyncClient(base_url="http://gateway.test", transport=httpx.MockTransport(gateway))
    return QuotaClient("http://gateway.test", http_client=http, clock=lambda: now[0], **options)


async def test_asks_with_the_key_and_reuses_the_answer_for_cache_seconds(gateway):
    now = [100.0]
    quotas = client(gateway, now, cache_seconds=1.0)
    first = await quotas.check_quota("bk_secret", "api_calls", Decimal("2.5"))
    assert first.allowed and first.remaining == "90" and first.headers == HEADERS
    request = gateway.requests[0]
    assert request.url.path == "/api/v1/quota"
    assert dict(request.url.params) == {"metric": "api_calls", "quantity": "2.5"}
    assert request.headers["authorization"] == "Bearer bk_secret"
    now[0] = 100.9
    assert await quotas.check_quota("bk_secret", "api_calls", Decimal("2.5")) == first
    assert len(gateway.requests) == 1
    now[0] = 101.1  # expired
    await quotas.check_quota("bk_secret", "api_calls", Decimal("2.5"))
    assert len(gateway.requests) == 2
    # Another key, metric or quantity is another question.
    await quotas.check_quota("bk_other", "api_calls", Decimal("2.5"))
    await quotas.check_quota("bk_secret", "api_calls", 3)
    assert len(gateway.requests) == 4


async def test_concurrent_askers_share_one_call(gateway):
    gateway.delay = 0.05
    quotas = client(gateway, [0.0])
    answers = await asyncio.gather(*(quotas.check_quota("bk_1", "api_calls") for _ in range(20)))
    assert len(gateway.requests) == 1 and all(a.allowed for a in answers)


async def test_a_denial_carries_the_reason_and_retry_after(gateway):
    gateway.answer = (200, {**ALLOWED, "allowed": False, "reason": "over_hard_cap", "remaining": "0",
                            "message": "hard cap of 100 api_calls reached", "resets_at": "2999-01-01T00:00:00Z"})
    decision = await client(gateway, [0.0]).check_quota("bk_1", "api_calls")
    assert not decision.allowed and decision.reason == "over_hard_cap"
    assert decision.retry_after_seconds > 3600


async def test_failures_raise_quota_check_failed_and_are_not_cached(gateway):
    quotas = client(gateway, [0.0])
    gateway.answer = (401, {"error": "unauthenticated", "detail": "API key is not valid"})
    with pytest.raises(QuotaCheckFailed) as failed:
        await quotas.check_quota("bk_bad", "api_calls")
    assert failed.value.status == 401 and "bk_bad" not in str(failed.value)
    gateway.answer = (200, ALLOWED)
    assert (await quotas.check_quota("bk_bad", "api_calls")).allowed


async def test_floats_are_refused_before_asking(gateway):
    with pytest.raises(TypeError):
        await client(gateway, [0.0]).check_quota("bk_1", "api_calls", 0.1)  # type: ignore[arg-type]
    assert gateway.requests == []


async def test_entitlements_are_typed_and_an_unknown_feature_is_not_granted(gateway):
    gateway.answer = (200, {"organisation_id": "org_1", "subscription_found": True, "plan_code": "pro",
                            "plan_version": 2, "entitlements": [
                                {"feature": "seats", "value": "10", "type": "number", "source": "plan"},
                                {"feature": "sso", "value": True, "type": "bool", "source": "override"},
                                {"feature": "support", "value": "priority", "type": "string", "source": "plan"}]})
    quotas = client(gateway, [0.0])
    assert await quotas.entitlements("bk_1") == {"seats": Decimal(10), "sso": True, "support": "priority"}
    assert await quotas.entitled("bk_1", "sso") is True
    assert await quotas.entitled("bk_1", "audit_log") is False
    assert len(gateway.requests) == 1
    assert json.loads(json.dumps(dict(gateway.requests[0].url.params))) == {}
