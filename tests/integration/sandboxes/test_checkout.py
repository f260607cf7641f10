"""The hosted checkout page: what a person sees, the form posts, and the signed return to the merchant."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import razorpay
from razorpay.errors import SignatureVerificationError

from sandboxes.razorpay import RunningSandbox
from tests.integration.sandboxes.conftest import Sdk


async def test_page_shows_merchant_amount_and_both_methods(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 123456, "currency": "INR", "receipt": "INV-42"})
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{sandbox.url}/checkout/{order['id']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for text in ("Billing Platform (sandbox)", "INR 1,234.56", 'name="vpa"', 'name="card_number"', "Fail the payment"):
        assert text in page.text


async def test_paying_by_upi_redirects_to_the_callback_with_a_signature_the_sdk_accepts(
    rzp: Sdk, sandbox: RunningSandbox
) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR"})
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox.url}/checkout/{order['id']}/pay",
            data={"method": "upi", "vpa": "success@razorpay", "callback_url": "https://merchant.example/return",
                  "callback_method": "get"},
        )
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://merchant.example/return"
    params = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert params["razorpay_order_id"] == order["id"]
    assert rzp.client.utility.verify_payment_signature(params) is True
    forged = razorpay.Client(auth=(sandbox.key_id, "another-secret"))
    with pytest.raises(SignatureVerificationError):
        forged.utility.verify_payment_signature(params)
    payment = await rzp.call(rzp.client.payment.fetch, params["razorpay_payment_id"])
    assert (payment["method"], payment["status"]) == ("upi", "captured")


async def test_card_payment_posts_back_to_the_merchant_by_default(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR"})
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox.url}/checkout/{order['id']}/pay",
            data={"method": "card", "card_number": "5267 3181 8797 5449", "callback_url": "https://m.example/cb"},
        )
    assert response.status_code == 200
    assert 'action="https://m.example/cb"' in response.text and 'name="razorpay_signature"' in response.text
    [payment] = (await rzp.call(rzp.client.order.payments, order["id"]))["items"]
    assert payment["method"] == "card" and payment["card_id"].startswith("card_")


async def test_without_callback_the_page_says_paid(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR"})
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sandbox.url}/checkout/{order['id']}/pay", data={"method": "upi"})
        assert response.status_code == 200 and "Paid" in response.text
        again = await http.get(f"{sandbox.url}/checkout/{order['id']}")
    assert "Already paid" in again.text


async def test_declining_returns_razorpays_error_fields(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 5000, "currency": "INR"})
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox.url}/checkout/{order['id']}/pay",
            data={"method": "card", "outcome": "fail", "callback_url": "https://m.example/cb",
                  "callback_method": "get"},
        )
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params["error[code]"] == ["BAD_REQUEST_ERROR"]
    assert "error[reason]" in params and "razorpay_signature" not in params
    order = await rzp.call(rzp.client.order.fetch, order["id"])
    assert order["status"] == "attempted"


async def test_payment_link_page_pays_and_returns_the_link_signature(rzp: Sdk, sandbox: RunningSandbox) -> None:
    link = await rzp.call(
        rzp.client.payment_link.create,
        {"amount": 25000, "currency": "INR", "description": "Invoice INV-7", "reference_id": "INV-7",
         "callback_url": "https://m.example/links", "callback_method": "get"},
    )
    assert link["short_url"] == f"{sandbox.url}/l/{link['id']}"
    async with httpx.AsyncClient() as http:
        page = await http.get(link["short_url"])
        assert "INR 250.00" in page.text and "Invoice INV-7" in page.text
        response = await http.post(f"{link['short_url']}/pay", data={"method": "card"})
    params = {name: values[0] for name, values in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert params["razorpay_payment_link_status"] == "paid"
    assert rzp.client.utility.verify_payment_link_signature(
        {
            "razorpay_payment_id": params["razorpay_payment_id"],
            "payment_link_id": params["razorpay_payment_link_id"],
            "payment_link_reference_id": params["razorpay_payment_link_reference_id"],
            "payment_link_status": params["razorpay_payment_link_status"],
            "razorpay_signature": params["razorpay_signature"],
        }
    )
