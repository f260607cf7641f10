"""Setting up billed organisations through the gateway's REST API, for the invoicing and payments tests of the
gateway and the CLI: an organisation that has existed since a past date, subscribed to a plan, invoice runs to
completion, an issued invoice known to payments, and the CLI run against the gateway."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from billing_cli.__main__ import app
from billing_cli.connection import CliError
from services.invoicing.adapters.tables import organisations
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually

SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
TERMS = {"currency": "INR", "base_fee": "999",
         "charges": [{"metric_code": "api_calls", "display_name": "API calls",
                      "charge": {"model": "per_unit", "unit_price": "0.05"}}]}


async def organisation(admin_http, invoicing, since: datetime | None = None, **overrides) -> str:
    """A new organisation made through the REST API; with ``since``, one that has existed since then."""
    body = {"name": f"Acme {secrets.token_hex(3)}", "billing_email": "billing@acme.example",
            "billing_currency": "INR", "country": "IN", "state_code": "29", "timezone": "Asia/Kolkata", **overrides}
    response = await admin_http.post("/api/v1/admin/organisations", json=body)
    assert response.status_code == 201, response.text
    organisation_id = response.json()["id"]
    if since is not None:
        async with invoicing.engine.begin() as conn:
            await conn.execute(sa.update(organisations).where(organisations.c.id == organisation_id)
                               .values(created_at=since))
    return organisation_id


async def plan(admin_http) -> dict:
    response = await admin_http.post("/api/v1/admin/plans", json={
        "code": f"plan-{secrets.token_hex(4)}", "name": "Standard", "terms": TERMS})
    assert response.status_code == 201, response.text
    return response.json()


async def subscribed(admin_http, invoicing, **organisation_fields) -> str:
    """An organisation on a new plan (TERMS) since 1 October, in its own zone."""
    organisation_id = await organisation(admin_http, invoicing, since=SEPTEMBER, **organisation_fields)
    response = await admin_http.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_code": (await plan(admin_http))["code"], "start_date": "2026-10-01"})
    assert response.status_code == 201, response.text
    return organisation_id


async def run_period(admin_http, organisation_id: str, key: str = "") -> dict:
    """Start a run over REST (202) and poll it until it is no longer running."""
    headers = {"Idempotency-Key": key} if key else {}
    started = await admin_http.post("/api/v1/admin/invoice-runs", headers=headers,
                                    json={"period_key": "2026-10", "organisation_id": organisation_id})
    assert started.status_code == 202, started.text
    run = started.json()
    deadline = asyncio.get_running_loop().time() + 60
    while run["state"] == "running":
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.05)
        run = (await admin_http.get(f"/api/v1/admin/invoice-runs/{run['id']}")).json()
    return run


async def only_invoice(admin_http, organisation_id: str) -> dict:
    listed = (await admin_http.get("/api/v1/admin/invoices", params={"organisation_id": organisation_id})).json()
    assert len(listed["data"]) == 1, listed
    return (await admin_http.get(f"/api/v1/admin/invoices/{listed['data'][0]['id']}")).json()


async def billing(gateway_url: str, *args: str) -> tuple[int, str]:
    """Run the ``billing`` CLI in a thread (it makes blocking HTTP calls to the gateway this event loop serves);
    (exit code, output), where a CliError is exit 1 with its one line, as ``main()`` prints it."""
    argv = ["--gateway", gateway_url, "--admin-token", GATEWAY_ADMIN_TOKEN, *args]
    environment = {"COLUMNS": "250", "BILLING_ENDPOINTS": "/nonexistent/endpoints.json"}
    result = await asyncio.to_thread(CliRunner().invoke, app, argv, env=environment)
    if isinstance(result.exception, CliError):
        return 1, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def issued_invoice(admin: httpx.AsyncClient, invoicing) -> tuple[str, dict]:
    """(organisation id, invoice) of an organisation invoiced for October: 999.00 + 18 % GST = 1178.82 INR."""
    organisation_id = await subscribed(admin, invoicing)
    run = await run_period(admin, organisation_id)
    assert run["invoiced"] == 1, run
    return organisation_id, await only_invoice(admin, organisation_id)


async def known_to_payments(gateway: str, invoice_id: str) -> str:
    """`billing payments invoice`, once payments has consumed invoice.issued."""

    async def shown() -> str | None:
        code, out = await billing(gateway, "payments", "invoice", invoice_id)
        return out if code == 0 else None

    return await eventually(shown, what=f"payments to know invoice {invoice_id}")
