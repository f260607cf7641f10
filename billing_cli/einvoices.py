"""billing einvoices: invoices' registrations with the IRP (GST e-invoicing, docs/india.md). List them by status
(the failed ones by default: refused by the IRP, or blocked by the 30-day rule) and retry one once its cause is
fixed."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, console, gateway_of, show

einvoices = typer.Typer(help="E-invoices (IRN registrations with the IRP): list, retry.", no_args_is_help=True)

PATH = "/api/v1/admin/einvoices"
COLUMNS = ["document_id", "document_type", "document_number", "status", "attempts", "ack_no", "last_error"]
STATUSES = ("pending", "registered", "failed", "cancelled", "all")


@einvoices.command("list")
def einvoices_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="pending, registered, failed, cancelled or all")] = "failed",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List e-invoice registrations; by default the failed ones, which an operator fixes and retries."""
    if status not in STATUSES:
        raise CliError(f"--status must be one of {', '.join(STATUSES)}")
    gateway = gateway_of(ctx)
    rows: list[dict[str, Any]] = []
    token = ""
    while len(rows) < limit:
        page = gateway.request("GET", PATH, params={"status": status, "page_size": 500, "page_token": token})
        rows.extend(page["data"])
        token = page["next_page_token"]
        if not token:
            break
    rows = rows[:limit]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show(rows, COLUMNS, False, f"{len(rows)} e-invoice registration(s) {status}")
    if status == "failed" and rows:
        console.print(
            "Fix the cause (the invoice's buyer address, the IRP settings ...), then "
            "`billing einvoices retry <document id>`.",
            highlight=False,
            markup=False,
        )


@einvoices.command("retry")
def einvoices_retry(ctx: typer.Context, document_id: str, as_json: JsonOption = False) -> None:
    """Send a failed registration again: pending, and the registrar sends it at once."""
    row = gateway_of(ctx).request("POST", f"{PATH}/{document_id}/retry")
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    show([row], COLUMNS, False, f"E-invoice of {row['document_number']} queued again")
    console.print(
        "`billing einvoices list --status registered` shows it once the IRP has answered.",
        highlight=False,
        markup=False,
    )
