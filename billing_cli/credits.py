"""billing credits: an organisation's prepaid credit: its balance, grants, top-ups, and voiding a grant."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import typer

from billing_cli.documents import canonical
from billing_cli.output import JsonOption, gateway_of, show

credits = typer.Typer(help="Prepaid credit: grants spent on invoices' totals after tax (a line per grant), "
                           "top-ups paid through the provider, balances.", no_args_is_help=True)

Organisation = Annotated[str, typer.Option("--organisation", "--organisation-id", help="The organisation's id")]
AmountMinor = Annotated[int, typer.Option(help="Minor units of the currency (paise, cents, yen, fils): 50000 INR "
                                               "is 500.00")]
Currency = Annotated[str, typer.Option(help="The organisation's invoicing currency, e.g. INR")]
Priority = Annotated[int, typer.Option(help="Lower is spent first")]
ExpiresAt = Annotated[str, typer.Option(help="RFC 3339 time from which it is never spent; default never")]
GRANT_COLUMNS = ["id", "source", "status", "priority", "amount", "remaining", "clawed_back_minor", "expires_at",
                 "expired", "description"]
BALANCE_COLUMNS = ["currency", "available", "pending_minor"]
LEDGER_COLUMNS = ["kind", "invoice_id", "grant_id", "refund_id", "amount_minor", "consumed_at", "released_at"]


def _path(organisation: str) -> str:
    return f"/api/v1/admin/organisations/{organisation}/credits"


def _key(kind: str, organisation: str, body: dict[str, Any]) -> str:
    return f"cli-{kind}-{hashlib.sha256(canonical({'o': organisation, **body}).encode()).hexdigest()[:24]}"


def _body(amount_minor: int, currency: str, priority: int, expires_at: str) -> dict[str, Any]:
    body: dict[str, Any] = {"amount_minor": amount_minor, "currency": currency, "priority": priority}
    if expires_at:
        body["expires_at"] = expires_at
    return body


@credits.command("balance")
def credits_balance(ctx: typer.Context, organisation: Organisation, as_json: JsonOption = False) -> None:
    """The spendable balance per currency (and top-ups waiting for payment)."""
    statement = gateway_of(ctx).request("GET", _path(organisation))
    if as_json:
        show([statement], [], True, "")
        return
    show(statement["balances"], BALANCE_COLUMNS, False, f"Prepaid credit of {organisation}")


@credits.command("list")
def credits_list(
    ctx: typer.Context,
    organisation: Organisation,
    ledger: Annotated[bool, typer.Option(help="The ledger (what invoices consumed, what refunds of top-ups took "
                                              "back) instead of the grants")] = False,
    as_json: JsonOption = False,
) -> None:
    """The organisation's grants, oldest first, with what is left of each; or, with --ledger, what each invoice
    consumed from each grant and what each refund of a top-up took back (kind clawback), newest first."""
    statement = gateway_of(ctx).request("GET", _path(organisation))
    if ledger:
        rows = statement["consumptions"]
        show(rows, LEDGER_COLUMNS, as_json, f"{len(rows)} ledger entries of {organisation}'s credit")
        return
    rows = statement["grants"]
    show(rows, GRANT_COLUMNS, as_json, f"{len(rows)} grant(s) of {organisation}")


@credits.command("grant")
def credits_grant(
    ctx: typer.Context,
    organisation: Organisation,
    amount_minor: AmountMinor,
    currency: Currency,
    priority: Priority = 0,
    expires_at: ExpiresAt = "",
    description: Annotated[str, typer.Option(help="Printed on the invoice's credit line")] = "",
    source: Annotated[str, typer.Option(help="granted, or credit_note (with --source-id)")] = "granted",
    source_id: Annotated[str, typer.Option(help="The credit note the credit comes from")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the grant, so running the same "
                                                      "command twice grants once")] = "",
    as_json: JsonOption = False,
) -> None:
    """Grant prepaid credit to an organisation."""
    body = _body(amount_minor, currency, priority, expires_at) | {"description": description, "source": source,
                                                                   "source_id": source_id}
    key = idempotency_key or _key("grant", organisation, body)
    row = gateway_of(ctx).request("POST", f"{_path(organisation)}/grants", json=body,
                                  headers={"Idempotency-Key": key})
    show([row], GRANT_COLUMNS, as_json, f"Granted {row['amount']} {row['currency']} to {organisation} ({row['id']})")


@credits.command("top-up")
def credits_top_up(
    ctx: typer.Context,
    organisation: Organisation,
    amount_minor: AmountMinor,
    currency: Currency,
    priority: Priority = 0,
    expires_at: ExpiresAt = "",
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the top-up")] = "",
    as_json: JsonOption = False,
) -> None:
    """Issue a credit purchase invoice; the credit becomes available when the invoice is paid."""
    body = _body(amount_minor, currency, priority, expires_at)
    key = idempotency_key or _key("top-up", organisation, body)
    row = gateway_of(ctx).request("POST", f"{_path(organisation)}/top-ups", json=body,
                                  headers={"Idempotency-Key": key})
    invoice = row["invoice"]
    show([row] if as_json else [row["grant"]], GRANT_COLUMNS, as_json,
         f"Top-up of {row['grant']['amount']} {currency}: invoice {invoice['number']} ({invoice['id']}) issued; "
         "the credit is available once it is paid")


@credits.command("void")
def credits_void(
    ctx: typer.Context,
    grant_id: Annotated[str, typer.Argument(help="The grant's id")],
    organisation: Organisation,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log)")],
    as_json: JsonOption = False,
) -> None:
    """Withdraw what is left of a grant."""
    row = gateway_of(ctx).request("POST", f"{_path(organisation)}/grants/{grant_id}/void", json={"reason": reason})
    show([row], GRANT_COLUMNS, as_json, f"Grant {row['id']} voided")
