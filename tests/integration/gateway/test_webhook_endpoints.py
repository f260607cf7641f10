"""Webhook endpoints through the gateway and the CLI, against the real notification service posting to an HTTP
receiver in this test (which verifies each post with the standardwebhooks library): an endpoint is created by the
CLI with its secret shown once, a test webhook is posted and verified with that secret, its delivery is listed and
shown by the CLI, replayed once per key, and the key holder sees its own organisation's endpoint only."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from billing_runtime.service import Runtime
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.notification.__main__ import DEFINITION as NOTIFICATION
from tests.conftest import running_service
from tests.integration.gateway.billing_setup import billing
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually, new_project
from tests.integration.notification.receiver import Receiver


@pytest.fixture(scope="module")
async def notification(database_url, nats_url, invoicing, refused_address) -> AsyncIterator[Runtime]:
    async with running_service(
        NOTIFICATION, database_url, nats_url, invoicing_address=invoicing.address,
        smtp_port=int(refused_address.rsplit(":", 1)[1]),  # mail goes nowhere: these tests look at webhooks
        worker_interval_seconds=0.1, webhooks_retry_schedule_seconds=[0.2, 0.3],
        # The receiver is on 127.0.0.1, as a `make run` receiver is.
        webhooks_allow_private_addresses=True,
        # Its own durables, so it takes over no other module's place in the streams.
        consumer_durable_prefix=f"notification-webhooks-{secrets.token_hex(3)}",
    ) as runtime:
        yield runtime


@pytest.fixture(scope="module")
async def webhooks_gateway(database_url, nats_url, ingest, invoicing, metering, notification,
                           refused_address) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        notification_address=notification.address,
        payments_address=refused_address,  # not running in these tests: down, not a default port
    ) as runtime:
        yield runtime.http_address


async def test_an_endpoint_made_by_the_cli_gets_a_signed_test_webhook_listed_shown_and_replayed_once(
    webhooks_gateway, receiver, invoicing_stub, ingest_stub
):
    async with httpx.AsyncClient(base_url=webhooks_gateway, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as admin:
        organisation_id = (await admin.post("/api/v1/admin/organisations", json={
            "name": f"Acme {secrets.token_hex(3)}", "billing_email": "billing@acme.example",
            "billing_currency": "INR", "country": "IN", "state_code": "29"})).json()["id"]
        url = f"{receiver.url}/hooks/{organisation_id}"

        # Created by the CLI: the secret is printed once, and never by a read.
        code, out = await billing(webhooks_gateway, "webhooks", "endpoints", "create", organisation_id, "--url",
                                  url, "--event-types", "invoice.paid", "--json")
        assert code == 0, out
        created = json.loads(out)
        endpoint_id, secret = created["id"], created["secret"]
        assert secret.startswith("whsec_") and created["event_types"] == ["invoice.paid"]
        code, out = await billing(webhooks_gateway, "webhooks", "endpoints", "list", "--organisation",
                                  organisation_id)
        assert code == 0 and endpoint_id in out and secret not in out and "whsec_" not in out, out
        shown = (await admin.get(f"/api/v1/admin/webhook-endpoints/{endpoint_id}")).json()
        assert "secret" not in shown and shown["url"] == url

        # A test webhook arrives signed with that secret.
        code, out = await billing(webhooks_gateway, "webhooks", "endpoints", "test", endpoint_id, "--json")
        assert code == 0, out
        test_delivery = json.loads(out)
        await eventually(lambda: _posts_to(receiver, organisation_id), lambda posts: len(posts) == 1,
                         what="the test webhook at the receiver")
        (_, headers, body) = _at(receiver, organisation_id)[0]
        event = Webhook(secret).verify(body, headers)
        assert event["type"] == "webhook.test" and headers["webhook-id"] == test_delivery["webhook_id"]

        # The CLI lists it delivered and shows its attempt.
        async def listed() -> list[dict]:
            code, out = await billing(webhooks_gateway, "webhooks", "deliveries", "list", "--endpoint",
                                      endpoint_id, "--json")
            assert code == 0, out
            return json.loads(out)

        rows = await eventually(listed, lambda rows: [d["state"] for d in rows] == ["delivered"],
                                what="the test delivery listed as delivered")
        assert rows[0]["id"] == test_delivery["id"] and rows[0]["last_status_code"] == 200
        code, out = await billing(webhooks_gateway, "webhooks", "deliveries", "show", test_delivery["id"])
        assert code == 0 and "Attempts of" in out and "200" in out and test_delivery["webhook_id"] in out, out

        # A replay is made once per key, with the same webhook-id, so the receiver can drop it.
        key = f"it-{secrets.token_hex(4)}"
        for expected in ("queued, a replay of", "Already replayed with this key"):
            code, out = await billing(webhooks_gateway, "webhooks", "deliveries", "replay", test_delivery["id"],
                                      "--idempotency-key", key)
            assert code == 0 and expected in out, out
        await eventually(lambda: _posts_to(receiver, organisation_id), lambda posts: len(posts) == 2,
                         what="the replay at the receiver")
        assert {headers["webhook-id"] for _, headers, _ in _at(receiver, organisation_id)} == {
            test_delivery["webhook_id"]}

        # The audit log names the endpoint, never its secret.
        audit = (await admin.get("/api/v1/admin/audit-log", params={"limit": 100})).json()
        assert any(e["action"] == "webhook_endpoint.create" and e["resource_id"] == endpoint_id for e in audit)
        assert secret not in json.dumps(audit)

        # Notification's refusal of a URL is 400 naming `url` (private addresses are allowed here, so a scheme it
        # refuses stands for them).
        refused = await admin.post(f"/api/v1/admin/organisations/{organisation_id}/webhook-endpoints",
                                   json={"url": "ftp://hooks.acme.example/"})
        assert refused.status_code == 400 and refused.json()["field"] == "url", refused.text

    # The key holder sees its organisation's endpoint; another organisation's key gets 404 for it.
    _, _, mine = await new_project(invoicing_stub, ingest_stub, organisation_id)
    _, _, stranger = await new_project(invoicing_stub, ingest_stub)
    async with httpx.AsyncClient(base_url=webhooks_gateway, timeout=30) as http:
        listed_mine = await http.get("/api/v1/webhook-endpoints", headers={"Authorization": f"Bearer {mine}"})
        theirs = await http.get(f"/api/v1/webhook-endpoints/{endpoint_id}",
                                headers={"Authorization": f"Bearer {stranger}"})
        their_deliveries = await http.get("/api/v1/webhook-deliveries", params={"endpoint_id": endpoint_id},
                                          headers={"Authorization": f"Bearer {stranger}"})
    assert [e["id"] for e in listed_mine.json()["data"]] == [endpoint_id]
    assert theirs.status_code == 404 and their_deliveries.json()["data"] == []

    code, out = await billing(webhooks_gateway, "webhooks", "endpoints", "delete", endpoint_id)
    assert code == 0 and "deleted" in out, out
    code, out = await billing(webhooks_gateway, "webhooks", "endpoints", "show", endpoint_id)
    assert code == 1 and out.startswith("404"), out


def _at(receiver: Receiver, organisation_id: str) -> list[tuple[str, dict[str, str], bytes]]:
    return [(post.path, post.headers, post.body) for post in receiver.at(organisation_id)]


async def _posts_to(receiver: Receiver, organisation_id: str) -> list[tuple[str, dict[str, str], bytes]]:
    return _at(receiver, organisation_id)
