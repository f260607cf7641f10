"""Fired alerts through the running notification service: a real AlertTriggered protobuf published on metering's
JetStream stream (made here as metering makes it, after notification started waiting for it) is mailed once to
the billing email a real invoicing has for the organisation (the local SMTP mailbox of sandboxes/smtp) and posted
once, signed, to a real HTTP receiver; the same event delivered again sends nothing more."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import nats
import pytest
from nats.js.errors import NotFoundError

from billing.metering.v1 import events_pb2 as metering_events
from billing.metering.v1 import metering_pb2
from billing.notification.v1 import notification_pb2 as pb
from billing.notification.v1 import notification_pb2_grpc
from billing_runtime.messaging import ensure_stream, stream_name
from billing_runtime.service import Runtime
from billing_runtime.timestamps import to_timestamp
from sandboxes.smtp import running_mailbox
from services.notification.__main__ import DEFINITION as NOTIFICATION
from tests.conftest import mesh_channel, running_service
from tests.integration.helpers import organisation_request
from tests.integration.notification.receiver import Receiver

SUBJECT = "billing.metering.v1.alert.triggered"


@dataclass
class Alerting:
    mailbox: object
    notification: Runtime
    stub: notification_pb2_grpc.NotificationServiceStub
    js: object
    durable: str


@pytest.fixture(scope="module")
async def alerting(database_url, nats_url, invoicing) -> AsyncIterator[Alerting]:
    prefix = f"notification-{secrets.token_hex(4)}"
    async with running_mailbox() as mailbox, running_service(
        NOTIFICATION, database_url, nats_url, invoicing_address=invoicing.address, smtp_host=mailbox.smtp_host,
        smtp_port=mailbox.smtp_port, worker_interval_seconds=0.1, webhooks_allow_private_addresses=True,
        webhooks_retry_schedule_seconds=[0.2, 0.5], consumer_durable_prefix=prefix,
    ) as notification:
        client = await nats.connect(nats_url)
        js = client.jetstream()
        # Metering's stream, as metering makes it on start; notification may have started first and waits for it.
        await ensure_stream(js, stream_name("metering"), ["billing.metering.v1.>"])
        durable = f"{prefix}-metering"
        # The consumer starts from new events: publish only once it exists.
        async with asyncio.timeout(30):
            while True:
                try:
                    await js.consumer_info(stream_name("metering"), durable)
                    break
                except NotFoundError:
                    await asyncio.sleep(0.1)
        try:
            async with mesh_channel(notification.address) as channel:
                yield Alerting(mailbox, notification, notification_pb2_grpc.NotificationServiceStub(channel), js,
                               durable)
        finally:
            await client.drain()


def _cost_alert(organisation_id: str) -> metering_events.AlertTriggered:
    alert_id = f"alf_{secrets.token_hex(6)}"
    rule = metering_pb2.AlertRule(
        id=f"alr_{secrets.token_hex(6)}", organisation_id=organisation_id, kind=metering_pb2.ALERT_KIND_COST,
        name="Budget <watch>", levels=["80", "100"], budget="10000", currency="INR")
    return metering_events.AlertTriggered(
        event_id=f"alert.triggered:{alert_id}", rule=rule,
        alert=metering_pb2.FiredAlert(
            id=alert_id, rule_id=rule.id, organisation_id=organisation_id, kind=metering_pb2.ALERT_KIND_COST,
            level="80", threshold="8000.00", value="8012.50", currency="INR",
            period_start=to_timestamp(datetime(2026, 12, 1, tzinfo=UTC)),
            period_end=to_timestamp(datetime(2027, 1, 1, tzinfo=UTC)),
            fire_time=to_timestamp(datetime.now(UTC)), rule_name=rule.name))


async def _all_acked(alerting: Alerting) -> bool:
    info = await alerting.js.consumer_info(stream_name("metering"), alerting.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_fired_alert_is_mailed_and_posted_once_even_when_delivered_twice(
    alerting, invoicing_stub, receiver: Receiver
):
    email = f"billing-{secrets.token_hex(3)}@acme.example"
    organisation_id = (await invoicing_stub.CreateOrganisation(
        organisation_request(billing_email=email, name="Acme Alerts"))).organisation.id
    created = await alerting.stub.CreateEndpoint(pb.CreateEndpointRequest(
        organisation_id=organisation_id, url=f"{receiver.url}/hooks/alerts", event_types=["alert.triggered"]))
    invoices_only = await alerting.stub.CreateEndpoint(pb.CreateEndpointRequest(
        organisation_id=organisation_id, url=f"{receiver.url}/hooks/invoices-only", event_types=["invoice.issued"]))
    assert invoices_only.endpoint.event_types == ["invoice.issued"]
    receiver.secrets["alerts"] = [created.secret]

    event = _cost_alert(organisation_id)
    await alerting.js.publish(SUBJECT, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})

    [mail] = await alerting.mailbox.wait_for(lambda m: email in m.addresses("To"), timeout=30.0)
    assert mail.header("Subject") == "Alert: projected cost at 80 % of your budget (INR 8,012.50)"
    text = mail.email.get_body(("plain",)).get_content()
    html = mail.email.get_body(("html",)).get_content()
    assert "80 % of your budget of INR 10,000.00" in text and "INR 8,012.50" in text and "Acme Alerts" in text
    assert "Budget &lt;watch&gt;" in html and "Budget <watch>" not in html
    await receiver.wait_for(lambda: len(receiver.at("alerts")) == 1)
    [posted] = receiver.at("alerts")
    assert posted.verified_by == [created.secret] and posted.status == 200
    body = json.loads(posted.body)
    assert body["type"] == "alert.triggered" and body["data"]["event_id"] == event.event_id
    assert body["data"]["alert"] | {"id": event.alert.id, "kind": "cost", "value": "8012.50",
                                    "currency": "INR"} == body["data"]["alert"]
    assert body["data"]["rule"]["budget"] == "10000"

    # The same event again (a redelivery past JetStream's duplicate window): nothing more is recorded or sent.
    await alerting.js.publish(SUBJECT, event.SerializeToString(),
                              headers={"Nats-Msg-Id": f"again-{secrets.token_hex(4)}"})
    async with asyncio.timeout(30):
        while not await _all_acked(alerting):  # noqa: ASYNC110 - polling JetStream's view of the consumer
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # and the workers had their rounds
    assert sum(email in m.addresses("To") for m in alerting.mailbox.messages()) == 1
    assert len(receiver.at("alerts")) == 1 and receiver.at("invoices-only") == []
    [message] = (await alerting.stub.ListMessages(pb.ListMessagesRequest(organisation_id=organisation_id))).messages
    assert (message.event_id, message.recipient, message.state) == (event.event_id, email, pb.MESSAGE_STATE_SENT)
    assert message.subject == mail.header("Subject") and not message.invoice_id
    preview = await alerting.stub.PreviewMessage(pb.PreviewMessageRequest(message_id=message.id))
    assert preview.subject == message.subject and not preview.attachments
    deliveries = await alerting.stub.ListDeliveries(pb.ListDeliveriesRequest(organisation_id=organisation_id))
    assert [(d.event_type, d.state) for d in deliveries.deliveries] == [
        ("alert.triggered", pb.WEBHOOK_DELIVERY_STATE_DELIVERED)]


async def test_an_organisation_invoicing_does_not_know_gets_its_webhooks_but_no_mail(alerting, receiver):
    organisation_id = f"org_{secrets.token_hex(6)}"
    created = await alerting.stub.CreateEndpoint(pb.CreateEndpointRequest(
        organisation_id=organisation_id, url=f"{receiver.url}/hooks/unknown-org"))
    receiver.secrets["unknown-org"] = [created.secret]
    event = _cost_alert(organisation_id)
    await alerting.js.publish(SUBJECT, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})
    await receiver.wait_for(lambda: len(receiver.at("unknown-org")) == 1)
    assert receiver.at("unknown-org")[0].verified_by == [created.secret]
    listed = await alerting.stub.ListMessages(pb.ListMessagesRequest(organisation_id=organisation_id))
    assert list(listed.messages) == []

