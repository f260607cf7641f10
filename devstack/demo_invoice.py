"""A demo invoice to pay: last month's invoice of a customer who signed up before it, collected through
Razorpay (the local sandbox), so a newcomer can open its checkout page and pay it in a browser.

An invoice needs a month that has ended, and a subscription cannot start before its organisation existed, so
the demo customer is dated back to before last month in the local database (what an import of an existing
customer would record). The invoicing tests and the end-to-end test date organisations back the same way.
Each step finds what an earlier start made.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from devstack import console
from devstack.admin_http import admin_client
from devstack.console import Reporter
from devstack.demo import DemoDataError
from devstack.demo_catalog import DEMO_PLAN, _Admin

ZONE = ZoneInfo("Asia/Kolkata")
PAYER = {
    "name": "Masala Metrics Pvt Ltd", "billing_email": "accounts@masala-metrics.example", "billing_currency": "INR",
    "country": "IN", "state_code": "27", "gstin": "27AAPFU0939F1ZV", "timezone": "Asia/Kolkata",
    "billing_address": "21 Senapati Bapat Road\nPune 411016",
}
PAYER_KEY = "demo-payer-organisation"


@dataclass(frozen=True)
class DemoInvoice:
    organisation_id: str
    invoice_id: str
    number: str
    total: str
    status: str
    checkout_url: str


def _last_month() -> datetime:
    this_month = datetime.now(UTC).astimezone(ZONE).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (this_month - timedelta(days=1)).replace(day=1)


async def _date_back(database_url: str, organisation_id: str, since: datetime) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "UPDATE invoicing.organisations SET created_at = $1 WHERE id = $2 AND created_at > $1", since,
            organisation_id)
    finally:
        await connection.close()


def ensure_demo_invoice(gateway_url: str, admin_token: str, database_url: str, say: Reporter = console.say,
                        *, wait_seconds: float = 20.0) -> DemoInvoice:
    """The demo payer's invoice for last month, issued, with its checkout page once payments made the order."""
    start = _last_month()
    with admin_client(gateway_url, {"Authorization": f"Bearer {admin_token}"}, timeout=30.0) as client:
        admin = _Admin(client)
        payer = admin.call("POST", "/api/v1/admin/organisations", json=PAYER, key=PAYER_KEY).json()
        asyncio.run(_date_back(database_url, payer["id"], start - timedelta(days=1)))
        subscriptions = admin.call("GET", "/api/v1/admin/subscriptions",
                                   params={"organisation_id": payer["id"]}).json()["data"]
        if not subscriptions:
            admin.call("POST", "/api/v1/admin/subscriptions", key=f"demo-payer-subscription-{payer['id']}",
                       json={"organisation_id": payer["id"], "plan_code": DEMO_PLAN,
                             "start_date": start.date().isoformat()})
        period = start.strftime("%Y-%m")
        admin.call("POST", "/api/v1/admin/invoice-runs", ok=(200, 202),
                   json={"period_key": period, "organisation_id": payer["id"]},
                   key=f"demo-payer-run-{payer['id']}-{period}")
        deadline = time.monotonic() + wait_seconds
        invoice: dict | None = None
        checkout_url = ""
        while time.monotonic() < deadline:
            found = admin.call("GET", "/api/v1/admin/invoices",
                               params={"organisation_id": payer["id"], "period_key": period}).json()["data"]
            invoice = next((i for i in found if i["status"] != "void"), None)
            if invoice is not None and invoice["status"] not in ("draft", "issued"):
                break  # paid (or refunded) on an earlier run: nothing to pay
            if invoice is not None:
                reply = client.get(f"/api/v1/admin/invoices/{invoice['id']}/checkout")
                if reply.status_code == 200:
                    checkout_url = reply.json()["checkout_url"]
                    break
            time.sleep(0.3)
        if invoice is None:
            raise DemoDataError(f"no invoice for {payer['id']} in {period} after {wait_seconds:.0f}s")
    result = DemoInvoice(payer["id"], invoice["id"], invoice["number"], invoice["total"], invoice["status"],
                         checkout_url)
    say(f"demo invoice: {result.number} of {PAYER['name']} for {period}, INR {result.total}, {result.status}"
        + (f"; pay it at {checkout_url}" if checkout_url else ""))
    return result
