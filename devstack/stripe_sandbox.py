"""The local Stripe (``python -m sandboxes.stripe``: localstripe, see :mod:`sandboxes.stripe`) as a process of the
local stack.

``make run`` starts it unless a real Stripe secret key is configured (``PAYMENTS_STRIPE_SECRET_KEY``), points
payments' Stripe API base at it, gives it the gateway's webhook URL, and shares the endpoint secret with the
gateway, so Stripe's signed webhooks take the same path in a local run as in production, and points the
dashboard's Stripe.js at it, so a Stripe organisation's invoice can be paid in a browser. Its keys and endpoint
secret are made up once and kept (0600) in the data directory, with its objects.
"""

from __future__ import annotations

import os
import secrets

from devstack.provider_sandbox import ProviderSandbox

DEFAULT_PORT = 8420  # localstripe's own default
REAL_KEYS_ENV = "PAYMENTS_STRIPE_SECRET_KEY"
WEBHOOK_PATH = "/api/v1/webhooks/stripe"


def real_keys_configured() -> bool:
    return bool(os.environ.get(REAL_KEYS_ENV, "").strip() or os.environ.get(REAL_KEYS_ENV + "_FILE", "").strip())


class LocalStripe(ProviderSandbox):
    title = "the local Stripe"
    module = "sandboxes.stripe"
    files = "stripe-local"
    state_suffix = ".pickle"
    default_port = DEFAULT_PORT

    def new_keys(self) -> dict[str, str]:
        return {"secret_key": f"sk_test_{secrets.token_hex(12)}", "publishable_key": f"pk_test_{secrets.token_hex(12)}",
                "webhook_secret": f"whsec_{secrets.token_urlsafe(24)}"}

    def child_env(self) -> dict[str, str]:
        return {"STRIPE_SANDBOX_SECRET_KEY": self.keys["secret_key"],
                "STRIPE_SANDBOX_PUBLISHABLE_KEY": self.keys["publishable_key"],
                "STRIPE_SANDBOX_WEBHOOK_SECRET": self.keys["webhook_secret"]}

    def payments_env(self) -> dict[str, str]:
        return {"PAYMENTS_STRIPE_SECRET_KEY": self.keys["secret_key"],
                "PAYMENTS_STRIPE_PUBLISHABLE_KEY": self.keys["publishable_key"], "PAYMENTS_STRIPE_API_BASE": self.url}

    def gateway_env(self) -> dict[str, str]:
        # The dashboard's Pay loads the local Stripe's Stripe.js for a Stripe organisation's invoices.
        return {"GATEWAY_STRIPE_WEBHOOK_SECRET": self.keys["webhook_secret"],
                "GATEWAY_STRIPE_JS_URL": f"{self.url}/js.stripe.com/v3/"}
