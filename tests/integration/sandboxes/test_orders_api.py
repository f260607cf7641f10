"""Orders through the official SDK: the bodies, the list filters, validation and authentication errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import razorpay
from razorpay.errors import BadRequestError

from sandboxes.razorpay import RunningSandbox
from sandboxes.razorpay.ids import looks_like
from tests.integration.sandboxes.conftest import Sdk, fixture


async def test_created_order_has_razorpays_keys_and_types(rzp: Sdk) -> None:
    order = await rzp.call(
        rzp.client.order.create,
        {"amount": 5000, "currency": "INR", "receipt": "receipt#1", "notes": {"key1": "value3", "key2": "value2"}},
    )
    sample = fixture("docs_api_orders_create__success.json")
    assert set(order) == set(sample)
    assert {key: type(value) for key, value in order.items()} == {key: type(value) for key, value in sample.items()}
    assert looks_like("order", order["id"])
    assert (order["status"], order["amount_due"], order["amount_paid"], order["attempts"]) == ("created", 5000, 0, 0)

    fetched = await rzp.call(rzp.client.order.fetch, order["id"])
    assert fetched == order


async def test_empty_notes_come_back_as_a_list_like_razorpays(rzp: Sdk) -> None:
    order = await rzp.call(rzp.client.order.create, {"amount": 100, "currency": "INR"})
    assert order["notes"] == [] and order["receipt"] is None


async def test_list_filters_by_receipt_newest_first_and_counts(rzp: Sdk) -> None:
    created = [
        await rzp.call(rzp.client.order.create, {"amount": 1000 + i, "currency": "INR", "receipt": f"inv-{i % 2}"})
        for i in range(5)
    ]
    listed = await rzp.call(rzp.client.order.all, {"receipt": "inv-0"})
    assert listed["entity"] == "collection"
    assert [item["id"] for item in listed["items"]] == [created[4]["id"], created[2]["id"], created[0]["id"]]
    assert listed["count"] == 3

    two = await rzp.call(rzp.client.order.all, {"count": 2, "skip": 1})
    assert [item["id"] for item in two["items"]] == [created[3]["id"], created[2]["id"]]
    with pytest.raises(BadRequestError, match="count"):
        await rzp.call(rzp.client.order.all, {"count": 101})


async def test_unknown_order_is_a_400_with_razorpays_body(sandbox: RunningSandbox, rzp: Sdk) -> None:
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        await rzp.call(rzp.client.order.fetch, "order_DoesNotExist01")
    async with httpx.AsyncClient(auth=(sandbox.key_id, sandbox.key_secret)) as http:
        response = await http.get(f"{sandbox.url}/v1/orders/order_DoesNotExist01")
    assert response.status_code == 400
    assert response.json() == fixture("docs_api_orders_fetch-with-id__failure.json")


@pytest.mark.parametrize(
    ("body", "field", "description"),
    [
        ({"amount": 99, "currency": "INR"}, "amount", "The amount must be atleast INR 1.00"),
        ({"amount": "12.5", "currency": "INR"}, "amount", "The amount must be an integer."),
        ({"currency": "INR"}, "amount", "The amount field is required."),
        ({"amount": 500, "currency": "XYZ"}, "currency", "The selected currency is invalid."),
        ({"amount": 500, "receipt": "r" * 41}, "receipt", "The receipt may not be greater than 40 characters."),
        ({"amount": 500, "notes": {f"k{i}": "v" for i in range(16)}}, "notes",
         "Number of fields in notes should be less than or equal to 15"),
        ({"amount": 500, "notes": {"k": "v" * 257}}, "notes.k", "The notes.k may not be greater than 256 characters."),
        ({"amount": 500, "colour": "red"}, "colour", "colour is/are not required and should not be sent"),
    ],
)
async def test_validation_errors_name_the_field(
    sandbox: RunningSandbox, body: dict, field: str, description: str
) -> None:
    async with httpx.AsyncClient(auth=(sandbox.key_id, sandbox.key_secret)) as http:
        response = await http.post(f"{sandbox.url}/v1/orders", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == set(fixture("docs_api_orders_create__failure.json")["error"])
    assert (error["code"], error["field"], error["description"]) == ("BAD_REQUEST_ERROR", field, description)


async def test_wrong_or_missing_keys_are_refused_with_401(sandbox: RunningSandbox) -> None:
    wrong = razorpay.Client(auth=(sandbox.key_id, "not-the-secret"), base_url=sandbox.url)
    with pytest.raises(BadRequestError, match="Authentication failed"):
        await asyncio.to_thread(wrong.order.all)
    async with httpx.AsyncClient() as http:
        missing = await http.get(f"{sandbox.url}/v1/orders")
        other_key = await http.get(f"{sandbox.url}/v1/orders", auth=("rzp_test_other", sandbox.key_secret))
    descriptions = ["Please provide your api key for authentication purposes.", "The api key provided is invalid"]
    for response, description in zip((missing, other_key), descriptions, strict=True):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "BAD_REQUEST_ERROR"
        assert response.json()["error"]["description"] == description


async def test_unknown_url_answers_razorpays_not_found_body(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient(auth=(sandbox.key_id, sandbox.key_secret)) as http:
        response = await http.get(f"{sandbox.url}/v1/nothing_here")
    assert response.status_code == 400
    assert response.json() == fixture("docs_api_refunds_fetch-with-id__failure.json")
