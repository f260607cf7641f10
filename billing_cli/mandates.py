"""billing mandates: organisations' recurring mandates (Razorpay tokens on a card, UPI AutoPay or eNACH) on which
their invoices are debited before they are due (docs/payments.md, "Recurring auto-debit")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from billing_cli.output import JsonOption, gateway_of, show

mandates = typer.Typer(help="Recurring mandates: invoices debited automatically on a card, UPI AutoPay or eNACH.",
                       no_args_is_help=True)

Organisation = Annotated[str, typer.Option("--organisation", "--organisation-id", help="The organisation's id")]
MANDATE_COLUMNS = ["id", "organisation_id", "method", "state", "max_amount", "expire_at", "token_id", "reason",
                   "checkout_url"]


def mandate_row(mandate: dict[str, Any]) -> dict[str, Any]:
    return {**mandate, "max_amount": f"INR {mandate['max_amount']}"}


@mandates.command("list")
def mandates_list(
    ctx: typer.Context,
    organisation: Organisation,
    all_states: Annotated[bool, typer.Option("--all", help="Also rejected and cancelled mandates")] = False,
    as_json: JsonOption = False,
) -> None:
    """An organisation's mandates, newest first (live ones only unless --all)."""
    rows = gateway_of(ctx).request("GET", f"/api/v1/admin/organisations/{organisation}/mandates",
                                   params={"include_finished": "true" if all_states else "false"})["data"]
    show(rows if as_json else [mandate_row(m) for m in rows], MANDATE_COLUMNS, as_json,
         f"{len(rows)} mandate(s) of {organisation}")


@mandates.command("create")
def mandates_create(
    ctx: typer.Context,
    organisation: Organisation,
    method: Annotated[str, typer.Option(help="card, upi (UPI AutoPay) or emandate (eNACH)")],
    max_amount: Annotated[str, typer.Option(help="The most one debit may take, in rupees, e.g. 15000.00")],
    contact: Annotated[str, typer.Option(help="The customer's phone, e.g. +919000090000")] = "",
    name: Annotated[str, typer.Option(help="The customer's name; default the organisation's")] = "",
    email: Annotated[str, typer.Option(help="The customer's email; default its billing email")] = "",
    expire_at: Annotated[str, typer.Option(help="RFC 3339 time the mandate ends; default in five years")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the organisation and method, so "
                                                      "running the same command twice makes one mandate")] = "",
    as_json: JsonOption = False,
) -> None:
    """Start a mandate: prints the Checkout link the customer authorises it at. It is confirmed by Razorpay
    (token.confirmed); invoices issued after that are debited on it."""
    body: dict[str, Any] = {"method": method, "max_amount": max_amount, "customer_contact": contact,
                            "idempotency_key": idempotency_key or f"cli-mandate-{organisation}-{method}"}
    for key, value in (("customer_name", name), ("customer_email", email), ("expire_at", expire_at)):
        if value:
            body[key] = value
    made = gateway_of(ctx).request("POST", f"/api/v1/admin/organisations/{organisation}/mandates", json=body)
    show([made] if as_json else [mandate_row(made)], MANDATE_COLUMNS, as_json,
         f"Mandate {made['id']} ({made['state']}): send the customer to {made['checkout_url'] or 'Checkout'}; "
         f"then `billing mandates list --organisation {organisation}` shows it confirmed")


@mandates.command("pause")
def mandates_pause(ctx: typer.Context, mandate_id: Annotated[str, typer.Argument(help="The mandate's id")],
                   as_json: JsonOption = False) -> None:
    """Pause a confirmed mandate: invoices are collected without it until a new one is made."""
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/mandates/{mandate_id}/pause")
    show([row] if as_json else [mandate_row(row)], MANDATE_COLUMNS, as_json, f"Mandate {mandate_id} paused")


@mandates.command("cancel")
def mandates_cancel(ctx: typer.Context, mandate_id: Annotated[str, typer.Argument(help="The mandate's id")],
                    as_json: JsonOption = False) -> None:
    """Cancel a mandate for good (Razorpay cancels the token); debits already requested still complete."""
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/mandates/{mandate_id}/cancel")
    show([row] if as_json else [mandate_row(row)], MANDATE_COLUMNS, as_json, f"Mandate {mandate_id} cancelled")
