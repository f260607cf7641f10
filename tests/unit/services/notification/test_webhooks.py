"""Webhooks over fakes: fan-out at intake, Standard Webhooks signatures, the retry schedule, disabling, URLs."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.notification.adapters.email_builder import Sender
from services.notification.adapters.templates import Branding, Templates
from services.notification.domain.endpoint_address import refused_address
from services.notification.domain.messages import MessageKind, MessageState, RetrySchedule
from services.notification.domain.notice import Notice
from services.notification.domain.webhook_payload import amount_text
from services.notification.domain.webhooks import DeliveryState, EndpointState, WebhookSchedule, webhook_id
from services.notification.service import endpoints, intake, sending, webhook_sending
from tests.unit.services.notification.fakes import FakeDocuments, FakeMailer, FakeUnit, Store, facts
from tests.unit.services.notification.webhook_fakes import FakeReceiver, FakeResolver

# Signatures carry a timestamp receivers check against their clock (5 minutes either way): use the real time.
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_is_when_the_test_runs(monkeypatch):
    """Receivers check a webhook's timestamp against their own clock (5 minutes' tolerance): NOW is the moment each
    test starts, not when the module was imported (a long suite runs other tests in between)."""
    monkeypatch.setattr(sys.modules[__name__], "NOW", datetime.now(UTC).replace(microsecond=0))
DOMAIN = "billing.example"
SCHEDULE = WebhookSchedule(tuple(timedelta(seconds=s) for s in (5, 60, 600)))


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def uow(store):
    return lambda: FakeUnit(store)


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver({"hooks.acme.example": ["93.184.216.34"], "localhost": ["127.0.0.1", "::1"]})


@pytest.fixture
def receiver() -> FakeReceiver:
    return FakeReceiver()


@pytest.fixture
def posting(receiver, resolver) -> webhook_sending.WebhookSending:
    return webhook_sending.WebhookSending(receiver, resolver, SCHEDULE, False, timedelta(minutes=2), DOMAIN,
                                          clock=lambda: NOW)


async def endpoint(uow, resolver, *, types: tuple[str, ...] = (), url: str = "https://hooks.acme.example/in",
                   organisation_id: str = "org_1"):
    return await endpoints.create_endpoint(uow, resolver, False, organisation_id=organisation_id, url=url,
                                           event_types=list(types), description="")


def issued(event_id: str = "evt_issued_1") -> Notice:
    return Notice(event_id, MessageKind.INVOICE_ISSUED, "inv_1", amount_minor=117882)


def paid(event_id: str = "evt_paid_1") -> Notice:
    return Notice(event_id, MessageKind.PAYMENT_RECEIPT, "inv_1", occurred_at=NOW, amount_minor=117882)


async def test_an_event_fans_out_once_to_each_enabled_subscribed_endpoint_of_its_organisation(uow, store, resolver):
    every = await endpoint(uow, resolver)
    paid_only = await endpoint(uow, resolver, types=("invoice.paid",))
    switched_off = await endpoint(uow, resolver)
    await endpoints.update_endpoint(uow, resolver, False, switched_off.id, {"enabled": False}, NOW)
    await endpoint(uow, resolver, organisation_id="org_2")
    assert await intake.record(uow, issued(), NOW, DOMAIN, facts()) == 2  # the mail and one webhook
    assert {d.endpoint_id for d in store.deliveries.values()} == {every.id}
    assert await intake.record(uow, paid(), NOW, DOMAIN) == 3
    assert await intake.record(uow, paid(), NOW, DOMAIN) == 0  # a redelivered event
    to_paid_only = [d for d in store.deliveries.values() if d.endpoint_id == paid_only.id]
    assert [d.event_type for d in to_paid_only] == ["invoice.paid"]
    [delivery] = to_paid_only
    assert delivery.webhook_id == webhook_id("evt_paid_1", paid_only.id) and delivery.webhook_id.startswith("msg_")
    payload = json.loads(delivery.payload)
    assert payload["type"] == "invoice.paid" and datetime.fromisoformat(payload["timestamp"]) == NOW
    data = payload["data"]
    assert (data["amount_minor"], data["amount"], data["invoice"]["number"]) == (117882, "1178.82", "INV/2627/00001")
    assert data["invoice"]["currency"] == "INR" and data["invoice"]["total"] == "1178.82"
    assert "payment_link_url" not in data  # keys that do not apply are left out


async def test_webhooks_go_out_even_when_the_invoice_has_no_billing_email(uow, store, resolver):
    await endpoint(uow, resolver)
    assert await intake.record(uow, issued(), NOW, DOMAIN, facts(email="")) == 1
    assert store.messages == {} and len(store.deliveries) == 1


async def test_posts_are_signed_as_standard_webhooks_and_verify_with_the_receivers_library(
    uow, store, resolver, receiver, posting
):
    hook = await endpoint(uow, resolver)
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    assert await webhook_sending.send_due(uow, posting, NOW) == 1
    [(url, headers, body)] = receiver.requests
    assert url == "https://hooks.acme.example/in" and headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert Webhook(hook.secret).verify(body, headers)["type"] == "invoice.issued"
    assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    delivery = next(iter(store.deliveries.values()))
    assert delivery.state is DeliveryState.DELIVERED and delivery.attempts == 1
    assert body.decode() == delivery.payload and headers["webhook-id"] == delivery.webhook_id


async def test_during_a_rotation_both_secrets_sign_and_afterwards_only_the_new_one(
    uow, store, resolver, receiver, posting
):
    hook = await endpoint(uow, resolver)
    rotated, secret = await endpoints.rotate_secret(uow, hook.id, timedelta(hours=24), NOW - timedelta(seconds=1))
    assert secret != hook.secret and secret.startswith("whsec_")
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    await webhook_sending.send_due(uow, posting, NOW)
    _, headers, body = receiver.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(hook.secret).verify(body, headers)
    Webhook(secret).verify(body, headers)
    # The overlap was cut short by a second rotation with no overlap: the old secrets no longer verify.
    _, newest = await endpoints.rotate_secret(uow, hook.id, timedelta(0), NOW)
    await intake.record(uow, paid(), NOW, DOMAIN)
    await webhook_sending.send_due(uow, posting, NOW)
    _, headers, body = receiver.requests[-1]
    Webhook(newest).verify(body, headers)
    for old in (hook.secret, secret):
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)


async def test_failures_retry_on_the_schedule_then_the_delivery_fails_and_the_organisation_is_mailed(
    uow, store, resolver, receiver, posting
):
    hook = await endpoint(uow, resolver)
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    receiver.answers = [500, 0, 503, 502]  # 0: a timeout after the request went out, retried too
    await webhook_sending.send_due(uow, posting, NOW)
    delivery = next(iter(store.deliveries.values()))
    assert delivery.state is DeliveryState.PENDING and delivery.next_attempt_at == NOW + timedelta(seconds=5)
    assert await webhook_sending.send_due(uow, posting, NOW + timedelta(seconds=4)) == 0
    await webhook_sending.send_due(uow, posting, NOW + timedelta(seconds=5))
    assert store.deliveries[delivery.id].next_attempt_at == NOW + timedelta(seconds=65)
    await webhook_sending.send_due(uow, posting, NOW + timedelta(seconds=65))
    await intake.record(uow, issued("evt_issued_2"), NOW, DOMAIN)
    await webhook_sending.send_due(uow, posting, NOW + timedelta(seconds=665))
    failed = store.deliveries[delivery.id]
    assert (failed.state, failed.attempts, failed.last_status_code) == (DeliveryState.FAILED, 4, 502)
    errors = [a.error for a in store.delivery_attempts if a.delivery_id == delivery.id]
    assert errors == ["HTTP 500", "timed out: ReadTimeout", "HTTP 503", "HTTP 502"]
    disabled = store.endpoints[hook.id]
    assert disabled.state is EndpointState.DISABLED and disabled.disabled_reason.startswith("failing")
    [mail] = [m for m in store.messages.values() if m.kind is MessageKind.ENDPOINT_DISABLED]
    assert mail.recipient == "billing@acme.example" and mail.invoice_id == ""
    # The mail goes out through the ordinary mail path, rendered from its template.
    mailer = FakeMailer()
    delivery_ = sending.Delivery(mailer, Templates(Branding()), FakeDocuments(), Sender(), RetrySchedule())
    while await sending.send_due(uow, delivery_, NOW + timedelta(seconds=700)):
        pass
    [email] = [e for e in mailer.sent if "Webhook endpoint disabled" in e["Subject"]]
    assert "https://hooks.acme.example/in" in email.get_body(("plain",)).get_content()
    assert store.messages[mail.id].state is MessageState.SENT
    # The other delivery to the disabled endpoint fails without being sent.
    sent_before = len(receiver.requests)
    await webhook_sending.send_due(uow, posting, NOW + timedelta(seconds=666))
    assert len(receiver.requests) == sent_before
    assert all(d.state is DeliveryState.FAILED for d in store.deliveries.values())


async def test_410_gone_disables_the_endpoint_at_once(uow, store, resolver, receiver, posting):
    hook = await endpoint(uow, resolver)
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    receiver.answers = [410]
    await webhook_sending.send_due(uow, posting, NOW)
    assert next(iter(store.deliveries.values())).state is DeliveryState.FAILED
    assert store.endpoints[hook.id].disabled_reason.startswith("gone")
    assert [m.kind for m in store.messages.values()].count(MessageKind.ENDPOINT_DISABLED) == 1


@pytest.mark.parametrize("url", ["ftp://hooks.acme.example/in", "https://10.0.0.1/hook", "http://169.254.169.254/",
                                 "http://localhost:8080/", "http://[::1]/", "http://127.0.0.1/", "http://0.0.0.0/",
                                 "http://[::ffff:192.168.1.1]/", "http://224.0.0.1/", "https://nowhere.invalid/",
                                 "https://user:pw@hooks.acme.example/", "not a url"])
async def test_urls_that_are_not_public_http_are_refused_naming_url(uow, resolver, url):
    with pytest.raises(InvalidArgument) as caught:
        await endpoint(uow, resolver, url=url)
    assert caught.value.field == "url"


async def test_the_operator_may_allow_private_addresses(uow, resolver):
    made = await endpoints.create_endpoint(uow, resolver, True, organisation_id="org_1",
                                           url="http://localhost:8080/hooks", event_types=[], description="demo")
    assert made.enabled
    with pytest.raises(InvalidArgument):  # still http(s) only
        await endpoints.create_endpoint(uow, resolver, True, organisation_id="org_1", url="file:///etc/passwd",
                                        event_types=[], description="")
    with pytest.raises(InvalidArgument) as caught:
        await endpoints.update_endpoint(uow, resolver, False, made.id, {"url": "http://10.1.2.3/"}, NOW)
    assert caught.value.field == "endpoint.url"


def test_address_classes():
    assert refused_address("93.184.216.34") is None and refused_address("2606:2800:220:1::1") is None
    for private in ("10.0.0.1", "172.16.5.4", "192.168.0.1", "100.64.0.1", "fd00::1", "fe80::1%eth0", "240.0.0.1"):
        assert refused_address(private), private


async def test_a_host_that_now_resolves_to_a_private_address_is_not_posted_to(
    uow, store, resolver, receiver, posting
):
    await endpoint(uow, resolver)
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    resolver.hosts["hooks.acme.example"] = ["10.0.0.7"]  # DNS changed after the endpoint was saved
    await webhook_sending.send_due(uow, posting, NOW)
    assert receiver.requests == []
    delivery = next(iter(store.deliveries.values()))
    assert delivery.state is DeliveryState.PENDING and "non-public" in delivery.last_error


async def test_replay_is_a_new_chain_with_the_same_webhook_id_once_per_key(uow, store, resolver, receiver, posting):
    hook = await endpoint(uow, resolver)
    await intake.record(uow, issued(), NOW, DOMAIN, facts())
    await webhook_sending.send_due(uow, posting, NOW)
    original = next(iter(store.deliveries.values()))
    copy, created = await endpoints.replay(uow, original.id, "replay-1", NOW)
    again, created_again = await endpoints.replay(uow, original.id, "replay-1", NOW)
    assert created and not created_again and again.id == copy.id and copy.id != original.id
    assert (copy.webhook_id, copy.payload, copy.state) == (original.webhook_id, original.payload,
                                                           DeliveryState.PENDING)
    await webhook_sending.send_due(uow, posting, NOW)
    assert [h["webhook-id"] for _, h, _ in receiver.requests] == [original.webhook_id] * 2
    await endpoints.update_endpoint(uow, resolver, False, hook.id, {"enabled": False}, NOW)
    with pytest.raises(FailedPrecondition):
        await endpoints.replay(uow, original.id, "replay-2", NOW)


async def test_a_test_webhook_goes_once_and_never_disables_the_endpoint(uow, store, resolver, receiver, posting):
    hook = await endpoint(uow, resolver)
    receiver.answers = [500]
    delivery = await endpoints.send_test(uow, hook.id, NOW)
    await webhook_sending.send_due(uow, posting, NOW)
    assert store.deliveries[delivery.id].state is DeliveryState.FAILED and store.endpoints[hook.id].enabled
    ok = await endpoints.send_test(uow, hook.id, NOW)
    await webhook_sending.send_due(uow, posting, NOW)
    assert store.deliveries[ok.id].state is DeliveryState.DELIVERED
    assert json.loads(receiver.requests[-1][2])["type"] == "webhook.test"


async def test_a_deleted_endpoint_is_gone_from_reads_and_gets_nothing(uow, store, resolver):
    hook = await endpoint(uow, resolver)
    await endpoints.delete_endpoint(uow, hook.id, NOW)
    assert await endpoints.list_endpoints(uow, "org_1", 0, "") == ([], "")
    assert await intake.record(uow, issued(), NOW, DOMAIN, facts(email="")) == 0


def test_unknown_event_types_are_refused_by_position():
    with pytest.raises(InvalidArgument) as caught:
        from services.notification.domain.webhooks import check_event_types
        check_event_types(["invoice.paid", "invoice.exploded"])
    assert caught.value.field == "event_types[1]"


def test_amounts_are_exact_text_in_the_currencys_own_decimals():
    assert amount_text(117882, "INR") == "1178.82"
    assert amount_text(500, "JPY") == "500"
    assert amount_text(1234, "BHD") == "1.234"
    assert amount_text(5, "USD") == "0.05"


def test_the_default_schedule_is_svix_s_about_a_day():
    schedule = WebhookSchedule()
    assert schedule.max_attempts == 8
    assert timedelta(hours=27) < sum(schedule.delays, timedelta()) < timedelta(hours=28)
