"""A local Stripe: localstripe (a stateful fake of Stripe's API) with Stripe's idempotency keys, retried and
signed webhooks, refund events and created-range listings added (:mod:`.patches`), on 127.0.0.1. The official
SDK talks to it exactly as to api.stripe.com. It imports nothing from services/: it stands where Stripe stands."""

from sandboxes.stripe.control import LocalStripeControl
from sandboxes.stripe.runner import RunningLocalStripe, running_local_stripe
from sandboxes.stripe.settings import LocalStripeSettings

__all__ = ["LocalStripeControl", "LocalStripeSettings", "RunningLocalStripe", "running_local_stripe"]
