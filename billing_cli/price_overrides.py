"""billing price-overrides: an organisation's own prices on a plan (base fee, a charge's price model), versioned."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from billing_cli.catalog import describe_charge
from billing_cli.connection import CliError
from billing_cli.documents import canonical
from billing_cli.output import JsonOption, gateway_of, show

price_overrides = typer.Typer(help="Price overrides: an organisation's own base fee or charge prices on a plan, "
                                   "without copying the plan; each change is a new version from a date.",
                              no_args_is_help=True)

Organisation = Annotated[str, typer.Option("--organisation", "--organisation-id", help="The organisation's id")]
EffectiveDate = Annotated[str, typer.Option(help="YYYY-MM-DD in the organisation's time zone; default today")]
COLUMNS = ["plan_code", "version", "effective_at", "base_fee", "charges", "created_at"]


def override_row(override: dict[str, Any]) -> dict[str, Any]:
    charges = "; ".join(f"{c['metric_code']}: {describe_charge(c['charge'])}" for c in override["charges"])
    return {**override, "base_fee": "plan's" if override["base_fee"] is None else override["base_fee"],
            "charges": "cleared: the plan's prices" if override["cleared"] else charges or "plan's"}


def _charge(text: str) -> dict[str, Any]:
    metric, sep, definition = text.partition("=")
    if not sep or not metric.strip():
        raise CliError(f"--charge {text[:60]!r}: expected METRIC=JSON, e.g. "
                       "api_calls='{\"model\": \"per_unit\", \"unit_price\": \"0.02\"}'")
    try:
        charge = json.loads(definition)
    except ValueError as error:
        raise CliError(f"--charge {metric.strip()}: the price model is not JSON ({error.msg})") from None
    return {"metric_code": metric.strip(), "charge": charge}


@price_overrides.command("set")
def price_overrides_set(
    ctx: typer.Context,
    organisation: Organisation,
    plan: Annotated[str, typer.Option(help="The plan's code")],
    base_fee: Annotated[str, typer.Option(help="The organisation's base fee per period; default the plan's")] = "",
    charge: Annotated[list[str] | None, typer.Option(help="METRIC=JSON price model for one of the plan's charges "
                                                          "(repeatable)")] = None,
    file: Annotated[Path | None, typer.Option(help="A JSON file with base_fee and charges ([{metric_code, "
                                                   "charge}]), instead of the options")] = None,
    effective_date: EffectiveDate = "",
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the request, so running the same "
                                                      "command twice makes one version")] = "",
    as_json: JsonOption = False,
) -> None:
    """Give an organisation its own prices on a plan from a date: a new version (older ones are kept). Invoicing
    checks each price as a plan's charge and names the field at fault."""
    body: dict[str, Any] = {}
    if file is not None:
        try:
            body = json.loads(file.read_text())
        except (OSError, ValueError) as error:
            raise CliError(f"{file}: not a readable JSON file ({error})") from None
        if not isinstance(body, dict):
            raise CliError(f"{file}: expected an object with base_fee and charges")
    if base_fee:
        body["base_fee"] = base_fee
    if charge:
        body["charges"] = [*body.get("charges", []), *(_charge(c) for c in charge)]
    if effective_date:
        body["effective_date"] = effective_date
    request = {"organisation": organisation, "plan": plan, **body}
    key = idempotency_key or f"cli-po-{hashlib.sha256(canonical(request).encode()).hexdigest()[:24]}"
    row = gateway_of(ctx).request("PUT", f"/api/v1/admin/organisations/{organisation}/price-overrides/{plan}",
                                  json=body, headers={"Idempotency-Key": key})
    show([row] if as_json else [override_row(row)], COLUMNS, as_json,
         f"Price override v{row['version']} of {organisation} on {row['plan_code']} from {row['effective_at']}")


@price_overrides.command("list")
def price_overrides_list(
    ctx: typer.Context,
    organisation: Organisation,
    plan: Annotated[str, typer.Option(help="Only this plan's versions")] = "",
    as_json: JsonOption = False,
) -> None:
    """Every version of the organisation's price overrides, by plan and version: each is in force from its
    effective_at until the next one's."""
    params = {"plan_code": plan} if plan else {}
    rows = gateway_of(ctx).request("GET", f"/api/v1/admin/organisations/{organisation}/price-overrides",
                                   params=params)["data"]
    show(rows if as_json else [override_row(r) for r in rows], COLUMNS, as_json,
         f"{len(rows)} price override version(s) of {organisation}")


@price_overrides.command("clear")
def price_overrides_clear(
    ctx: typer.Context,
    organisation: Organisation,
    plan: Annotated[str, typer.Option(help="The plan's code")],
    effective_date: EffectiveDate = "",
    as_json: JsonOption = False,
) -> None:
    """The plan's own prices again from a date: a version without prices (older ones are kept)."""
    params = {"effective_date": effective_date} if effective_date else {}
    row = gateway_of(ctx).request("DELETE", f"/api/v1/admin/organisations/{organisation}/price-overrides/{plan}",
                                  params=params)
    if row is None:
        typer.echo(f"{organisation} has no price override on {plan}: nothing to clear")
        return
    show([row] if as_json else [override_row(row)], COLUMNS, as_json,
         f"Price override of {organisation} on {row['plan_code']} cleared from {row['effective_at']} "
         f"(v{row['version']})")
