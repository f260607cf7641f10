"""The local Razorpay sandbox (``python -m sandboxes.razorpay``) as a process of the local stack.

``make run`` starts it unless real Razorpay keys are configured (``PAYMENTS_RAZORPAY_KEY_ID``), and points
payments' API calls, the gateway's webhook secret and the dashboard's Checkout.js at it, so a newcomer can pay
the demo invoice in a browser. Its keys are generated once and kept in the data directory with its objects (a
restart keeps orders and payments).
"""

from __future__ import annotations

import os
import secrets

from devstack.provider_sandbox import ProviderSandbox

DEFAULT_PORT = 8090
REAL_KEYS_ENV = "PAYMENTS_RAZORPAY_KEY_ID"
WEBHOOK_PATH = "/api/v1/webhooks/razorpay"


def real_keys_configured() -> bool:
    return bool(os.environ.get(REAL_KEYS_ENV, "").strip())


class LocalRazorpaySandbox(ProviderSandbox):
    title = "the Razorpay sandbox"
    module = "sandboxes.razorpay"
    files = "razorpay-sandbox"
    state_suffix = ".json"
    default_port = DEFAULT_PORT

    def new_keys(self) -> dict[str, str]:
        return {"key_id": f"rzp_test_{secrets.token_hex(7)}", "key_secret": secrets.token_urlsafe(18),
                "webhook_secret": secrets.token_urlsafe(18)}

    def child_env(self) -> dict[str, str]:
        return {"RAZORPAY_SANDBOX_KEY_ID": self.keys["key_id"], "RAZORPAY_SANDBOX_KEY_SECRET": self.keys["key_secret"],
                "RAZORPAY_SANDBOX_WEBHOOK_SECRET": self.keys["webhook_secret"]}

    def payments_env(self) -> dict[str, str]:
        return {"PAYMENTS_RAZORPAY_KEY_ID": self.keys["key_id"],
                "PAYMENTS_RAZORPAY_KEY_SECRET": self.keys["key_secret"], "PAYMENTS_RAZORPAY_BASE_URL": self.url,
                "PAYMENTS_CHECKOUT_URL_TEMPLATE": f"{self.url}/checkout/{{order_id}}"}

    def gateway_env(self) -> dict[str, str]:
        # The dashboard's Pay loads the sandbox's Checkout.js (used when payments has no hosted page for an order).
        return {"GATEWAY_RAZORPAY_WEBHOOK_SECRET": self.keys["webhook_secret"],
                "GATEWAY_RAZORPAY_CHECKOUT_JS_URL": f"{self.url}/v1/checkout.js"}
