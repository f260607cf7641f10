"""`python -m sandboxes.razorpay` as `make run` starts it: the printed URL, env settings, and a state file that
survives a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import razorpay

KEY_ID, KEY_SECRET = "rzp_test_ProcessKey0001", "process_secret"


@asynccontextmanager
async def sandbox_process(state_file: Path) -> AsyncIterator[str]:
    env = {**os.environ, "RAZORPAY_SANDBOX_KEY_SECRET": KEY_SECRET, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandboxes.razorpay", "--host", "127.0.0.1", "--port", "0", "--key-id", KEY_ID,
        "--state-file", str(state_file), env=env, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert line.startswith("razorpay sandbox listening on http://127.0.0.1:"), line
        yield line.rsplit(" ", 1)[1]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_state_file_keeps_orders_and_payments_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "razorpay.json"
    async with sandbox_process(state) as url:
        client = razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=url)
        order = await asyncio.to_thread(client.order.create, {"amount": 4200, "currency": "INR", "receipt": "r-1"})
        checkout = await asyncio.to_thread(
            client.session.post, f"{url}/checkout/{order['id']}/pay", data={"method": "upi"}
        )
        assert checkout.status_code == 200
    assert state.exists()
    async with sandbox_process(state) as url:
        client = razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=url)
        again = await asyncio.to_thread(client.order.fetch, order["id"])
        assert (again["status"], again["amount_paid"]) == ("paid", 4200)
        payments = await asyncio.to_thread(client.order.payments, order["id"])
        assert payments["count"] == 1 and payments["items"][0]["status"] == "captured"
