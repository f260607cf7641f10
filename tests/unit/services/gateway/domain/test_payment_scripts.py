"""What an invoice's paying page may load: each provider's production script with exactly the origins the
provider documents for it, a local stand-in's script with the same directives on its own origin, nothing for a
provider whose script is turned off, and no URL that is not plain http(s) (nor one that could smuggle another CSP
source or directive in)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.gateway.config import GatewaySettings
from services.gateway.domain.payment_scripts import (
    RAZORPAY_CHECKOUT_JS,
    STRIPE_JS,
    origin_of,
    payment_script,
)

SECRETS_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def test_the_production_scripts_need_the_origins_their_providers_document():
    razorpay = payment_script("razorpay", RAZORPAY_CHECKOUT_JS)
    assert razorpay.url == "https://checkout.razorpay.com/v1/checkout.js"
    assert dict(razorpay.sources) == {"script-src": ("https://checkout.razorpay.com",),
                                      "frame-src": ("https://api.razorpay.com",)}
    stripe = payment_script("stripe", STRIPE_JS)
    assert dict(stripe.sources) == {
        "script-src": ("https://js.stripe.com", "https://*.js.stripe.com"),
        "frame-src": ("https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"),
        "connect-src": ("https://api.stripe.com",)}


def test_a_local_stand_in_gets_the_same_directives_on_its_own_origin():
    sandbox = payment_script("razorpay", "http://127.0.0.1:8090/v1/checkout.js")
    assert dict(sandbox.sources) == {"script-src": ("http://127.0.0.1:8090",), "frame-src": ("http://127.0.0.1:8090",)}
    local = payment_script("stripe", "http://127.0.0.1:8420/js.stripe.com/v3/")
    assert dict(local.sources) == {"script-src": ("http://127.0.0.1:8420",), "frame-src": ("http://127.0.0.1:8420",),
                                   "connect-src": ("http://127.0.0.1:8420",)}


def test_an_empty_url_turns_pay_off_for_that_provider():
    assert payment_script("razorpay", "") is None and payment_script("stripe", "  ") is None


@pytest.mark.parametrize("url", [
    "checkout.razorpay.com/v1/checkout.js", "ftp://checkout.razorpay.com/checkout.js", "javascript:alert(1)",
    "data:text/javascript,alert(1)", "https://user:pw@checkout.razorpay.com/v1/checkout.js",
    "https://evil.example;script-src */x.js", "https:///v1/checkout.js",
])
def test_only_plain_http_urls_are_taken(url):
    with pytest.raises(ValueError):
        payment_script("razorpay", url)


def test_an_origin_is_scheme_host_and_port_in_lower_case():
    assert origin_of("HTTPS://JS.Stripe.com/v3/") == "https://js.stripe.com"
    assert origin_of("http://[::1]:8420/js.stripe.com/v3/") == "http://[::1]:8420"


def test_the_gateway_settings_build_the_scripts_and_refuse_a_bad_url():
    settings = GatewaySettings(admin_token="a" * 20, secrets_key=SECRETS_KEY, database_url="postgresql://x/y",
                               stripe_js_url="")
    assert set(settings.payment_scripts()) == {"razorpay"}
    with pytest.raises(ValidationError, match="razorpay_checkout_js_url"):
        GatewaySettings(admin_token="a" * 20, secrets_key=SECRETS_KEY, database_url="postgresql://x/y",
                        razorpay_checkout_js_url="javascript:alert(1)")
