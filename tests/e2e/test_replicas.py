"""End to end with replicas: a second ingest, metering, invoicing and gateway process beside the first, sharing
the database, JetStream's durable consumers and the invoice number series, as two pods of each would.

Usage sent through both doors (with repeats across them) counts every distinct event once, whichever metering
replica stores it; two invoice runs of last month started at once, one on each invoicing replica, issue one invoice
per organisation, priced as one process would price it, under contiguous numbers with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import asyncpg
import httpx
import pytest

from billing_client import EventSender
from devstack.mesh import Mesh
from tests.e2e.test_invoicing import financial_year, previous_month_ist, wait_until

pytestmark = pytest.mark.e2e

ORGANISATIONS = 30
BASE_FEE_MINOR = 10_000  # 100.00 INR
UNIT_PRICE = Decimal("0.5")


@pytest.fixture(scope="module")
def replicas(mesh: Mesh) -> Iterator[dict[str, str]]:
    """A second process of each scaled service; the second gateway and ingest call the second ones."""
    started: list[str] = []
    try:
        # Small batches on the second invoicing, so the two replicas' runs interleave organisation by organisation.
        started.append(mesh.start_replica("invoicing", env={"INVOICING_INVOICE_RUN_BATCH_SIZE": "3"}))
        started.append(mesh.start_replica("ingest", peers={"invoicing": "invoicing-2"}))
        started.append(mesh.start_replica("metering", peers={"invoicing": "invoicing-2"}))
        started.append(mesh.start_replica(
            "gateway", peers={"ingest": "ingest-2", "metering": "metering-2", "invoicing": "invoicing-2"}))
        yield {name.split("-")[0]: name for name in started}
    finally:
        for name in reversed(started):
            mesh.stop_service(name)


def stored_events(mesh: Mesh, name: str) -> float:
    """``billing_metering_events_stored_total`` of one metering process (new events it stored)."""
    text = httpx.get(mesh.metrics_url(name), timeout=10).text
    match = re.search(r"^billing_metering_events_stored_total ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def new_tenant(admin: httpx.AsyncClient, *, since: datetime | None, database_url: str) -> tuple[str, str]:
    """An organisation in Karnataka with a project, an API key and a "units" sum metric: (id, key)."""
    created = await admin.post("/api/v1/admin/organisations", json={
        "name": f"Replica {secrets.token_hex(3)}", "billing_email": "ops@replica.example", "billing_currency": "INR",
        "country": "IN", "state_code": "29", "timezone": "Asia/Kolkata",
    })
    assert created.status_code == 201, created.text
    organisation_id = created.json()["id"]
    if since is not None:  # it signed up before the month billed (see test_invoicing)
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute("UPDATE invoicing.organisations SET created_at = $1 WHERE id = $2",
                                     since, organisation_id)
        finally:
            await connection.close()
    project = await admin.post("/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": "api"})
    assert project.status_code == 201, project.text
    key = await admin.post("/api/v1/admin/api-keys", json={"project_id": project.json()["id"]})
    assert key.status_code == 201, key.text
    metric = await admin.post("/api/v1/admin/metrics", json={
        "organisation_id": organisation_id, "code": "units", "name": "Units", "aggregation": "sum"})
    assert metric.status_code == 201, metric.text
    return organisation_id, key.json()["secret"]


async def usage(admin: httpx.AsyncClient, organisation_id: str, start: datetime, end: datetime) -> tuple[Decimal, int]:
    reply = await admin.get("/api/v1/admin/usage", params={
        "organisation_id": organisation_id, "metric": "units", "from": start.isoformat(), "to": end.isoformat()})
    assert reply.status_code == 200, reply.text
    rows = reply.json()["rows"]
    return sum((Decimal(r["value"]) for r in rows), Decimal(0)), sum(r["event_count"] for r in rows)


def admin_client(mesh: Mesh, gateway: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=mesh.http_url(gateway), timeout=30,
                             headers={"Authorization": f"Bearer {mesh.admin_token}"})


async def test_two_of_each_count_every_distinct_event_once(mesh: Mesh, replicas: dict[str, str]):
    rng = random.Random(20261214)
    start = datetime.now(UTC) - timedelta(hours=1)
    when = datetime.now(UTC) - timedelta(minutes=5)
    async with admin_client(mesh, "gateway") as admin:
        organisation_id, key = await new_tenant(admin, since=None, database_url=mesh.database_url)
    distinct = {f"rep-{i:05d}": Decimal(rng.randint(1, 99_999)) / 100 for i in range(4_000)}
    ids = list(distinct)
    plan = ids + [rng.choice(ids) for _ in range(1_500)]  # 1,500 repeats, through either door
    rng.shuffle(plan)
    before = {name: stored_events(mesh, name) for name in ("metering", replicas["metering"])}

    halves = (plan[: len(plan) // 2], plan[len(plan) // 2:])
    async with (EventSender(mesh.address("ingest"), key, batch_size=100, linger_seconds=0.01) as first,
                EventSender(mesh.address(replicas["ingest"]), key, batch_size=100, linger_seconds=0.01) as second):
        for sender, half in zip((first, second), halves, strict=True):
            for event_id in half:
                await sender.send("units", distinct[event_id], event_id=event_id, timestamp=when)
        await first.flush(timeout=60)
        await second.flush(timeout=60)
        assert first.stats.rejected == second.stats.rejected == 0
    # And repeats over REST through both gateways (each calls its own ingest).
    for gateway in ("gateway", replicas["gateway"]):
        rest = [{"eventId": i, "metricName": "units", "metricValue": str(distinct[i]), "timestamp": when.isoformat()}
                for i in rng.sample(ids, 300)]
        async with httpx.AsyncClient(base_url=mesh.http_url(gateway), timeout=30) as client:
            reply = await client.post("/api/v1/events", json=rest, headers={"Authorization": f"Bearer {key}"})
        assert reply.status_code == 202, reply.text
        assert reply.json()["rejected"] == 0

    expected = (sum(distinct.values(), Decimal(0)), len(distinct))
    end = datetime.now(UTC) + timedelta(minutes=5)
    for gateway in ("gateway", replicas["gateway"]):  # each gateway reads through its own metering
        async with admin_client(mesh, gateway) as admin:
            async def exact(admin: httpx.AsyncClient = admin) -> bool:
                return await usage(admin, organisation_id, start, end) == expected
            await wait_until(exact, f"every distinct event counted once, read through {gateway}", timeout=60)
            assert await usage(admin, organisation_id, start, end) == expected  # to the last decimal
    stored = {name: stored_events(mesh, name) - before[name] for name in before}
    print(f"new events stored per metering replica: {stored}")
    assert sum(stored.values()) == len(distinct)  # no event stored twice, whichever replica had its batch
    assert all(count > 0 for count in stored.values()), f"a metering replica stored nothing: {stored}"
    assert mesh.unexpected_exits() == []


def expected_subtotal_minor(quantity: Decimal) -> int:
    return BASE_FEE_MINOR + int((quantity * UNIT_PRICE * 100).quantize(Decimal(1), ROUND_HALF_UP))


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


async def test_invoice_runs_on_two_replicas_issue_each_invoice_once_under_contiguous_numbers(
    mesh: Mesh, replicas: dict[str, str]
):
    period_start, period_end = previous_month_ist(datetime.now(UTC))
    period_key = period_start.strftime("%Y-%m")
    gateways = ("gateway", replicas["gateway"])
    rng = random.Random(1414)
    async with admin_client(mesh, gateways[0]) as first, admin_client(mesh, gateways[1]) as second:
        admins = (first, second)
        plan = await first.post("/api/v1/admin/plans", json={
            "code": f"scale-{secrets.token_hex(3)}", "name": "Scale", "terms": {
                "currency": "INR", "base_fee": str(Decimal(BASE_FEE_MINOR) / 100), "sac_code": "998315",
                "charges": [{"metric_code": "units", "display_name": "Units",
                             "charge": {"model": "per_unit", "unit_price": str(UNIT_PRICE)}}]}})
        assert plan.status_code == 201, plan.text
        version_id = plan.json()["latest_version"]["id"]

        quantities: dict[str, Decimal] = {}
        for index in range(ORGANISATIONS):
            admin = admins[index % 2]
            organisation_id, key = await new_tenant(admin, since=period_start - timedelta(days=10),
                                                    database_url=mesh.database_url)
            subscription = await admin.post("/api/v1/admin/subscriptions", json={
                "organisation_id": organisation_id, "plan_version_id": version_id,
                "start_date": period_start.date().isoformat()})
            assert subscription.status_code == 201, subscription.text
            events = [{"eventId": f"e{n}", "metricName": "units", "metricValue": str(rng.randint(1, 5_000)),
                       "timestamp": (period_end - timedelta(hours=rng.randint(1, 40))).isoformat()}
                      for n in range(rng.randint(1, 8))]
            quantities[organisation_id] = sum((Decimal(e["metricValue"]) for e in events), Decimal(0))
            # The same events through both gateways: counted once.
            for client in admins:
                sent = await client.post("/api/v1/events", json=events, headers={"Authorization": f"Bearer {key}"})
                assert sent.status_code == 202, sent.text

        async def all_usage_in() -> bool:
            for organisation_id, quantity in quantities.items():
                if (await usage(first, organisation_id, period_start, period_end))[0] != quantity:
                    return False
            return True

        await wait_until(all_usage_in, "every organisation's usage in metering", timeout=60)

        # Two runs of the whole month at once, one on each invoicing replica (each gateway calls its own).
        started = await asyncio.gather(*(
            admin.post("/api/v1/admin/invoice-runs", json={"period_key": period_key}) for admin in admins))
        assert all(reply.status_code == 202 for reply in started), [reply.text for reply in started]
        run_ids = [reply.json()["id"] for reply in started]
        assert run_ids[0] != run_ids[1]

        async def both_finished():
            runs = [(await first.get(f"/api/v1/admin/invoice-runs/{run_id}")).json() for run_id in run_ids]
            return runs if all(run["state"] != "running" for run in runs) else None

        runs = await wait_until(both_finished, "both invoice runs finishing", timeout=90)
        print("runs:", [{k: run[k] for k in ("state", "organisations_done", "invoiced", "already_invoiced")}
                        for run in runs])
        assert all(run["state"] == "completed" for run in runs), runs
        assert all(run["organisations_done"] == run["organisations_total"] for run in runs), runs

        # Exactly one invoice per organisation and period, priced as a single process prices it.
        for organisation_id, quantity in quantities.items():
            listed = await first.get("/api/v1/admin/invoices",
                                     params={"organisation_id": organisation_id, "period_key": period_key})
            assert listed.status_code == 200, listed.text
            (summary,) = listed.json()["data"]
            invoice = (await first.get(f"/api/v1/admin/invoices/{summary['id']}")).json()
            subtotal = expected_subtotal_minor(quantity)
            half_tax = half_up(Decimal(subtotal) * Decimal("0.09"))  # CGST and SGST, Karnataka to Karnataka
            assert (invoice["status"], invoice["subtotal_minor"], invoice["total_minor"]) == (
                "issued", subtotal, subtotal + 2 * half_tax), (quantity, invoice)
        issued_here = sum(run["invoiced"] for run in runs)
        assert issued_here >= ORGANISATIONS  # ours, and any other test's organisation the runs found due

    # The whole series: numbers 1..N, each once, and the series row at N (no gap, no duplicate, none skipped).
    fy = financial_year(datetime.now(UTC).astimezone(period_start.tzinfo).date())
    connection = await asyncpg.connect(mesh.database_url)
    try:
        numbers = [row["number"] for row in await connection.fetch(
            "SELECT number FROM invoicing.invoices WHERE number LIKE $1", f"INV/{fy}/%")]
        last = await connection.fetchval(
            "SELECT last_sequence FROM invoicing.invoice_number_series WHERE series = 'INV' AND financial_year = $1",
            fy)
    finally:
        await connection.close()
    sequences = sorted(int(number.rsplit("/", 1)[1]) for number in numbers)
    assert sequences == list(range(1, len(sequences) + 1)), sequences
    assert last == len(sequences)
    assert mesh.unexpected_exits() == []

