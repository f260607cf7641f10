"""Stripe-Signature verification over the raw body, with the scheme's vectors, cross-checked against the official
SDK's ``stripe.WebhookSignature`` on the same bytes (one deliberate difference: a timestamp too far in the
future)."""

from __future__ import annotations

import stripe
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.signatures import StripeVerdict, sign, stripe_signature_header, verify_stripe
from tests.shared_fixtures import STRIPE_FIXTURES

SECRET = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"
OLD_SECRET = "whsec_previous_0123456789abcdef"
NOW = 1_767_225_600
BODY = (STRIPE_FIXTURES / "event_payment_intent.succeeded__dj-stripe.json").read_bytes()


def sdk_accepts(body: bytes, header: str, secret: str, now: int) -> bool:
    """What stripe-python says of the same header, with its clock at ``now``."""
    from unittest import mock

    with mock.patch("time.time", return_value=float(now)):
        try:
            return stripe.WebhookSignature.verify_header(body, header, secret, tolerance=300)
        except stripe.SignatureVerificationError:
            return False


def check(header: str, secrets=(SECRET,), body: bytes = BODY, now: int = NOW) -> StripeVerdict:
    return verify_stripe(body, header, secrets, now)


def test_our_header_is_the_one_the_sdk_makes_for_the_fixture_bytes():
    ours = stripe_signature_header(BODY, SECRET, NOW)
    theirs = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET, timestamp=NOW)
    assert ours == theirs
    assert ours == f"t={NOW},v1={sign(f'{NOW}.'.encode() + BODY, SECRET)}"


def test_a_valid_signature_passes_and_the_sdk_agrees():
    header = stripe_signature_header(BODY, SECRET, NOW - 10)
    assert check(header) is StripeVerdict.VALID
    assert sdk_accepts(BODY, header, SECRET, NOW)


def test_a_tampered_body_fails():
    header = stripe_signature_header(BODY, SECRET, NOW)
    tampered = BODY.replace(b'"amount": 190200', b'"amount": 1', 1)
    assert tampered != BODY
    assert check(header, body=tampered) is StripeVerdict.NO_MATCH
    assert not sdk_accepts(tampered, header, SECRET, NOW)
    # Whitespace is part of the signed bytes: re-serialising the JSON is tampering too.
    assert check(header, body=BODY.strip() + b"\n\n") is StripeVerdict.NO_MATCH


def test_a_signature_under_another_secret_or_with_the_prefix_dropped_fails():
    assert check(stripe_signature_header(BODY, "whsec_someone_else", NOW)) is StripeVerdict.NO_MATCH
    # The secret is used whole, ``whsec_`` included.
    assert check(stripe_signature_header(BODY, SECRET.removeprefix("whsec_"), NOW)) is StripeVerdict.NO_MATCH


def test_the_tolerance_is_300_seconds_into_the_past():
    assert check(stripe_signature_header(BODY, SECRET, NOW - 300)) is StripeVerdict.VALID
    old = stripe_signature_header(BODY, SECRET, NOW - 301)
    assert check(old) is StripeVerdict.TOO_OLD
    assert not sdk_accepts(BODY, old, SECRET, NOW)


def test_a_future_timestamp_beyond_the_tolerance_fails_where_the_sdk_would_accept_it():
    assert check(stripe_signature_header(BODY, SECRET, NOW + 300)) is StripeVerdict.VALID
    future = stripe_signature_header(BODY, SECRET, NOW + 301)
    assert check(future) is StripeVerdict.TOO_NEW
    assert sdk_accepts(BODY, future, SECRET, NOW)  # the deliberate difference (see verify_stripe's docstring)


def test_several_v1_values_pass_when_any_one_matches():
    # While Stripe rolls an endpoint secret it signs with the old and the new one.
    rolled = stripe_signature_header(BODY, "whsec_not_ours_any_more", NOW, SECRET)
    assert rolled.count("v1=") == 2
    assert check(rolled) is StripeVerdict.VALID
    assert sdk_accepts(BODY, rolled, SECRET, NOW)
    # Order does not matter, nor does an unknown scheme alongside.
    swapped = stripe_signature_header(BODY, SECRET, NOW, "whsec_not_ours_any_more")
    assert check(swapped) is StripeVerdict.VALID
    assert check(swapped + ",v0=" + "0" * 64) is StripeVerdict.VALID
    assert check(f"t={NOW},v1={'0' * 64},v1={'f' * 64}") is StripeVerdict.NO_MATCH


def test_our_own_rotation_accepts_the_previous_secret_until_it_is_removed():
    signed_with_old = stripe_signature_header(BODY, OLD_SECRET, NOW)
    assert check(signed_with_old, secrets=(SECRET, OLD_SECRET)) is StripeVerdict.VALID
    assert check(signed_with_old, secrets=(SECRET,)) is StripeVerdict.NO_MATCH
    assert check(signed_with_old, secrets=("", OLD_SECRET)) is StripeVerdict.VALID
    assert check(signed_with_old, secrets=()) is StripeVerdict.NO_MATCH


def test_a_missing_header_fails():
    assert check("") is StripeVerdict.MISSING
    assert not sdk_accepts(BODY, "", SECRET, NOW)


def test_malformed_headers_fail():
    good = sign(f"{NOW}.".encode() + BODY, SECRET)
    for header in [
        "garbage",
        f"v1={good}",                     # no timestamp
        f"t={NOW}",                       # no signature
        f"t={NOW},v0={good}",             # only another scheme
        f"t=soon,v1={good}",              # not a number
        f"t=-{NOW},v1={good}",
        f"t={NOW}.5,v1={good}",
        f"t={NOW},v1=",
        "t=" + "9" * 40 + f",v1={good}",
        f"t={NOW},v1={good}," + "x" * 2000,  # far longer than any genuine header
    ]:
        assert check(header) is StripeVerdict.MALFORMED, header
        assert not sdk_accepts(BODY, header, SECRET, NOW) or "x" * 2000 in header, header


def test_spaces_after_commas_and_upper_case_hex_are_tolerated():
    signature = sign(f"{NOW}.".encode() + BODY, SECRET)
    assert check(f"t={NOW}, v1={signature}") is StripeVerdict.VALID
    assert check(f"t={NOW},v1={signature.upper()}") is StripeVerdict.VALID


@given(st.binary(max_size=512), st.integers(min_value=NOW - 300, max_value=NOW + 300))
def test_any_body_signed_now_verifies_and_any_flipped_byte_does_not(body: bytes, timestamp: int):
    header = stripe_signature_header(body, SECRET, timestamp)
    assert verify_stripe(body, header, [SECRET], NOW) is StripeVerdict.VALID
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        assert verify_stripe(flipped, header, [SECRET], NOW) is StripeVerdict.NO_MATCH
