"""The payment providers' browser scripts the dashboard's Pay loads on an invoice's page (Razorpay's Standard
Checkout, Stripe.js), and what that page's Content-Security-Policy must allow for each of them.

Each script needs its own origin in ``script-src`` and the origins it opens frames on or calls, as the provider
documents them for its production script: Razorpay's Checkout.js frames ``api.razorpay.com``; Stripe.js loads from
and frames ``js.stripe.com`` and its subdomains (the card field), frames ``hooks.stripe.com`` (3D Secure) and calls
``api.stripe.com``. A script
served from anywhere else is a local stand-in (the Razorpay sandbox, the local Stripe) that serves its frames and
API itself, so it gets the same directives on its own origin. Nothing else is ever allowed: every other page
keeps the dashboard's strict policy. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

RAZORPAY = "razorpay"
STRIPE = "stripe"
RAZORPAY_CHECKOUT_JS = "https://checkout.razorpay.com/v1/checkout.js"
STRIPE_JS = "https://js.stripe.com/v3/"

# The production script of each provider, and the sources it needs per CSP directive.
PRODUCTION: Mapping[str, tuple[str, Mapping[str, tuple[str, ...]]]] = {
    RAZORPAY: (RAZORPAY_CHECKOUT_JS, {
        "script-src": ("https://checkout.razorpay.com",),
        "frame-src": ("https://api.razorpay.com",),
    }),
    STRIPE: (STRIPE_JS, {  # Stripe's list for Stripe.js, less maps.googleapis.com (its Address Element only)
        "script-src": ("https://js.stripe.com", "https://*.js.stripe.com"),
        "frame-src": ("https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"),
        "connect-src": ("https://api.stripe.com",),
    }),
}


@dataclass(frozen=True)
class PaymentScript:
    """One provider's script: its URL, and the sources (per CSP directive) the page loading it must allow."""

    provider: str
    url: str
    sources: Mapping[str, tuple[str, ...]]


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute http(s) URL; ValueError for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    if any(character in parts.netloc for character in " ;,'\""):
        raise ValueError(f"{url!r} has characters a Content-Security-Policy source cannot carry")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def payment_script(provider: str, url: str) -> PaymentScript | None:
    """The script Pay loads for ``provider`` from ``url`` (None when ``url`` is empty: Pay is off for it)."""
    if provider not in PRODUCTION:
        raise ValueError(f"{provider!r} is not a payment provider with a browser script")
    if not url.strip():
        return None
    origin = origin_of(url)
    production_url, production_sources = PRODUCTION[provider]
    if origin == origin_of(production_url):
        sources = dict(production_sources)
    else:  # a local stand-in serves its frames and its API from its own origin
        sources = {directive: (origin,) for directive in production_sources}
    return PaymentScript(provider, url.strip(), sources)
