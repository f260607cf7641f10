"""Email messages through the gateway and the CLI, against the real notification service (mailing an SMTP server
in this test) and the real invoicing service: an issued invoice is mailed with its PDF, listed, shown with its
attempt, previewed, resent once per key; the key holder sees its organisation's messages only; recipients are
set and refused by field."""

from __future__ import annotations

import email
import email.policy
import json
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from email.message import Message as EmailMessage

import httpx
import pytest
from aiosmtpd.controller import Controller
from nats.js.errors import NotFoundError

from billing_runtime.messaging import stream_name
from billing_runtime.service import Runtime
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.notification.__main__ import DEFINITION as NOTIFICATION
from tests.conftest import running_service
from tests.integration.gateway.billing_setup import billing, only_invoice, run_period, subscribed
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually, new_project


class Mailbox:
    """An aiosmtpd handler: every message the server accepts, parsed (the server runs in its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        with self._lock:
            self._messages.append(email.message_from_bytes(envelope.original_content or envelope.content,
                                                              policy=email.policy.default))
        return "250 2.0.0 accepted"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self._messages if m["To"] and address in m["To"]]


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with socket.socket() as probe:  # the controller checks it started by connecting, so no port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    mailbox.port = port
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture(scope="module")
async def notification(database_url, nats_url, invoicing, mailbox) -> AsyncIterator[Runtime]:
    # Its own durable, so it takes over no other module's place in the stream.
    prefix = f"notification-msgs-{secrets.token_hex(3)}"
    async with running_service(
        NOTIFICATION, database_url, nats_url, invoicing_address=invoicing.address, smtp_host="127.0.0.1",
        smtp_port=mailbox.port, worker_interval_seconds=0.1, retry_base_seconds=0.2, consumer_durable_prefix=prefix,
    ) as runtime:
        # The consumer is made in the background after start, and a consumer starting from new events would miss
        # an invoice issued before it exists.
        await eventually(lambda: _consumer_exists(runtime, f"{prefix}-invoicing"),
                         what="notification's invoicing consumer")
        yield runtime


async def _consumer_exists(runtime: Runtime, durable: str) -> bool:
    try:
        await runtime.js.consumer_info(stream_name("invoicing"), durable)
    except NotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
async def messages_gateway(database_url, nats_url, ingest, invoicing, metering, notification,
                           refused_address) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        notification_address=notification.address,
        payments_address=refused_address,  # not running in these tests: down, not a default port
    ) as runtime:
        yield runtime.http_address


@pytest.fixture
async def admin(messages_gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=messages_gateway, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as client:
        yield client


async def _sent(admin: httpx.AsyncClient, organisation_id: str, count: int) -> list[dict]:
    """The organisation's messages once ``count`` of them are sent."""

    async def listed() -> list[dict]:
        response = await admin.get("/api/v1/admin/messages", params={"organisation_id": organisation_id})
        return response.json()["data"]

    return await eventually(listed, lambda rows: sum(m["state"] == "sent" for m in rows) == count, timeout=60,
                            what=f"{count} sent message(s) of {organisation_id}")


async def test_an_issued_invoice_is_mailed_listed_previewed_and_resent_once_per_key(
    messages_gateway, admin, invoicing, invoicing_stub, ingest_stub, mailbox
):
    address = f"billing-{secrets.token_hex(4)}@acme.example"
    organisation_id = await subscribed(admin, invoicing, billing_email=address)
    assert (await run_period(admin, organisation_id))["invoiced"] == 1
    invoice = await only_invoice(admin, organisation_id)

    (message,) = await _sent(admin, organisation_id, 1)
    assert (message["kind"], message["invoice_id"], message["recipient"], message["attempts"]) == (
        "invoice_issued", invoice["id"], address, 1)
    (mail,) = mailbox.to(address)
    # strip(): the long Subject is folded right after its colon, and the parser keeps the fold's space.
    assert mail["Message-ID"] == message["message_id_header"] and mail["Subject"].strip() == message["subject"]
    assert invoice["number"] in message["subject"]

    # The CLI reads the same list and the attempt with the server's reply.
    code, out = await billing(messages_gateway, "messages", "list", "--organisation", organisation_id, "--json")
    assert code == 0 and [m["id"] for m in json.loads(out)] == [message["id"]], out
    code, out = await billing(messages_gateway, "messages", "list", "--organisation", organisation_id, "--kind",
                              "payment_retry", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out = await billing(messages_gateway, "messages", "show", message["id"])
    assert code == 0 and "Delivery attempts" in out and "2.0.0 accepted" in out, out

    # The preview is what was sent; its page runs no script.
    preview = (await admin.get(f"/api/v1/admin/messages/{message['id']}/preview")).json()
    assert preview["subject"] == message["subject"]
    assert preview["attachments"] == [f"{invoice['number'].replace('/', '-')}.pdf"]
    page = await admin.get(f"/api/v1/admin/messages/{message['id']}/preview.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == preview["html"] and "sandbox" in page.headers["content-security-policy"]
    code, out = await billing(messages_gateway, "messages", "preview", message["id"])
    assert code == 0 and f"Subject: {message['subject']}" in out and invoice["number"] in out

    # A resend needs a key; the same key twice is one copy, one more mail.
    refused = await admin.post(f"/api/v1/admin/messages/{message['id']}/resend")
    assert refused.status_code == 400 and refused.json()["field"] == "Idempotency-Key"
    key = f"it-{secrets.token_hex(4)}"
    code, out = await billing(messages_gateway, "messages", "resend", message["id"], "--idempotency-key", key)
    assert code == 0 and f"a copy of {message['id']}" in out, out
    code, out = await billing(messages_gateway, "messages", "resend", message["id"], "--idempotency-key", key)
    assert code == 0 and "Already resent with this key" in out, out
    messages = await _sent(admin, organisation_id, 2)
    copy = next(m for m in messages if m["id"] != message["id"])
    assert copy["event_id"] == f"resend:{message['id']}:{key}"
    assert copy["message_id_header"] != message["message_id_header"]
    assert sorted(m["Message-ID"] for m in mailbox.to(address)) == sorted(m["message_id_header"] for m in messages)
    audit = (await admin.get("/api/v1/admin/audit-log", params={"limit": 100})).json()
    assert sum(e["action"] == "message.resend" and e["resource_id"] == copy["id"] for e in audit) == 1

    # A key holder sees its own organisation's messages, and another organisation's key sees none of them.
    _, _, secret = await new_project(invoicing_stub, ingest_stub, organisation_id)
    _, _, stranger = await new_project(invoicing_stub, ingest_stub)
    async with httpx.AsyncClient(base_url=messages_gateway, timeout=30) as http:
        mine = await http.get("/api/v1/messages", headers={"Authorization": f"Bearer {secret}"})
        theirs = await http.get("/api/v1/messages", headers={"Authorization": f"Bearer {stranger}"},
                                params={"organisation_id": organisation_id, "invoice_id": invoice["id"]})
    assert sorted(m["id"] for m in mine.json()["data"]) == sorted(m["id"] for m in messages)
    assert theirs.status_code == 200 and theirs.json()["data"] == []


async def test_recipients_are_set_by_the_cli_and_refused_by_field(messages_gateway, admin, invoicing):
    organisation_id = (await admin.post("/api/v1/admin/organisations", json={
        "name": f"Acme {secrets.token_hex(3)}", "billing_email": "billing@acme.example", "billing_currency": "INR",
        "country": "IN", "state_code": "29"})).json()["id"]
    path = f"/api/v1/admin/organisations/{organisation_id}/recipients"
    assert (await admin.get(path)).json() == {"organisation_id": organisation_id, "cc": [], "opted_out": []}

    code, out = await billing(messages_gateway, "messages", "recipients", organisation_id, "--cc",
                              "cfo@acme.example,ap@acme.example", "--opt-out", "payment_retry")
    assert code == 0 and "Recipients set" in out, out
    code, out = await billing(messages_gateway, "messages", "recipients", organisation_id, "--opt-out",
                              "payment_retry,invoice_overdue", "--json")
    assert json.loads(out) == {"organisation_id": organisation_id, "cc": ["cfo@acme.example", "ap@acme.example"],
                               "opted_out": ["invoice_overdue", "payment_retry"]}

    transactional = await admin.put(path, json={"opted_out": ["invoice_issued"]})
    assert transactional.status_code == 400 and transactional.json()["field"] == "opted_out", transactional.text
    bad_address = await admin.put(path, json={"cc": ["cfo@acme.example", "not an address"]})
    assert bad_address.status_code == 400 and bad_address.json()["field"] == "cc[1]", bad_address.text
    assert (await admin.get("/api/v1/admin/organisations/org_missing/recipients")).status_code == 404

    code, out = await billing(messages_gateway, "messages", "recipients", organisation_id, "--clear", "--json")
    assert json.loads(out)["cc"] == [] and json.loads(out)["opted_out"] == []
