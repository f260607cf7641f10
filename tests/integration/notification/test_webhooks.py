"""Webhooks through the running notification service: events published to JetStream as invoicing and payments
publish them, posted to a real HTTP receiver that verifies every delivery with the standardwebhooks library."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import timedelta

import grpc
import nats
import pytest
from google.protobuf.duration_pb2 import Duration

from billing.invoicing.v1 import events_pb2 as invoicing_events
from billing.invoicing.v1 import invoicing_pb2
from billing.notification.v1 import notification_pb2 as pb
from billing.notification.v1 import notification_pb2_grpc
from billing_runtime.error_mapping import from_grpc_error
from billing_runtime.messaging import ensure_stream
from services.notification.__main__ import DEFINITION as NOTIFICATION
from tests.conftest import create_database, drop_database, mesh_channel, running_service
from tests.integration.notification.receiver import Received

SCHEDULE = [0.2, 0.3, 0.5, 0.5, 1.0]


def _settings(refused_address: str, **extra: object) -> dict[str, object]:
    return {
        "invoicing_address": refused_address,
        # Mail goes nowhere (a port where nothing listens): these tests look at webhooks and recorded mail.
        "smtp_port": int(refused_address.rsplit(":", 1)[1]),
        "worker_interval_seconds": 0.1,
        "webhooks_retry_schedule_seconds": SCHEDULE,
        **extra,
    }


@pytest.fixture(scope="module")
async def notification(database_url, nats_url, refused_address):
    async with running_service(NOTIFICATION, database_url, nats_url,
                               **_settings(refused_address, webhooks_allow_private_addresses=True)) as runtime:
        async with mesh_channel(runtime.address) as channel:
            yield notification_pb2_grpc.NotificationServiceStub(channel)


@pytest.fixture(scope="module")
async def js(nats_url):
    client = await nats.connect(nats_url)
    js = client.jetstream()
    # The owners' streams, as invoicing and payments make them (when they already ran, this changes nothing).
    await ensure_stream(js, "BILLING_INVOICING", ["billing.invoicing.v1.>"])
    await ensure_stream(js, "BILLING_PAYMENTS", ["billing.payments.v1.>"])
    yield js
    await client.drain()


def _invoice(organisation_id: str, invoice_id: str, **values: object) -> invoicing_pb2.Invoice:
    return invoicing_pb2.Invoice(
        id=invoice_id, organisation_id=organisation_id, number=f"INV/2627/{invoice_id[-5:]}", currency="INR",
        total_minor=117882, issue_date="2026-12-05", due_date="2026-12-20", period_key="2026-11",
        customer=invoicing_pb2.Party(name="Acme Analytics", email="billing@acme.example"), **values)


async def publish_issued_and_paid(js, organisation_id: str) -> str:
    invoice_id = f"inv_{secrets.token_hex(6)}"
    issued = invoicing_events.InvoiceIssued(event_id=f"evt_issued_{invoice_id}",
                                            invoice=_invoice(organisation_id, invoice_id))
    await js.publish("billing.invoicing.v1.invoice.issued", issued.SerializeToString(),
                     headers={"Nats-Msg-Id": issued.event_id})
    paid = invoicing_events.InvoicePaid(event_id=f"invoice.paid:{invoice_id}:1",
                                        invoice=_invoice(organisation_id, invoice_id, amount_paid_minor=117882))
    await js.publish("billing.invoicing.v1.invoice.paid", paid.SerializeToString(),
                     headers={"Nats-Msg-Id": paid.event_id})
    return invoice_id


def _organisation() -> str:
    return f"org_{secrets.token_hex(6)}"


async def test_a_receiver_failing_for_a_while_gets_every_event_exactly_once_by_webhook_id(
    notification, js, receiver
):
    organisation_id = _organisation()
    created = await notification.CreateEndpoint(pb.CreateEndpointRequest(
        organisation_id=organisation_id, url=f"{receiver.url}/hooks/flaky", description="flaky for a while"))
    assert created.secret.startswith("whsec_") and created.endpoint.enabled
    receiver.secrets["flaky"] = [created.secret]
    receiver.answers["flaky"] = [500, 500, 503]
    invoice_id = await publish_issued_and_paid(js, organisation_id)

    def accepted() -> list[Received]:
        return [r for r in receiver.at("flaky") if r.status == 200]

    await receiver.wait_for(lambda: len(accepted()) == 2)
    await asyncio.sleep(1.0)  # nothing more comes once both were accepted
    got = receiver.at("flaky")
    assert all(r.verified_by == [created.secret] for r in got)
    assert len(got) == 5 and len({r.webhook_id for r in accepted()}) == 2
    payloads = {json.loads(r.body)["type"]: json.loads(r.body) for r in accepted()}
    assert set(payloads) == {"invoice.issued", "invoice.paid"}
    data = payloads["invoice.paid"]["data"]
    assert (data["invoice"]["id"], data["amount_minor"], data["amount"]) == (invoice_id, 117882, "1178.82")
    # Retries of one message carry its one webhook-id.
    assert {r.webhook_id for r in got} == {r.webhook_id for r in accepted()}

    listed = await notification.ListDeliveries(pb.ListDeliveriesRequest(endpoint_id=created.endpoint.id))
    assert [d.state for d in listed.deliveries] == [pb.WEBHOOK_DELIVERY_STATE_DELIVERED] * 2
    retried = max(listed.deliveries, key=lambda d: d.attempts)
    detail = await notification.GetDelivery(pb.GetDeliveryRequest(delivery_id=retried.id))
    assert [a.status_code for a in detail.attempts][-1] == 200 and 500 in [a.status_code for a in detail.attempts]
    assert detail.attempts[0].response_body.startswith("answer 5")

    replayed = await notification.ReplayDelivery(pb.ReplayDeliveryRequest(delivery_id=retried.id,
                                                                          idempotency_key="replay-once"))
    again = await notification.ReplayDelivery(pb.ReplayDeliveryRequest(delivery_id=retried.id,
                                                                       idempotency_key="replay-once"))
    assert replayed.created and not again.created and again.delivery.id == replayed.delivery.id
    await receiver.wait_for(lambda: len(receiver.at("flaky")) == 6)
    assert receiver.at("flaky")[-1].webhook_id == retried.webhook_id


async def test_410_disables_the_endpoint_and_the_organisation_is_told_by_mail(notification, js, receiver):
    organisation_id = _organisation()
    created = await notification.CreateEndpoint(pb.CreateEndpointRequest(
        organisation_id=organisation_id, url=f"{receiver.url}/hooks/gone", event_types=["invoice.issued"]))
    receiver.secrets["gone"] = [created.secret]
    receiver.answers["gone"] = [410]
    await publish_issued_and_paid(js, organisation_id)
    get = pb.GetEndpointRequest(endpoint_id=created.endpoint.id)
    for _ in range(200):
        endpoint = (await notification.GetEndpoint(get)).endpoint
        if not endpoint.enabled:
            break
        await asyncio.sleep(0.1)
    assert endpoint.disabled_reason.startswith("gone") and endpoint.HasField("disable_time")
    assert len(receiver.at("gone")) == 1 and receiver.at("gone")[0].verified_by  # invoice.paid was not subscribed
    mail = await notification.ListMessages(pb.ListMessagesRequest(organisation_id=organisation_id,
                                                                  kind=pb.MESSAGE_KIND_ENDPOINT_DISABLED))
    assert [m.recipient for m in mail.messages] == ["billing@acme.example"]
    assert "Webhook endpoint disabled" in (await notification.PreviewMessage(
        pb.PreviewMessageRequest(message_id=mail.messages[0].id))).subject


async def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(notification, receiver):
    created = await notification.CreateEndpoint(pb.CreateEndpointRequest(
        organisation_id=_organisation(), url=f"{receiver.url}/hooks/rotating"))
    old = created.secret
    rotated = await notification.RotateEndpointSecret(pb.RotateEndpointSecretRequest(
        endpoint_id=created.endpoint.id))
    new = rotated.secret
    assert new != old and rotated.endpoint.HasField("previous_secret_expire_time")
    overlap = rotated.endpoint.previous_secret_expire_time.ToDatetime() - rotated.endpoint.update_time.ToDatetime()
    assert timedelta(hours=23) < overlap <= timedelta(hours=24)
    receiver.secrets["rotating"] = [old, new]
    await notification.SendTestWebhook(pb.SendTestWebhookRequest(endpoint_id=created.endpoint.id))
    await receiver.wait_for(lambda: len(receiver.at("rotating")) == 1)
    first = receiver.at("rotating")[0]
    assert first.verified_by == [old, new] and json.loads(first.body)["type"] == "webhook.test"

    newest = (await notification.RotateEndpointSecret(pb.RotateEndpointSecretRequest(
        endpoint_id=created.endpoint.id, overlap=Duration(seconds=0)))).secret
    receiver.secrets["rotating"] = [old, new, newest]
    await notification.SendTestWebhook(pb.SendTestWebhookRequest(endpoint_id=created.endpoint.id))
    await receiver.wait_for(lambda: len(receiver.at("rotating")) == 2)
    assert receiver.at("rotating")[1].verified_by == [newest]
    # Secrets never appear in reads.
    read = await notification.GetEndpoint(pb.GetEndpointRequest(endpoint_id=created.endpoint.id))
    assert newest not in str(read) and old not in str(read)


@pytest.fixture(scope="module")
async def strict_notification(infrastructure, nats_url, refused_address):
    """An instance with private addresses refused (the production default), on its own database."""
    database_url = await create_database(infrastructure.server_url, "billing_test_strict")
    try:
        async with running_service(NOTIFICATION, database_url, nats_url,
                                   **_settings(refused_address, consumer_durable_prefix="notification-strict")
                                   ) as runtime:
            async with mesh_channel(runtime.address) as channel:
                yield notification_pb2_grpc.NotificationServiceStub(channel)
    finally:
        await drop_database(infrastructure.server_url, database_url)


@pytest.mark.parametrize("url", ["http://10.0.0.1/hooks", "http://169.254.169.254/latest/meta-data",
                                 "http://localhost:8080/hooks", "http://127.0.0.1:9/", "ftp://hooks.example/"])
async def test_endpoints_at_non_public_addresses_are_refused_naming_url(strict_notification, url):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await strict_notification.CreateEndpoint(pb.CreateEndpointRequest(organisation_id=_organisation(), url=url))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert from_grpc_error(caught.value).field == "url"
