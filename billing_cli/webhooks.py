"""billing webhooks: organisations' webhook endpoints (register, change, rotate the signing secret, test, delete)
and the deliveries posted to them (list, show with attempts, replay)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, comma_list, console, gateway_of, list_all, show

webhooks = typer.Typer(help="Webhooks to organisations' own endpoints: endpoints and deliveries.",
                       no_args_is_help=True)
endpoints = typer.Typer(help="Webhook endpoints: list, create, show, update, delete, rotate the secret, test.",
                        no_args_is_help=True)
deliveries = typer.Typer(help="Webhook deliveries: list, show with attempts, replay.", no_args_is_help=True)
webhooks.add_typer(endpoints, name="endpoints")
webhooks.add_typer(deliveries, name="deliveries")

ENDPOINT_COLUMNS = ["id", "organisation_id", "url", "event_types", "enabled", "disabled_reason", "description",
                    "created_at"]
DELIVERY_COLUMNS = ["id", "endpoint_id", "event_type", "state", "attempts", "last_status_code", "last_error",
                    "created_at", "delivered_at"]
ATTEMPT_COLUMNS = ["number", "status_code", "error", "duration_ms", "started_at", "response_body"]
EVENT_TYPES = "invoice.issued, invoice.paid, payment.failed, payment.retry_scheduled, invoice.overdue, " \
              "refund.processed"
STATES = "pending, sending, delivered, failed"
ENDPOINTS = "/api/v1/admin/webhook-endpoints"
DELIVERIES = "/api/v1/admin/webhook-deliveries"


def endpoint_row(endpoint: dict[str, Any]) -> dict[str, Any]:
    return {**endpoint, "event_types": ", ".join(endpoint["event_types"]) or "(all)"}


def _print_secret(endpoint: dict[str, Any], title: str) -> None:
    show([endpoint_row(endpoint)], ENDPOINT_COLUMNS, False, title)
    console.print(f"[bold]Signing secret (shown once, store it now):[/bold] {endpoint['secret']}")


# --- endpoints -----------------------------------------------------------------------------------------------


@endpoints.command("list")
def endpoints_list(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id", help="Whose endpoints")],
    as_json: JsonOption = False,
) -> None:
    """List an organisation's endpoints, newest first (without their secrets; deleted ones are not listed)."""
    rows = list_all(gateway_of(ctx), ENDPOINTS, {"organisation_id": organisation})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show([endpoint_row(e) for e in rows], ENDPOINT_COLUMNS, False, f"{len(rows)} webhook endpoint(s)")


@endpoints.command("create")
def endpoints_create(
    ctx: typer.Context,
    organisation_id: str,
    url: Annotated[str, typer.Option(help="Where to post: http(s), on a public address")],
    event_types: Annotated[str, typer.Option(help=f"Comma-separated, from {EVENT_TYPES}; default all")] = "",
    description: Annotated[str, typer.Option(help="What it is for, e.g. the receiving system")] = "",
    as_json: JsonOption = False,
) -> None:
    """Register an endpoint for an organisation. Its signing secret is printed now and never shown again."""
    body = {"url": url, "event_types": comma_list(event_types), "description": description}
    created = gateway_of(ctx).request("POST", f"/api/v1/admin/organisations/{organisation_id}/webhook-endpoints",
                                      json=body)
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    _print_secret(created, f"Webhook endpoint {created['id']} created")
    console.print(f"Check the receiver with `billing webhooks endpoints test {created['id']}`.", highlight=False)


@endpoints.command("show")
def endpoints_show(ctx: typer.Context, endpoint_id: str, as_json: JsonOption = False) -> None:
    """Show one endpoint (never its secret), and while a rotation's overlap lasts, until when the old secret
    signs too."""
    endpoint = gateway_of(ctx).request("GET", f"{ENDPOINTS}/{endpoint_id}")
    if as_json:
        typer.echo(json.dumps(endpoint, indent=2))
        return
    show([endpoint_row(endpoint)], ENDPOINT_COLUMNS, False, f"Webhook endpoint {endpoint['id']}")
    if endpoint["previous_secret_expires_at"]:
        console.print(f"The previous secret signs too until {endpoint['previous_secret_expires_at']}.",
                      highlight=False)
    if not endpoint["enabled"]:
        console.print(f"Disabled ({endpoint['disabled_reason']}): once the receiver is fixed, "
                      f"`billing webhooks endpoints update {endpoint['id']} --enable`.", highlight=False, markup=False)


@endpoints.command("update")
def endpoints_update(
    ctx: typer.Context,
    endpoint_id: str,
    url: Annotated[str | None, typer.Option(help="A new URL")] = None,
    event_types: Annotated[str | None, typer.Option(help=f'Comma-separated, from {EVENT_TYPES}; "" for all')] = None,
    description: Annotated[str | None, typer.Option(help="A new description")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="Enable it again (after a fix) or "
                                                                            "stop its deliveries")] = None,
    as_json: JsonOption = False,
) -> None:
    """Change the options given and keep the rest."""
    given = {"url": url, "event_types": comma_list(event_types), "description": description, "enabled": enabled}
    body = {name: value for name, value in given.items() if value is not None}
    if not body:
        raise CliError("nothing to change: give --url, --event-types, --description, --enable or --disable")
    endpoint = gateway_of(ctx).request("PATCH", f"{ENDPOINTS}/{endpoint_id}", json=body)
    show([endpoint_row(endpoint)], ENDPOINT_COLUMNS, as_json, f"Webhook endpoint {endpoint['id']} updated")


@endpoints.command("delete")
def endpoints_delete(ctx: typer.Context, endpoint_id: str, as_json: JsonOption = False) -> None:
    """Delete an endpoint: nothing more is posted to it; its delivery history stays."""
    gateway_of(ctx).send("DELETE", f"{ENDPOINTS}/{endpoint_id}")
    if as_json:
        typer.echo(json.dumps({"id": endpoint_id, "deleted": True}))
        return
    console.print(f"Webhook endpoint {endpoint_id} deleted; its deliveries are still listed.", highlight=False)


@endpoints.command("rotate")
def endpoints_rotate(
    ctx: typer.Context,
    endpoint_id: str,
    overlap: Annotated[int | None, typer.Option(help="Seconds the previous secret keeps signing too (default: the "
                                                     "service's, 24 hours; 0 for a leaked secret)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Give an endpoint a new signing secret, printed now and never shown again. The previous one keeps signing
    for the overlap, so the receiver can switch without missing a delivery."""
    body = {} if overlap is None else {"overlap_seconds": overlap}
    rotated = gateway_of(ctx).request("POST", f"{ENDPOINTS}/{endpoint_id}/rotate-secret", json=body)
    if as_json:
        typer.echo(json.dumps(rotated, indent=2))
        return
    _print_secret(rotated, f"Webhook endpoint {rotated['id']}: secret rotated")
    until = rotated["previous_secret_expires_at"]
    console.print(f"The previous secret signs too until {until}: deploy the new one before then." if until
                  else "The previous secret no longer signs.", highlight=False)


@endpoints.command("test")
def endpoints_test(ctx: typer.Context, endpoint_id: str, as_json: JsonOption = False) -> None:
    """Post a `webhook.test` event to an endpoint now (even a disabled one, to check a fix)."""
    delivery = gateway_of(ctx).request("POST", f"{ENDPOINTS}/{endpoint_id}/test")
    if as_json:
        typer.echo(json.dumps(delivery, indent=2))
        return
    show([delivery], DELIVERY_COLUMNS, False, f"Test delivery {delivery['id']} queued")
    console.print(f"Follow it with `billing webhooks deliveries show {delivery['id']}`.", highlight=False)


# --- deliveries ----------------------------------------------------------------------------------------------


@deliveries.command("list")
def deliveries_list(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Option("--endpoint", "--endpoint-id", help="Only this endpoint's")] = "",
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="Only this organisation's")] = "",
    state: Annotated[str, typer.Option(help=f"Only this state: {STATES}")] = "",
    as_json: JsonOption = False,
) -> None:
    """List deliveries, newest first. `--state failed` shows the ones to replay once the receiver is fixed."""
    params = {name: value for name, value in (("endpoint_id", endpoint), ("organisation_id", organisation),
                                               ("state", state)) if value}
    rows = list_all(gateway_of(ctx), DELIVERIES, params)
    show(rows, DELIVERY_COLUMNS, as_json, f"{len(rows)} webhook deliveries")


@deliveries.command("show")
def deliveries_show(ctx: typer.Context, delivery_id: str, as_json: JsonOption = False) -> None:
    """Show one delivery, its body as posted, and each attempt with the endpoint's status code and answer."""
    delivery = gateway_of(ctx).request("GET", f"{DELIVERIES}/{delivery_id}")
    if as_json:
        typer.echo(json.dumps(delivery, indent=2))
        return
    show([delivery], DELIVERY_COLUMNS, False, f"Webhook delivery {delivery['id']}")
    console.print(f"webhook-id {delivery['webhook_id']}, event {delivery['event_id']}", highlight=False,
                  markup=False)
    if delivery["state"] == "pending" and delivery["next_attempt_at"]:
        console.print(f"Next attempt at {delivery['next_attempt_at']}", highlight=False)
    # The body and the endpoint's answers are someone else's text, not rich markup.
    console.print(f"Body: {delivery['payload']}", highlight=False, markup=False)
    if delivery["delivery_attempts"]:
        show(delivery["delivery_attempts"], ATTEMPT_COLUMNS, False, f"Attempts of {delivery['id']}")
    else:
        console.print("No attempts yet.", highlight=False)
    if delivery["state"] == "failed":
        console.print(f"Failed: once the receiver is fixed (and its endpoint enabled), "
                      f"`billing webhooks deliveries replay {delivery['id']}`.", highlight=False)


@deliveries.command("replay")
def deliveries_replay(
    ctx: typer.Context,
    delivery_id: str,
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key; default a new one, printed so a retry can "
                                                      "pass it")] = "",
    as_json: JsonOption = False,
) -> None:
    """Post a delivery again: a new attempt chain with the same webhook-id and body (the receiver deduplicates).
    Rerun with the printed --idempotency-key after a failure or a timeout: the replay is then made once."""
    key = idempotency_key or f"cli-replay-{uuid.uuid4().hex}"
    try:
        response = gateway_of(ctx).send("POST", f"{DELIVERIES}/{delivery_id}/replay",
                                        headers={"Idempotency-Key": key})
    except CliError as error:
        # Whether the replay was made is unknown after a timeout: the key is how a retry finds out.
        raise CliError(f"{error} (retry with --idempotency-key {key}: a replay it made is not made twice)") from None
    replay = response.json()
    if as_json:
        typer.echo(json.dumps(replay, indent=2))
        return
    title = (f"Already replayed with this key: delivery {replay['id']}"
             if response.headers.get("idempotent-replayed") == "true"
             else f"Delivery {replay['id']} queued, a replay of {delivery_id}")
    show([replay], DELIVERY_COLUMNS, False, title)
    console.print(f"Idempotency key: {key} (pass --idempotency-key {key} to retry safely). Follow it with "
                  f"`billing webhooks deliveries show {replay['id']}`.", highlight=False)
