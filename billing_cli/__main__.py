"""billing: organisations, projects, API keys, metrics, usage, events, plans, subscriptions, exchange rates,
invoices, payments, refunds, dunning and reconciliation on a running platform."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer

from billing_cli import (
    alerts,
    audit,
    catalog,
    coupons,
    credit_notes,
    credits,
    dead_letters,
    dunning,
    einvoices,
    invoices,
    mandates,
    messages,
    metering,
    payments,
    price_overrides,
    reconciliation,
    staff,
    webhooks,
)
from billing_cli.connection import CliError, Gateway
from billing_cli.output import JsonOption, console, gateway_of, list_all, show

app = typer.Typer(
    help="Operate a running billing platform through its gateway's API.\n\n"
    "The gateway URL and admin token come from --gateway/--admin-token, else BILLING_GATEWAY_URL/"
    "BILLING_ADMIN_TOKEN, else .run/endpoints.json written by `make run`.",
    no_args_is_help=True,
)
organisations = typer.Typer(help="Organisations: the billed accounts.", no_args_is_help=True)
projects = typer.Typer(help="Projects: an organisation's sources of usage events.", no_args_is_help=True)
api_keys = typer.Typer(help="API keys of a project (secrets are shown once, at creation).", no_args_is_help=True)
app.add_typer(organisations, name="organisations")
app.add_typer(projects, name="projects")
app.add_typer(api_keys, name="api-keys")


@app.callback()
def connect(
    ctx: typer.Context,
    gateway: Annotated[str | None, typer.Option(help="Gateway URL, e.g. http://127.0.0.1:8080")] = None,
    admin_token: Annotated[str | None, typer.Option(help="Admin token (GATEWAY_ADMIN_TOKEN of the gateway)")] = None,
) -> None:
    ctx.obj = (gateway, admin_token)


def _gateway(ctx: typer.Context) -> Gateway:
    return gateway_of(ctx)


ORGANISATION_COLUMNS = ["id", "name", "billing_email", "billing_currency", "country", "state_code", "gstin",
                        "timezone", "created_at"]


@organisations.command("create")
def organisations_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Legal name")],
    billing_email: Annotated[str, typer.Option(help="Where invoices go")],
    currency: Annotated[str, typer.Option(help="Billing currency, ISO 4217 (INR, USD ...)")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 (IN, US ...)")],
    state_code: Annotated[str, typer.Option(help="GST state code when country is IN, e.g. 29")] = "",
    gstin: Annotated[str, typer.Option(help="GSTIN, if GST-registered")] = "",
    timezone: Annotated[str, typer.Option(help="IANA time zone for billing periods")] = "UTC",
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key: the same key returns the same result")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create an organisation."""
    body = {"name": name, "billing_email": billing_email, "billing_currency": currency, "country": country,
            "state_code": state_code, "gstin": gstin, "timezone": timezone}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    created = _gateway(ctx).request("POST", "/api/v1/admin/organisations", json=body, headers=headers)
    show([created], ORGANISATION_COLUMNS, as_json, "Organisation created")


@organisations.command("list")
def organisations_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every organisation, oldest first."""
    rows = list_all(_gateway(ctx), "/api/v1/admin/organisations", {})
    show(rows, ORGANISATION_COLUMNS, as_json, f"{len(rows)} organisation(s)")


@organisations.command("get")
def organisations_get(ctx: typer.Context, organisation_id: str, as_json: JsonOption = False) -> None:
    """Show one organisation."""
    row = _gateway(ctx).request("GET", f"/api/v1/admin/organisations/{organisation_id}")
    show([row], ORGANISATION_COLUMNS, as_json, "Organisation")


PROJECT_COLUMNS = ["id", "organisation_id", "name", "created_at"]


@projects.command("create")
def projects_create(
    ctx: typer.Context,
    organisation_id: Annotated[str, typer.Option(help="The organisation it belongs to")],
    name: Annotated[str, typer.Option(help="Unique within the organisation")],
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a project in an organisation."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    created = _gateway(ctx).request(
        "POST", "/api/v1/admin/projects", json={"organisation_id": organisation_id, "name": name}, headers=headers
    )
    show([created], PROJECT_COLUMNS, as_json, "Project created")


@projects.command("list")
def projects_list(
    ctx: typer.Context,
    organisation_id: Annotated[str, typer.Option(help="Only this organisation's projects")] = "",
    as_json: JsonOption = False,
) -> None:
    """List projects, oldest first."""
    rows = list_all(_gateway(ctx), "/api/v1/admin/projects", {"organisation_id": organisation_id})
    show(rows, PROJECT_COLUMNS, as_json, f"{len(rows)} project(s)")


KEY_COLUMNS = ["id", "project_id", "name", "prefix", "state", "created_at", "expires_at", "revoked_at"]


@api_keys.command("create")
def api_keys_create(
    ctx: typer.Context,
    project_id: Annotated[str, typer.Option(help="The project the key sends events for")],
    name: Annotated[str, typer.Option(help="A label, e.g. the sending system")] = "",
    expires_at: Annotated[datetime | None, typer.Option(help="When the key stops working (UTC if no zone)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Mint an API key. Its secret is printed now and can never be shown again."""
    body: dict[str, Any] = {"project_id": project_id, "name": name}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat() + ("" if expires_at.tzinfo else "Z")
    created = _gateway(ctx).request("POST", "/api/v1/admin/api-keys", json=body)
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    show([created], KEY_COLUMNS, False, "API key created")
    console.print(f"[bold]Secret (shown once, store it now):[/bold] {created['secret']}")


@api_keys.command("list")
def api_keys_list(
    ctx: typer.Context,
    project_id: Annotated[str, typer.Option(help="Only this project's keys")] = "",
    as_json: JsonOption = False,
) -> None:
    """List API keys (without secrets)."""
    rows = list_all(_gateway(ctx), "/api/v1/admin/api-keys", {"project_id": project_id})
    show(rows, KEY_COLUMNS, as_json, f"{len(rows)} API key(s)")


@api_keys.command("revoke")
def api_keys_revoke(ctx: typer.Context, api_key_id: str, as_json: JsonOption = False) -> None:
    """Revoke a key at once."""
    row = _gateway(ctx).request("POST", f"/api/v1/admin/api-keys/{api_key_id}/revoke")
    show([row], KEY_COLUMNS, as_json, "API key revoked")


@app.command()
def health(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the gateway's view of every service's health."""
    gateway = _gateway(ctx)
    try:
        body = httpx.get(f"{gateway.url}/healthz", timeout=10.0).json()
    except Exception as error:  # noqa: BLE001
        raise CliError(f"cannot reach the gateway at {gateway.url}: {error}") from None
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    rows = [{"service": name, **info} for name, info in body["services"].items()]
    rows.append({"service": "gateway database", "status": body["database"], "address": ""})
    show(rows, ["service", "status", "address"], False, f"Platform: {body['status']}")
    if body["status"] != "ok":
        raise typer.Exit(1)


app.add_typer(metering.metrics, name="metrics")
app.command("usage")(metering.usage)
app.add_typer(metering.events, name="events")
app.add_typer(dead_letters.dead_letters, name="dead-letters")
app.add_typer(catalog.plans, name="plans")
app.add_typer(catalog.subscriptions, name="subscriptions")
app.add_typer(catalog.rates, name="rates")
app.command("quote")(catalog.quote)
app.add_typer(coupons.coupons, name="coupons")
app.add_typer(mandates.mandates, name="mandates")
app.add_typer(price_overrides.price_overrides, name="price-overrides")
app.add_typer(credits.credits, name="credits")
app.add_typer(invoices.invoices, name="invoices")
app.add_typer(credit_notes.credit_notes, name="credit-notes")
app.add_typer(einvoices.einvoices, name="einvoices")
app.add_typer(payments.payments, name="payments")
app.add_typer(payments.refunds, name="refunds")
app.add_typer(dunning.dunning, name="dunning")
app.add_typer(reconciliation.reconciliation, name="reconciliation")
app.add_typer(staff.users, name="users")
app.add_typer(audit.audit, name="audit")
app.add_typer(staff.tokens, name="tokens")
app.add_typer(messages.messages, name="messages")
app.add_typer(webhooks.webhooks, name="webhooks")
app.add_typer(alerts.alerts, name="alerts")
app.add_typer(alerts.quota, name="quota")
app.add_typer(alerts.entitlements, name="entitlements")


def main() -> None:
    try:
        app()
    except CliError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
