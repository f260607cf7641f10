"""The local Stripe as `make run` starts it: ``python -m sandboxes.stripe`` on the preferred port or a free one,
wired into payments and the gateway, sending webhooks signed with the shared endpoint secret, keeping its objects
in the data directory across restarts, and named in the banner."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import stripe

from devstack import banner
from devstack.stripe_sandbox import LocalStripe


class _Hooks(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hooks.received.append((self.headers.get("Stripe-Signature", ""), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _client(local: LocalStripe) -> stripe.StripeClient:
    return stripe.StripeClient(local.keys["secret_key"], base_addresses={"api": local.url}, max_network_retries=0)


def test_the_local_stripe_process_is_wired_in_signs_its_webhooks_and_keeps_state(tmp_path: Path) -> None:
    hooks = HTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hooks.server_address[1]}/api/v1/webhooks/stripe"
    said: list[str] = []
    try:
        with socket.socket() as taken:  # the preferred port in use: the local Stripe moves, and says so
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            local = LocalStripe(tmp_path, url, port=busy, say=said.append).start()
        try:
            assert local.port != busy and any(f"port {busy} is taken" in line for line in said)
            assert local.payments_env() == {"PAYMENTS_STRIPE_SECRET_KEY": local.keys["secret_key"],
                                            "PAYMENTS_STRIPE_PUBLISHABLE_KEY": local.keys["publishable_key"],
                                            "PAYMENTS_STRIPE_API_BASE": local.url}
            assert local.gateway_env() == {"GATEWAY_STRIPE_WEBHOOK_SECRET": local.keys["webhook_secret"],
                                           "GATEWAY_STRIPE_JS_URL": f"{local.url}/js.stripe.com/v3/"}
            assert (tmp_path / "stripe-local-keys.json").stat().st_mode & 0o077 == 0
            client = _client(local)
            intent = client.v1.payment_intents.create({"amount": 4200, "currency": "inr"},
                                                      {"idempotency_key": "process-1"})
            client.v1.payment_intents.update(intent.id, {"payment_method": "pm_card_visa"})
            client.v1.payment_intents.confirm(intent.id)
            deadline = time.monotonic() + 15
            while not any(b'"payment_intent.succeeded"' in body for _, body in _Hooks.received):
                assert time.monotonic() < deadline, "no webhook arrived"
                time.sleep(0.1)
            header, body = next((h, b) for h, b in _Hooks.received if b'"payment_intent.succeeded"' in b)
            event = stripe.Webhook.construct_event(body, header, local.keys["webhook_secret"])
            assert event["data"]["object"]["id"] == intent.id and json.loads(body)["type"] == event["type"]
        finally:
            local.stop()
        assert not local.running and not (tmp_path / "stripe-local.pid").exists()

        again = LocalStripe(tmp_path, url, port=0, say=said.append).start()
        try:
            assert again.keys == local.keys  # the same keys and secret on every run
            kept = _client(again).v1.payment_intents.retrieve(intent.id)
            assert (kept.status, kept.amount) == ("succeeded", 4200)
        finally:
            again.stop()
    finally:
        hooks.shutdown()


def test_the_banner_names_the_local_stripe(tmp_path: Path) -> None:
    endpoints = {"gateway": None, "admin_token": "t", "services": {}, "running": [], "database_url": "postgresql://x",
                 "nats_url": "nats://x", "local_stripe": "http://127.0.0.1:8420"}
    text = banner.render(endpoints, log_dir=tmp_path, data_dir=tmp_path, endpoints_file=tmp_path / "e.json", notes=[])
    assert "  Local Stripe      http://127.0.0.1:8420" in text
