"""Armed REST faults: 5xx bodies the SDK turns into ServerError, and hangs its callers time out on."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import requests
from razorpay.errors import ServerError

from sandboxes.razorpay import RunningSandbox
from tests.integration.sandboxes.conftest import Sdk, paid_order


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_for_the_next_matching_calls(rzp: Sdk, sandbox: RunningSandbox, status: int) -> None:
    await sandbox.control.inject_fault("/v1/orders", method="POST", status=status, times=2)
    for _ in range(2):
        with pytest.raises(ServerError):
            await rzp.call(rzp.client.order.create, {"amount": 500, "currency": "INR"})
    # Other routes were never affected, and the fault is used up.
    await rzp.call(rzp.client.order.all)
    order = await rzp.call(rzp.client.order.create, {"amount": 500, "currency": "INR"})
    assert order["status"] == "created"
    listed = await rzp.call(rzp.client.order.all)
    assert listed["count"] == 1  # the failed calls created nothing


async def test_server_error_body_has_razorpays_shape(sandbox: RunningSandbox) -> None:
    await sandbox.control.inject_fault("/v1/payments", status=503)
    async with httpx.AsyncClient(auth=(sandbox.key_id, sandbox.key_secret)) as http:
        response = await http.get(f"{sandbox.url}/v1/payments")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "SERVER_ERROR" and set(error) >= {"description", "source", "step", "reason", "metadata"}


async def test_hang_makes_the_sdk_time_out(rzp: Sdk, sandbox: RunningSandbox) -> None:
    order, payment = await paid_order(rzp, sandbox)
    await sandbox.control.inject_fault("/v1/payments/", method="GET", status=None, hang_seconds=2.0)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        await rzp.call(rzp.client.payment.fetch, payment["id"], timeout=0.3)
    assert time.monotonic() - started < 1.5
    fetched = await rzp.call(rzp.client.payment.fetch, payment["id"], timeout=2)
    assert fetched["id"] == payment["id"]


async def test_a_hung_call_is_still_done_after_its_caller_has_given_up(rzp: Sdk, sandbox: RunningSandbox) -> None:
    await sandbox.control.inject_fault("/v1/orders", method="POST", status=None, hang_seconds=0.8)
    with pytest.raises(requests.exceptions.Timeout):
        await rzp.call(rzp.client.order.create, {"amount": 500, "currency": "INR", "receipt": "hung-1"}, timeout=0.3)
    deadline = time.monotonic() + 5
    while not [o for o in sandbox.sandbox.store.orders.values() if o["receipt"] == "hung-1"]:
        assert time.monotonic() < deadline, "the hung order was never made"
        await asyncio.sleep(0.05)
