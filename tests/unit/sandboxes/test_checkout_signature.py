"""What the Razorpay sandbox's checkout (the hosted page and Checkout.js's frame) hands the merchant after a
payment: the ids and a signature made as Razorpay makes it, HMAC-SHA256 of ``order_id|payment_id`` keyed with
the key secret, so the official SDK's ``verify_payment_signature`` (what payments relies on) accepts it and a
signature of anything else, or with another secret, is refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import razorpay
from razorpay.errors import SignatureVerificationError

from sandboxes.razorpay.checkout import MESSAGE_SOURCE, Embedding, failure_error, handler_response, message

KEY_ID, KEY_SECRET = "rzp_test_UnitKey000001", "unit_key_secret"


def test_the_handler_gets_the_three_fields_signed_like_razorpay():
    fields = handler_response("order_EKwxwAgItmmXdp", "pay_29QQoUBi66xm2f", KEY_SECRET)
    assert set(fields) == {"razorpay_payment_id", "razorpay_order_id", "razorpay_signature"}
    expected = hmac.new(KEY_SECRET.encode(), b"order_EKwxwAgItmmXdp|pay_29QQoUBi66xm2f", hashlib.sha256).hexdigest()
    assert fields["razorpay_signature"] == expected
    assert razorpay.Client(auth=(KEY_ID, KEY_SECRET)).utility.verify_payment_signature(fields) is True


@pytest.mark.parametrize("change", [
    {"razorpay_order_id": "order_Another000001"},  # the signature of another order's payment
    {"razorpay_payment_id": "pay_Another00000001"},
])
def test_the_signature_holds_only_for_its_own_order_and_payment(change):
    fields = {**handler_response("order_EKwxwAgItmmXdp", "pay_29QQoUBi66xm2f", KEY_SECRET), **change}
    with pytest.raises(SignatureVerificationError):
        razorpay.Client(auth=(KEY_ID, KEY_SECRET)).utility.verify_payment_signature(fields)


def test_another_secret_does_not_verify():
    fields = handler_response("order_EKwxwAgItmmXdp", "pay_29QQoUBi66xm2f", "not the key secret")
    with pytest.raises(SignatureVerificationError):
        razorpay.Client(auth=(KEY_ID, KEY_SECRET)).utility.verify_payment_signature(fields)


def test_the_frame_posts_the_handlers_fields_and_razorpays_error_object():
    success = message("payment.success", response=handler_response("order_1", "pay_1", KEY_SECRET))
    assert success["source"] == MESSAGE_SOURCE and success["event"] == "payment.success"
    assert success["response"]["razorpay_order_id"] == "order_1"
    declined = {"id": "pay_2", "order_id": "order_1", "error_code": "BAD_REQUEST_ERROR",
                "error_description": "Payment failed", "error_source": "customer",
                "error_step": "payment_authorization", "error_reason": "payment_failed"}
    assert failure_error(declined) == {
        "code": "BAD_REQUEST_ERROR", "description": "Payment failed", "source": "customer",
        "step": "payment_authorization", "reason": "payment_failed",
        "metadata": {"payment_id": "pay_2", "order_id": "order_1"}}


class _Settings:
    key_id = KEY_ID


class _Sandbox:
    settings = _Settings()


@pytest.mark.parametrize(("fields", "key", "refused"), [
    ({"embedded": "1", "origin": "http://127.0.0.1:8080"}, KEY_ID, ""),
    ({"embedded": "1", "origin": "https://billing.example.com"}, KEY_ID, ""),
    ({"embedded": "1", "origin": "http://[::1]:8080"}, KEY_ID, ""),
    ({"embedded": "1", "origin": "https://billing.example.com"}, "rzp_test_SomeoneElse01", "Authentication failed"),
    ({"embedded": "1", "origin": "https://billing.example.com"}, "", "Authentication failed"),
    ({"embedded": "1", "origin": "*"}, KEY_ID, "origin"),
    ({"embedded": "1", "origin": "https://billing.example.com/app"}, KEY_ID, "origin"),
    ({"embedded": "1", "origin": "javascript:alert(1)"}, KEY_ID, "origin"),
])
def test_checkout_js_opens_the_page_only_for_this_accounts_key_and_a_real_origin(fields, key, refused):
    embedding = Embedding.of(fields)
    assert embedding is not None
    said = embedding.refusal(_Sandbox(), key)  # type: ignore[arg-type]
    assert (refused in said) if refused else said == ""


def test_a_page_not_opened_by_checkout_js_is_not_embedded():
    assert Embedding.of({"origin": "https://billing.example.com"}) is None
