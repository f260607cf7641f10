"""End to end, every service a process, as a customer would use them: a plan with a hard quota enforced at ingest and
entitlements, an alert rule at 80 % and 100 % of the quota, events sent one by one over REST. The 80 % level fires at
the 8th event and the 100 % level at the 10th (not one before, not one after), each once, by email (the local
mailbox) and signed webhook; the quota answers exactly at the limit with the RateLimit fields; the 11th event is
refused with 429 and Retry-After; entitlements answer the plan's value, then an override; the CLI and the client
library's ASGI middleware see the same."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from billing_client import Metered, QuotaClient, SenderPool, UsageMiddleware
from devstack.mailbox import LocalMailbox
from devstack.mesh import Mesh
from sandboxes.smtp.control import MailboxControl
from tests.e2e.conftest import cli_environment
from tests.e2e.test_payments import Receiver, wait_until

pytestmark = pytest.mark.e2e

LIMIT = 10


async def _tenant(admin: httpx.AsyncClient, *, enforce: bool = True) -> dict[str, str]:
    """An organisation on a plan with a hard quota of 10 api_calls per period (enforced at ingest when asked),
    entitlements sso and seats, a project and its API key."""
    suffix = secrets.token_hex(3)
    organisation = await admin.post("/api/v1/admin/organisations", json={
        "name": f"Quota Labs {suffix}", "billing_email": f"alerts-{suffix}@quota.example", "billing_currency": "INR",
        "country": "IN", "state_code": "29", "timezone": "Asia/Kolkata"})
    assert organisation.status_code == 201, organisation.text
    organisation_id = organisation.json()["id"]
    metric = await admin.post("/api/v1/admin/metrics", json={
        "organisation_id": organisation_id, "code": "api_calls", "name": "API calls", "aggregation": "count"})
    assert metric.status_code == 201, metric.text
    plan = await admin.post("/api/v1/admin/plans", json={"code": f"capped-{suffix}", "name": "Capped", "terms": {
        "currency": "INR", "base_fee": "0",
        "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.5"}}],
        "quotas": [{"metric_code": "api_calls", "limit": str(LIMIT), "cap": "hard"}],
        "enforce_quotas_at_ingest": enforce,
        "entitlements": {"sso": False, "seats": 10, "support": "email"}}})
    assert plan.status_code == 201, plan.text
    subscription = await admin.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_version_id": plan.json()["latest_version"]["id"]})
    assert subscription.status_code == 201, subscription.text
    project = await admin.post("/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": "api"})
    key = (await admin.post("/api/v1/admin/api-keys", json={"project_id": project.json()["id"]})).json()["secret"]
    return {"organisation_id": organisation_id, "project_id": project.json()["id"], "key": key,
            "email": f"alerts-{suffix}@quota.example"}


def _cli(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billing_cli", "--gateway", mesh.gateway_url, "--admin-token", mesh.admin_token, *args],
        capture_output=True, text=True, timeout=60, env=cli_environment())


async def test_quota_alerts_fire_at_the_crossing_events_and_ingest_refuses_past_the_hard_cap(
    mesh: Mesh, mailbox: LocalMailbox
):
    receiver = Receiver()
    async with (
        receiver.serving(),
        httpx.AsyncClient(base_url=mesh.gateway_url, headers={"Authorization": f"Bearer {mesh.admin_token}"},
                          timeout=15) as admin,
    ):
        tenant = await _tenant(admin)
        organisation_id = tenant["organisation_id"]
        endpoint = await admin.post(f"/api/v1/admin/organisations/{organisation_id}/webhook-endpoints",
                                    json={"url": receiver.url, "event_types": ["alert.triggered"]})
        assert endpoint.status_code == 201, endpoint.text
        secret = endpoint.json()["secret"]
        rule = await admin.post("/api/v1/admin/alert-rules", json={
            "organisation_id": organisation_id, "kind": "threshold", "name": "API calls vs quota",
            "metric_code": "api_calls", "basis": "quota_percent", "levels": ["80", "100"]})
        assert rule.status_code == 201, rule.text
        rule_id = rule.json()["id"]
        events = httpx.AsyncClient(base_url=mesh.gateway_url, headers={"Authorization": f"Bearer {tenant['key']}"},
                                   timeout=15)

        async def fired() -> list[dict]:
            page = (await admin.get("/api/v1/admin/fired-alerts", params={"organisation_id": organisation_id}))
            return page.json()["data"]

        # One event per request, each metered before the next: the alert names the exact crossing event.
        for n in range(1, LIMIT + 1):
            sent = await events.post("/api/v1/events", json={"metricName": "api_calls", "metricValue": 1,
                                                              "eventId": f"call-{n}"})
            assert sent.status_code == 202, sent.text

            async def metered(n=n):
                usage = await admin.get("/api/v1/admin/quota", params={"organisation_id": organisation_id,
                                                                       "metric": "api_calls"})
                return usage.json()["used"] == str(n)

            await wait_until(metered, f"event {n} being metered", timeout=30)
            levels = sorted((alert["level"] for alert in await fired()), key=int)
            assert levels == (["80"] if n >= 8 else []) + (["100"] if n >= LIMIT else []), (n, levels)

        alerts = {alert["level"]: alert for alert in await fired()}
        assert alerts["80"]["event_id"] == "call-8" and alerts["80"]["threshold"] == "8"
        assert alerts["100"]["event_id"] == "call-10" and alerts["100"]["value"] == "10"
        assert {a["rule_id"] for a in alerts.values()} == {rule_id}

        # Exactly at the limit: the quota is used up, one more is one over.
        status = await events.get("/api/v1/quota", params={"metric": "api_calls"})
        assert status.status_code == 200, status.text
        body = status.json()
        assert (body["allowed"], body["reason"], body["used"], body["limit"], body["remaining"]) == (
            False, "over_hard_cap", "10", "10", "0")
        assert "api_calls" in body["message"] and "hard" in body["message"]
        assert status.headers["RateLimit-Policy"].startswith('"api_calls";q=10;w=')
        assert status.headers["RateLimit"].startswith('"api_calls";r=0;t=')
        assert (await events.get("/api/v1/quota", params={"metric": "api_calls", "quantity": "0"})).json()["allowed"]

        # The 11th event is refused at the door, and not counted.
        refused = await events.post("/api/v1/events", json={"metricName": "api_calls", "metricValue": 1,
                                                             "eventId": "call-11"})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1 and "api_calls" in refused.json()["detail"]

        # Email and webhook, once per level.
        async with MailboxControl(mailbox.url) as mail:
            messages = await mail.wait_for(lambda m: tenant["email"] in m["rcpt_tos"], count=2, timeout=60)
        assert sorted(m["subject"] for m in messages) == [
            "Alert: api_calls at 100 % of your quota (10 of 10)", "Alert: api_calls at 80 % of your quota (8 of 10)"]

        async def posted():
            return [json.loads(body) for _, body in receiver.received] if len(receiver.received) >= 2 else None

        payloads = await wait_until(posted, "two alert webhooks", timeout=60)
        assert sorted(p["data"]["alert"]["level"] for p in payloads) == ["100", "80"]  # as text
        for headers, body in receiver.received:
            Webhook(secret).verify(body, headers)  # raises unless signed with the endpoint's secret
        assert (await fired()) and len(await fired()) == 2  # nothing fired twice

        # The CLI sees the same.
        denied = _cli(mesh, "quota", "check", "--organisation", organisation_id, "--metric", "api_calls", "--json")
        assert denied.returncode == 3, denied.stdout + denied.stderr
        assert json.loads(denied.stdout)[0]["reason"] == "over_hard_cap"
        history = _cli(mesh, "alerts", "history", "--organisation", organisation_id, "--json")
        assert history.returncode == 0, history.stderr
        assert sorted(a["event_id"] for a in json.loads(history.stdout)) == ["call-10", "call-8"]
        await events.aclose()


async def test_entitlements_plan_value_override_and_unknown_feature(mesh: Mesh):
    async with httpx.AsyncClient(base_url=mesh.gateway_url, headers={"Authorization": f"Bearer {mesh.admin_token}"},
                                 timeout=15) as admin:
        tenant = await _tenant(admin, enforce=False)
        async with QuotaClient(mesh.gateway_url, cache_seconds=0) as quotas:
            assert await quotas.entitlements(tenant["key"]) == {"sso": False, "seats": 10, "support": "email"}
            override = await admin.put(
                f"/api/v1/admin/organisations/{tenant['organisation_id']}/entitlement-overrides/sso",
                json={"value": True})
            assert override.status_code == 200, override.text

            async def overridden():
                return await quotas.entitled(tenant["key"], "sso") is True

            await wait_until(overridden, "the override being answered", timeout=10)
            assert await quotas.entitled(tenant["key"], "audit_log") is False
        answer = (await admin.get("/api/v1/admin/entitlements", params={
            "organisation_id": tenant["organisation_id"], "feature": "audit_log"})).json()
        assert answer["entitlements"] == [{"feature": "audit_log", "value": False, "type": "bool",
                                           "source": "unknown"}]


async def test_the_asgi_middleware_refuses_past_the_cap_and_records_usage_for_what_it_lets_through(mesh: Mesh):
    async with httpx.AsyncClient(base_url=mesh.gateway_url, headers={"Authorization": f"Bearer {mesh.admin_token}"},
                                 timeout=15) as admin:
        tenant = await _tenant(admin)

        async def search(request):
            return PlainTextResponse("results")

        senders = SenderPool(mesh.address("ingest"))
        app = UsageMiddleware(
            Starlette(routes=[Route("/v1/search", search)]),
            resolve=lambda scope: Metered(api_key=tenant["key"], metric="api_calls"),
            quotas=QuotaClient(mesh.gateway_url, cache_seconds=0), senders=senders, fail_open=False,
            check_timeout_seconds=5.0,
        )
        statuses = []
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as api:
                for n in range(1, LIMIT + 1):
                    statuses.append((await api.get("/v1/search")).status_code)

                    async def caught_up(expected=n):
                        answer = await admin.get("/api/v1/admin/quota", params={
                            "organisation_id": tenant["organisation_id"], "metric": "api_calls"})
                        return answer.json()["used"] == str(expected)

                    await wait_until(caught_up, f"request {n}'s usage being metered", timeout=30)
                over = await api.get("/v1/search")
        finally:
            await app.aclose()  # sends what is queued and closes the senders' channels
        assert statuses == [200] * LIMIT
        assert over.status_code == 429 and over.json()["error"] == "quota_exceeded"
        assert int(over.headers["retry-after"]) >= 1 and over.headers["ratelimit"].startswith('"api_calls";r=0')
