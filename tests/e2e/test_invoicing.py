"""End to end: usage events (REST and the client library) -> metering -> a closed billing period -> an issued GST
invoice -> its PDF, rendered and read back. Every service a separate process, driven through the gateway's admin
REST API, the client library's gRPC stream and the CLI.

The period billed is the previous calendar month in Asia/Kolkata, whatever today is: ingest accepts timestamps
at most 35 days old (INGEST_EVENT_PAST_WINDOW_DAYS), so the events sit in the last two days of that month, which
are never more than 33 days ago.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pypdfium2 as pdfium
import pytest
from PIL import ImageStat

from billing_client import EventSender
from devstack.mesh import Mesh
from tests.e2e.conftest import SUPPLIER_GSTIN, cli_environment

pytestmark = pytest.mark.e2e

IST = ZoneInfo("Asia/Kolkata")
CUSTOMER_GSTIN = "29ABCDE1234F1ZW"  # Karnataka, as the supplier: CGST + SGST
PNG_COPY = Path("/tmp/e2e_invoice_page1.png")

PLAN_TERMS = {
    "currency": "INR",
    "base_fee": "1499",
    "charges": [
        {
            "metric_code": "api_calls",
            "display_name": "API calls",
            "charge": {"model": "graduated", "tiers": [{"up_to": "1000", "unit_price": "0"},
                                                       {"up_to": "10000", "unit_price": "0.05"},
                                                       {"up_to": None, "unit_price": "0.02"}]},
        },
        {"metric_code": "llm_tokens", "display_name": "LLM tokens",
         "charge": {"model": "per_unit", "unit_price": "0.0002"}},
    ],
    "sac_code": "998315",
}


def previous_month_ist(now: datetime) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of the calendar month before ``now``'s, in Asia/Kolkata."""
    this_month = now.astimezone(IST).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (this_month - timedelta(days=1)).replace(day=1)
    return previous, this_month


def financial_year(day: date) -> str:
    """The Indian financial year (1 April - 31 March) as invoice numbers write it: 2026-27 is "2627"."""
    first = day.year if day.month >= 4 else day.year - 1
    return f"{first % 100:02d}{(first + 1) % 100:02d}"


async def wait_until(check, what: str, timeout: float = 30.0):
    """Poll the coroutine function ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")


def cli(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billing_cli", "--gateway", mesh.gateway_url, "--admin-token", mesh.admin_token, *args],
        capture_output=True, text=True, timeout=60, env=cli_environment(),
    )


async def test_events_to_an_issued_gst_invoice_and_its_pdf(mesh: Mesh, tmp_path: Path):
    period_start, period_end = previous_month_ist(datetime.now(UTC))
    period_key = period_start.strftime("%Y-%m")
    admin = httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30,
                              headers={"Authorization": f"Bearer {mesh.admin_token}"})
    async with admin:
        # --- an Indian customer in Karnataka, with a project and an API key ---------------------------------
        created = await admin.post("/api/v1/admin/organisations", json={
            "name": "Rangoli Analytics Pvt Ltd", "billing_email": "accounts@rangoli.example", "billing_currency": "INR",
            "country": "IN", "state_code": "29", "gstin": CUSTOMER_GSTIN, "timezone": "Asia/Kolkata",
        })
        assert created.status_code == 201, created.text
        organisation_id = created.json()["id"]
        # This stands for an organisation that signed up before the month being billed: a subscription cannot
        # start before its organisation exists, and the test cannot wait a month. The integration tests do the
        # same (tests/integration/invoicing/conftest.py, create_organisation(since=...)).
        connection = await asyncpg.connect(mesh.database_url)
        try:
            updated = await connection.execute(
                "UPDATE invoicing.organisations SET created_at = $1 WHERE id = $2",
                period_start - timedelta(days=10), organisation_id,
            )
        finally:
            await connection.close()
        assert updated == "UPDATE 1"
        project = await admin.post("/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": "api"})
        assert project.status_code == 201, project.text
        key = await admin.post("/api/v1/admin/api-keys", json={"project_id": project.json()["id"]})
        assert key.status_code == 201, key.text
        secret = key.json()["secret"]

        # --- metrics, a plan, a subscription from the 1st of last month --------------------------------------
        for code, name in (("api_calls", "API calls"), ("llm_tokens", "LLM tokens")):
            metric = await admin.post("/api/v1/admin/metrics", json={
                "organisation_id": organisation_id, "code": code, "name": name, "aggregation": "sum"})
            assert metric.status_code == 201, metric.text
        plan = await admin.post("/api/v1/admin/plans", json={
            "code": f"growth-{secrets.token_hex(3)}", "name": "Growth", "terms": PLAN_TERMS})
        assert plan.status_code == 201, plan.text
        subscription = await admin.post("/api/v1/admin/subscriptions", json={
            "organisation_id": organisation_id, "plan_version_id": plan.json()["latest_version"]["id"],
            "start_date": period_start.date().isoformat()})
        assert subscription.status_code == 201, subscription.text

        # --- usage: REST and the client library, with repeated event ids ------------------------------------
        # All in the last two days of the billed month, plus one event at 00:00 IST on the 1st of this month,
        # which belongs to the next period and must not be billed.
        t_a, t_b, t_c = (period_end - timedelta(hours=hours) for hours in (40, 30, 6))
        t_last, t_next = period_end - timedelta(seconds=1), period_end

        def event(event_id: str, metric: str, value: str, at: datetime) -> dict:
            return {"eventId": event_id, "metricName": metric, "metricValue": value, "timestamp": at.isoformat()}

        auth = {"Authorization": f"Bearer {secret}"}
        first = await admin.post("/api/v1/events", headers=auth, json=[
            event("rest-api-1", "api_calls", "5000", t_a),
            event("rest-api-2", "api_calls", "4000", t_b),
            event("rest-tok-1", "llm_tokens", "100000", t_a),
        ])
        assert first.status_code == 202, first.text
        assert (first.json()["accepted"], first.json()["duplicates"], first.json()["rejected"]) == (3, 0, 0)
        # A client retrying: the same ids again (ingest accepts them, a new batch; metering counts each id once),
        # one id twice within this request (ingest itself reports the repeat), and next month's event.
        second = await admin.post("/api/v1/events", headers=auth, json=[
            event("rest-api-1", "api_calls", "5000", t_a),
            event("rest-tok-1", "llm_tokens", "100000", t_a),
            event("rest-next", "api_calls", "1000", t_next),
            event("rest-next", "api_calls", "1000", t_next),
        ])
        assert second.status_code == 202, second.text
        assert [r["status"] for r in second.json()["results"]] == ["accepted", "accepted", "accepted", "duplicate"]

        async with EventSender(mesh.address("ingest"), secret, batch_size=10, linger_seconds=0.01) as sender:
            await sender.send("api_calls", 3340, event_id="lib-api-1", timestamp=t_c)
            await sender.send("api_calls", Decimal(5), event_id="lib-api-2", timestamp=t_last)  # 23:59:59 IST
            await sender.send("llm_tokens", "150000", event_id="lib-tok-1", timestamp=t_c)
            await sender.send("llm_tokens", 25, event_id="lib-tok-2", timestamp=t_last)
            await sender.flush(timeout=30)
            # Resends of ids already sent through this door and through REST.
            await sender.send("api_calls", 3340, event_id="lib-api-1", timestamp=t_c)
            await sender.send("llm_tokens", 25, event_id="lib-tok-2", timestamp=t_last)
            await sender.send("api_calls", "4000", event_id="rest-api-2", timestamp=t_b)
            await sender.flush(timeout=30)
            assert sender.stats.rejected == 0 and sender.stats.pending == 0

        # Distinct events of the billed month: api_calls 5,000 + 4,000 + 3,340 + 5 = 12,345 (4 events);
        # llm_tokens 100,000 + 150,000 + 25 = 250,025 (3 events). Next month: api_calls 1,000 (1 event).
        async def usage(metric: str, start: datetime, end: datetime) -> tuple[Decimal, int]:
            reply = await admin.get("/api/v1/admin/usage", params={
                "organisation_id": organisation_id, "metric": metric, "from": start.isoformat(),
                "to": end.isoformat()})
            assert reply.status_code == 200, reply.text
            rows = reply.json()["rows"]
            return sum((Decimal(r["value"]) for r in rows), Decimal(0)), sum(r["event_count"] for r in rows)

        expected = {
            ("api_calls", period_start, period_end): (Decimal(12345), 4),
            ("llm_tokens", period_start, period_end): (Decimal(250025), 3),
            ("api_calls", period_end, period_end + timedelta(days=1)): (Decimal(1000), 1),
        }

        async def all_usage_in():
            found = {k: await usage(*k) for k in expected}
            return found if found == expected else None

        await wait_until(all_usage_in, "usage of every distinct event showing in metering")

        # --- close the period through the admin REST API ----------------------------------------------------
        started = await admin.post("/api/v1/admin/invoice-runs",
                                   json={"period_key": period_key, "organisation_id": organisation_id})
        assert started.status_code == 202, started.text

        async def finished():
            run = (await admin.get(f"/api/v1/admin/invoice-runs/{started.json()['id']}")).json()
            return run if run["state"] != "running" else None

        run = await wait_until(finished, "the invoice run finishing")
        assert (run["state"], run["organisations_total"], run["invoiced"], run["failed"]) == (
            "completed", 1, 1, 0), run
        today = datetime.now(IST).date()

        listed = await admin.get("/api/v1/admin/invoices", params={"organisation_id": organisation_id})
        assert listed.status_code == 200, listed.text
        (summary,) = listed.json()["data"]
        invoice = (await admin.get(f"/api/v1/admin/invoices/{summary['id']}")).json()

        # --- the invoice, to the paisa ----------------------------------------------------------------------
        assert (invoice["status"], invoice["currency"], invoice["period_key"]) == ("issued", "INR", period_key)
        assert datetime.fromisoformat(invoice["period_start"]) == period_start
        assert datetime.fromisoformat(invoice["period_end"]) == period_end
        assert [(line["kind"], line["metric_code"], line["quantity"], line["amount_minor"])
                for line in invoice["lines"]] == [
            # The base fee, a whole month in arrears: 1,499.00.
            ("base_fee", "", "1", 149900),
            # 12,345 calls, graduated: 1,000 x 0 + 9,000 x 0.05 + 2,345 x 0.02 = 0 + 450.00 + 46.90 = 496.90.
            # Not the 1,000 calls at 00:00 IST on the 1st (next period), not the repeated ids.
            ("usage", "api_calls", "12345", 49690),
            # 250,025 tokens x 0.0002 = 50.005, rounded half-up once, on the line: 50.01.
            ("usage", "llm_tokens", "250025", 5001),
        ]
        assert [(t["quantity"], t["amount"]) for t in invoice["lines"][1]["breakdown"]] == [
            ("1000", "0"), ("9000", "450.00"), ("2345", "46.90")]
        # Subtotal 1,499.00 + 496.90 + 50.01 = 2,045.91. Karnataka to Karnataka: CGST 9 % and SGST 9 %, each
        # 204,591 x 0.09 = 18,413.19 paise -> 184.13. Total 2,045.91 + 368.26 = 2,414.17.
        assert invoice["subtotal_minor"] == 204591
        assert [(t["kind"], t["rate"], t["taxable_minor"], t["amount_minor"]) for t in invoice["tax_lines"]] == [
            ("cgst", "9", 204591, 18413), ("sgst", "9", 204591, 18413)]
        assert (invoice["tax_minor"], invoice["total_minor"], invoice["total"]) == (36826, 241417, "2414.17")
        assert (invoice["tax_regime"], invoice["place_of_supply"]) == ("intra_state", "29")
        assert (invoice["supplier"]["gstin"], invoice["customer"]["gstin"]) == (SUPPLIER_GSTIN, CUSTOMER_GSTIN)
        # <series>/<Indian financial year of the issue date>/<sequence, 5 digits>, at most 16 characters.
        number = invoice["number"]
        assert re.fullmatch(rf"INV/{financial_year(today)}/\d{{5}}", number) and len(number) <= 16, number
        assert invoice["issue_date"] == today.isoformat()
        assert date.fromisoformat(invoice["due_date"]) - today == timedelta(days=15)

        # --- its PDF over REST, page 1 rendered and read back -----------------------------------------------
        pdf = await admin.get(f"/api/v1/admin/invoices/{invoice['id']}/pdf")
        assert pdf.status_code == 200, pdf.text[:500]
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        document = pdfium.PdfDocument(pdf.content)
        page = document[0]
        assert len(document) == 1
        image = page.render(scale=2).to_pil().convert("RGB")
        png = tmp_path / "invoice_page1.png"
        image.save(png)
        shutil.copyfile(png, PNG_COPY)
        print(f"invoice {number}: page 1 rendered to {png} (copied to {PNG_COPY})")
        # Not a blank page: text and rules make the grey levels vary, and a good share of pixels is dark.
        grey = image.convert("L")
        variance = ImageStat.Stat(grey).var[0]
        assert variance > 500, variance
        assert sum(grey.histogram()[:128]) > 0.01 * grey.width * grey.height
        text = " ".join(page.get_textpage().get_text_range().split())
        last_day = period_end - timedelta(days=1)
        for expected_text in (
            "TAX INVOICE",
            f"Invoice number {number}",
            f"Billing period 1 {period_start:%b %Y} - {last_day.day} {last_day:%b %Y}",
            "Place of supply Karnataka (29)",
            f"GSTIN: {SUPPLIER_GSTIN}",
            "Rangoli Analytics Pvt Ltd",
            f"GSTIN: {CUSTOMER_GSTIN}",
            "1 Growth plan base fee 998315 1 1,499.00 1,499.00",
            "Tier 2 (over 1,000 up to 10,000) 9,000 0.05 450.00",
            "3 LLM tokens 998315 2,50,025 0.0002 50.01",  # quantities grouped in lakhs
            "Subtotal 2,045.91",
            "CGST 9% on INR 2,045.91 184.13",
            "SGST 9% on INR 2,045.91 184.13",
            "Total (INR) 2,414.17",
            "Rupees Two Thousand Four Hundred and Fourteen and Seventeen Paise Only",
        ):
            assert expected_text in text, f"{expected_text!r} not on page 1: {text}"
        assert "IGST" not in text

        # --- closing the period again changes nothing -------------------------------------------------------
        again = cli(mesh, "invoices", "run", "--period", period_key, "--organisation", organisation_id, "--json")
        assert again.returncode == 0, again.stdout + again.stderr
        rerun = json.loads(again.stdout)
        assert (rerun["state"], rerun["invoiced"], rerun["already_invoiced"]) == ("completed", 0, 1), rerun
        listed = await admin.get("/api/v1/admin/invoices", params={"organisation_id": organisation_id})
        assert [i["id"] for i in listed.json()["data"]] == [invoice["id"]]
        # And the repeats counted once, still: nothing arrived late to change the month's usage.
        assert {k: await usage(*k) for k in expected} == expected
    assert mesh.unexpected_exits() == []
