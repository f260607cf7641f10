"""POST /api/v1/webhooks/stripe in front of a fake store: verified over the raw body (Stripe's scheme, rotation,
tolerance), stored by the event's id, and nothing stored otherwise; and the organisation's choice of provider."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.payments.v1 import events_pb2
from billing.payments.v1 import payments_pb2 as pb
from billing_runtime.errors import FailedPrecondition
from billing_runtime.signatures import stripe_signature_header
from tests.shared_fixtures import STRIPE_FIXTURES
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

URL = "/api/v1/webhooks/stripe"
SECRET, PREVIOUS = "whsec_current_abcdef0123456789", "whsec_previous_abcdef0123456789"
BODY = (STRIPE_FIXTURES / "event_payment_intent.succeeded__dj-stripe.json").read_bytes()


class FakeStore:
    """JetStream as the gateway sees it: stores once per (provider, event id)."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.fail = False

    async def store(self, provider: str, event_id: str, event_type: str, body: bytes, received_at: datetime) -> bool:
        if self.fail:
            raise TimeoutError("nats: timeout")
        duplicate = (provider, event_id) in self.stored
        self.stored.setdefault((provider, event_id), (event_type, body))
        return duplicate


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway(stripe_webhook_secret=SECRET, stripe_webhook_previous_secret=PREVIOUS)
    gateway.app.state.webhooks = FakeStore()
    gateway.invoicing.answer("GetOrganisation", ipb.GetOrganisationResponse(organisation=ipb.Organisation(id="org_1")))
    return gateway


def post(gateway: Gateway, body: bytes, header: str | None):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return gateway.http.post(URL, content=body, headers=headers)


def test_a_genuine_event_is_stored_by_its_id_once(gateway):
    header = stripe_signature_header(BODY, SECRET, int(time.time()))
    first, again = post(gateway, BODY, header), post(gateway, BODY, header)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == {"received": True, "event_id": "evt_1FG74XB7kbjcJ8Qq22i2BPdt", "duplicate": False}
    assert again.json()["duplicate"] is True
    store = gateway.app.state.webhooks
    assert store.stored == {("stripe", "evt_1FG74XB7kbjcJ8Qq22i2BPdt"): ("payment_intent.succeeded", BODY)}


def test_the_previous_secret_and_stripes_rolled_secrets_are_accepted(gateway):
    now = int(time.time())
    assert post(gateway, BODY, stripe_signature_header(BODY, PREVIOUS, now)).status_code == 200
    rolled = stripe_signature_header(BODY, "whsec_stripe_rolled_away", now, SECRET)
    assert post(gateway, BODY, rolled).status_code == 200


@pytest.mark.parametrize(("make", "detail"), [
    (lambda now: None, "missing"),
    (lambda now: "", "missing"),
    (lambda now: "v1=abc", "not t="),
    (lambda now: f"t={now}", "not t="),
    (lambda now: stripe_signature_header(BODY, "whsec_forged", now), "does not match"),
    (lambda now: stripe_signature_header(BODY[:-2], SECRET, now), "does not match"),  # signed another body
    (lambda now: stripe_signature_header(BODY, SECRET, now - 301), "older"),
    (lambda now: stripe_signature_header(BODY, SECRET, now + 330), "future"),
    (lambda now: "t=1,v1=" + "0" * 64 + ",v1=" * 300, "not t="),
])
def test_anything_but_a_valid_signature_is_401_and_nothing_is_stored(gateway, make, detail):
    response = post(gateway, BODY, make(int(time.time())))
    assert response.status_code == 401 and detail in response.json()["detail"], response.text
    assert response.json()["error"] == "unauthenticated"
    assert gateway.app.state.webhooks.stored == {}


def test_signed_bodies_that_are_not_stripe_events_are_400(gateway):
    now = int(time.time())
    for body in (b"{not json", b"[]", json.dumps({"object": "charge", "id": "ch_1"}).encode(),
                 json.dumps({"object": "event", "id": "nope", "type": "charge.succeeded"}).encode(),
                 json.dumps({"object": "event", "id": "evt_1", "type": "Not A Type"}).encode()):
        response = post(gateway, body, stripe_signature_header(body, SECRET, now))
        assert response.status_code == 400, (body, response.text)
    assert gateway.app.state.webhooks.stored == {}


def test_oversized_unconfigured_and_unstored_deliveries_are_not_2xx(gateway):
    now = int(time.time())
    big = b"x" * 300_000
    assert post(gateway, big, stripe_signature_header(big, SECRET, now)).status_code == 413
    gateway.app.state.webhooks.fail = True
    assert post(gateway, BODY, stripe_signature_header(BODY, SECRET, now)).status_code == 503
    bare = Gateway()
    bare.app.state.webhooks = FakeStore()
    assert post(bare, BODY, stripe_signature_header(BODY, SECRET, now)).status_code == 503


def test_the_razorpay_route_does_not_take_stripes_header(gateway):
    response = gateway.http.post("/api/v1/webhooks/razorpay", content=BODY, headers={
        "Stripe-Signature": stripe_signature_header(BODY, SECRET, int(time.time()))})
    assert response.status_code == 503  # no Razorpay secret configured on this gateway


# --- the organisation's provider -------------------------------------------------------------------------------

PROVIDER = "/api/v1/admin/organisations/org_1/payment-provider"


def test_an_organisations_provider_and_what_is_available(gateway):
    gateway.payments.answer("GetPaymentProvider", pb.GetPaymentProviderResponse(
        provider=events_pb2.PROVIDER_RAZORPAY, own=False,
        available=[events_pb2.PROVIDER_RAZORPAY, events_pb2.PROVIDER_STRIPE]))
    assert gateway.http.get(PROVIDER, headers=ADMIN).json() == {
        "organisation_id": "org_1", "provider": "razorpay", "own": False, "available": ["razorpay", "stripe"]}


def test_choosing_stripe_is_sent_and_audited_and_clearing_too(gateway):
    gateway.payments.answer("SetPaymentProvider",
                            pb.SetPaymentProviderResponse(provider=events_pb2.PROVIDER_STRIPE, own=True),
                            pb.SetPaymentProviderResponse(provider=events_pb2.PROVIDER_RAZORPAY, own=False))
    chosen = gateway.http.put(PROVIDER, headers=ADMIN, json={"provider": "stripe"})
    assert chosen.status_code == 200 and chosen.json()["provider"] == "stripe", chosen.text
    cleared = gateway.http.delete(PROVIDER, headers=ADMIN)
    assert cleared.json()["own"] is False and cleared.json()["provider"] == "razorpay"
    [set_, clear] = gateway.payments.requests["SetPaymentProvider"]
    assert (set_.provider, set_.clear, clear.clear) == (events_pb2.PROVIDER_STRIPE, False, True)
    assert gateway.audited() == [("payment_provider.set", "org_1"), ("payment_provider.clear", "org_1")]


def test_an_unknown_or_unconfigured_provider_is_refused(gateway):
    assert gateway.http.put(PROVIDER, headers=ADMIN, json={"provider": "paypal"}).status_code == 400
    assert gateway.http.put(PROVIDER, headers=ADMIN, json={"provider": "offline"}).status_code == 400
    gateway.payments.answer("SetPaymentProvider", FailedPrecondition("online payments are not configured (no "
                                                                     "Stripe keys): pay offline"))
    refused = gateway.http.put(PROVIDER, headers=ADMIN, json={"provider": "stripe"})
    assert refused.status_code == 422 and "Stripe" in refused.json()["detail"]
    assert gateway.audited() == []
