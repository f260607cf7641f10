"""UsageMiddleware around a small Starlette app: allowed requests go through with the RateLimit fields and send one
usage event after the response; denied ones answer 429 with Retry-After and never reach the app; a platform that
cannot answer lets requests through (fail open) or refuses them (fail closed). The platform's gateway is an
in-process httpx transport and the event senders a recorder; tests/e2e/test_alerts_quotas.py runs the middleware
against the real platform."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from billing_client import Metered, QuotaClient, UsageMiddleware
from tests.unit.billing_client.test_quotas import ALLOWED, Gateway


class Sent:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object, dict]] = []

    def sender(self, api_key: str):
        outer = self

        class _Sender:
            async def send(self, metric, value, *, dimensions=None):
                outer.events.append((api_key, metric, value, dimensions or {}))
                return "evt"

        return _Sender()

    async def close(self, timeout=None) -> None:
        pass


def build(gateway: Gateway, sent: Sent, **options) -> tuple[httpx.AsyncClient, list[str]]:
    served: list[str] = []

    async def hello(request):
        served.append(request.url.path)
        return PlainTextResponse("boom" if request.url.path == "/fail" else "hi",
                                 status_code=500 if request.url.path == "/fail" else 200)

    def resolve(scope):
        if scope["path"] == "/free":
            return None
        key = dict(scope["headers"]).get(b"x-key", b"bk_anon").decode()
        return Metered(api_key=key, metric="api_calls", dimensions={"route": scope["path"]})

    app = Starlette(routes=[Route(path, hello) for path in ("/hello", "/free", "/fail")])
    http = httpx.AsyncClient(base_url="http://gateway.test", transport=httpx.MockTransport(gateway))
    quotas = QuotaClient("http://gateway.test", http_client=http, cache_seconds=0)
    wrapped = UsageMiddleware(app, resolve=resolve, quotas=quotas, senders=sent, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://api.test"), served


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_allowed_requests_pass_with_ratelimit_fields_and_send_usage_after(gateway):
    sent = Sent()
    api, served = build(gateway, sent)
    response = await api.get("/hello", headers={"x-key": "bk_tenant"})
    await settle()
    assert response.status_code == 200 and response.text == "hi" and served == ["/hello"]
    assert response.headers["ratelimit"] == '"api_calls";r=90;t=100'
    assert sent.events == [("bk_tenant", "api_calls", 1, {"route": "/hello"})]


async def test_denied_requests_get_429_and_never_reach_the_app(gateway):
    gateway.answer = (200, {**ALLOWED, "allowed": False, "reason": "over_hard_cap", "remaining": "0",
                            "message": "hard cap of 100 api_calls reached", "resets_at": "2999-01-01T00:00:00Z"})
    sent = Sent()
    api, served = build(gateway, sent)
    response = await api.get("/hello")
    await settle()
    assert response.status_code == 429 and served == [] and sent.events == []
    assert response.json() == {"error": "quota_exceeded", "detail": "hard cap of 100 api_calls reached"}
    assert int(response.headers["retry-after"]) > 3600 and "ratelimit-policy" in response.headers


async def test_unmetered_routes_and_server_errors_send_nothing(gateway):
    sent = Sent()
    api, served = build(gateway, sent)
    assert (await api.get("/free")).status_code == 200
    assert (await api.get("/fail")).status_code == 500
    await settle()
    assert served == ["/free", "/fail"] and sent.events == []
    assert [r.url.path for r in gateway.requests] == ["/api/v1/quota"]  # /free was never checked


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
async def test_an_unanswering_platform_fails_open_or_closed(gateway, fail_open, status):
    gateway.delay = 1.0
    sent = Sent()
    api, served = build(gateway, sent, fail_open=fail_open, check_timeout_seconds=0.05)
    response = await api.get("/hello")
    await settle()
    assert response.status_code == status
    assert served == (["/hello"] if fail_open else [])
    assert len(sent.events) == (1 if fail_open else 0)
