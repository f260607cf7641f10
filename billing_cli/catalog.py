"""billing plans | subscriptions | rates | quote: the catalog, who is on which plan, exchange rates, and pricing
a charge before putting it in a plan."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError, Gateway
from billing_cli.documents import canonical, load_document
from billing_cli.output import JsonOption, console, gateway_of, list_all, show

plans = typer.Typer(help="Plans: versioned price lists (base fee, a charge per metric, quotas).",
                    no_args_is_help=True)
subscriptions = typer.Typer(help="Subscriptions: an organisation on a plan from a date.", no_args_is_help=True)
rates = typer.Typer(help="Exchange rates used when an organisation is billed in another currency than the plan's.",
                    no_args_is_help=True)

Organisation = Annotated[str, typer.Option("--organisation", "--organisation-id", help="The organisation's id")]
File = Annotated[Path, typer.Argument(help="A JSON (or YAML) file", exists=True, dir_okay=False)]
PLAN_COLUMNS = ["id", "code", "name", "version", "currency", "base_fee", "charges", "created_at"]
VERSION_COLUMNS = ["id", "version", "plan_name", "currency", "base_fee", "charges", "created_at"]
CHARGE_COLUMNS = ["metric_code", "display_name", "model", "pricing", "gst_rate", "sac_code"]
SUBSCRIPTION_COLUMNS = ["id", "organisation_id", "state", "plan_version_id", "billing_anchor_day", "starts_at",
                        "cancel_at_period_end", "ends_at", "past_due_at"]
RATE_COLUMNS = ["id", "base_currency", "quote_currency", "rate", "source", "effective_at"]


def _key(kind: str, content: Any) -> str:
    """A default Idempotency-Key from the content: running the same command on the same file twice creates once."""
    return f"cli-{kind}-{hashlib.sha256(canonical(content).encode()).hexdigest()[:24]}"


def _base_fee_cell(terms: dict[str, Any]) -> str | None:
    """The monthly base fee, with the interval and timing when it is not billed monthly."""
    fee = terms.get("base_fee")
    interval = terms.get("billing_interval") or "month"
    if interval == "month":
        return fee
    return f"{fee or '0'}/month, per {interval} {(terms.get('base_fee_timing') or 'in_arrears').replace('_', ' ')}"


def _plan_row(plan: dict[str, Any]) -> dict[str, Any]:
    latest = plan.get("latest_version") or {}
    terms = latest.get("terms") or {}
    return {**plan, "version": latest.get("version"), "currency": terms.get("currency"),
            "base_fee": _base_fee_cell(terms), "charges": ", ".join(c["metric_code"] for c in terms.get("charges", []))}


def _version_row(version: dict[str, Any]) -> dict[str, Any]:
    terms = version["terms"]
    return {**version, "currency": terms["currency"], "base_fee": _base_fee_cell(terms),
            "charges": ", ".join(c["metric_code"] for c in terms.get("charges", []))}


def describe_base_fee(terms: dict[str, Any]) -> str:
    """How a plan's base fee recurs: ``INR 999 per period`` for a monthly plan, ``INR 10000 per month, billed per
    year in advance: 108000 a year (10% annual discount)`` for a yearly one."""
    fee = terms.get("base_fee") or "0"
    interval = terms.get("billing_interval") or "month"
    text = f"{terms['currency']} {fee} per period"
    if interval == "month":
        return text
    months = 3 if interval == "quarter" else 12
    discount = Decimal(terms.get("annual_discount_percent") or 0)
    whole = Decimal(fee) * months * (100 - discount) / 100
    timing = (terms.get("base_fee_timing") or "in_arrears").replace("_", " ")
    text = f"{terms['currency']} {fee} per month, billed per {interval} {timing}: {whole.normalize():f} a {interval}"
    return text + (f" ({discount.normalize():f}% annual discount)" if discount else "")


def describe_charge(charge: dict[str, Any]) -> str:
    """One line saying how a charge prices: ``0-1000 @ 0.10; 1000+ @ 0.05``."""
    model = charge["model"]
    parts: list[str] = []
    if model == "per_unit":
        parts.append(f"{charge.get('unit_price', '0')} per unit")
    elif model in ("graduated", "volume"):
        low = "0"
        for tier in charge.get("tiers", []):
            band = f"{low}-{tier['up_to']}" if tier.get("up_to") else f"{low}+"
            fee = f" + {tier['flat_fee']} flat" if tier.get("flat_fee") not in (None, "0") else ""
            parts.append(f"{band} @ {tier.get('unit_price') or '0'}{fee}")
            low = tier.get("up_to") or low
    elif model == "package":
        parts.append(f"{charge.get('package_price')} per {charge.get('package_size')} units "
                     f"(rounded {charge.get('package_rounding', 'up')})")
    elif model == "percentage":
        fee = f" + {charge['fixed_fee_per_event']} per event" if charge.get("fixed_fee_per_event") else ""
        parts.append(f"{charge.get('rate')}%{fee}")
    elif model == "flat":
        parts.append(f"{charge.get('flat_amount')} per period")
    for name, label in (("free_units", "free units"), ("free_events", "free events"), ("free_amount", "free amount"),
                        ("minimum_amount", "minimum"), ("maximum_amount", "maximum")):
        if charge.get(name) not in (None, "", 0):
            parts.append(f"{label} {charge[name]}")
    return "; ".join(parts)


def show_version(version: dict[str, Any], as_json: bool) -> None:
    """A plan version: its charges and quotas as tables."""
    if as_json:
        typer.echo(json.dumps(version, indent=2))
        return
    terms = version["terms"]
    title = (f"{version['plan_name']} ({version['plan_code']}) version {version['version']}, {version['id']}: "
             f"{describe_base_fee(terms)}, GST {terms.get('gst_rate') or '18'}%")
    rows = [{"metric_code": c["metric_code"], "display_name": c["display_name"], "model": c["charge"]["model"],
             "pricing": describe_charge(c["charge"]), "gst_rate": c.get("gst_rate") or "",
             "sac_code": c.get("sac_code") or ""} for c in terms.get("charges", [])]
    show(rows, CHARGE_COLUMNS, False, title)
    if terms.get("quotas"):
        enforced = "enforced at ingest" if terms.get("enforce_quotas_at_ingest") else "not enforced at ingest"
        show(terms["quotas"], ["metric_code", "limit", "cap", "grace_percent", "grace_hours"], False,
             f"Quotas per billing period ({enforced})")
    if terms.get("ingest_rate_limit"):
        rate = terms["ingest_rate_limit"]
        console.print(f"Ingest rate per project: {rate['events_per_second']:,} events/s, bursts of "
                      f"{rate['burst']:,}")
    if terms.get("entitlements"):
        rows = [{"feature": key, "value": value["number"] if isinstance(value, dict) else value}
                for key, value in terms["entitlements"].items()]
        show(rows, ["feature", "value"], False, "Entitlements")
    if terms.get("description"):
        console.print(terms["description"])


def plans_in(document: Any, path: Path) -> list[dict[str, Any]]:
    """The plans a file describes: a catalog ``{"plans": [...]}``, one plan ``{"code", "name", "terms"}``, or bare
    terms (``{"currency", ...}``: then code and name come from the options)."""
    if isinstance(document, dict) and isinstance(document.get("plans"), list):
        return document["plans"]
    if isinstance(document, dict) and "terms" in document:
        return [document]
    if isinstance(document, dict) and "currency" in document:
        return [{"terms": document}]
    raise CliError(f"{path}: expected plan terms ({{\"currency\", \"base_fee\", \"charges\" ...}}), a plan "
                   "({\"code\", \"name\", \"terms\"}) or a catalog ({\"plans\": [...]})")


def resolve_plan(gateway: Gateway, plan: str) -> dict[str, Any]:
    """A plan by code or by id."""
    found = gateway.request("GET", "/api/v1/admin/plans", params={"code": plan})["data"]
    if found:
        return found[0]
    return gateway.request("GET", f"/api/v1/admin/plans/{plan}")


@plans.command("create")
def plans_create(
    ctx: typer.Context,
    file: File,
    code: Annotated[str, typer.Option(help="The plan's code (when the file holds only terms)")] = "",
    name: Annotated[str, typer.Option(help="The plan's name (when the file holds only terms)")] = "",
    plan: Annotated[str, typer.Option(help="From a catalog file: only this plan's code")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the plan, so rerunning the same file "
                                                      "creates nothing twice")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create plans from a file: bare terms (with --code and --name), one plan, or a whole catalog such as
    docs/examples/catalog.json."""
    wanted = [p for p in plans_in(load_document(file), file) if not plan or p.get("code") == plan]
    if not wanted:
        raise CliError(f"{file} has no plan with code {plan!r}")
    gateway = gateway_of(ctx)
    created = []
    for entry in wanted:
        body = {"code": code or entry.get("code", ""), "name": name or entry.get("name", ""), "terms": entry["terms"]}
        if not body["code"] or not body["name"]:
            raise CliError("the plan needs a code and a name: give --code and --name, or put them in the file")
        key = idempotency_key if idempotency_key and len(wanted) == 1 else _key("plan", body)
        created.append(gateway.request("POST", "/api/v1/admin/plans", json=body, headers={"Idempotency-Key": key}))
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    show([_plan_row(p) for p in created], PLAN_COLUMNS, False, f"{len(created)} plan(s) created (or already there)")


@plans.command("list")
def plans_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List plans with their latest version, oldest first."""
    rows = list_all(gateway_of(ctx), "/api/v1/admin/plans", {})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show([_plan_row(p) for p in rows], PLAN_COLUMNS, False, f"{len(rows)} plan(s)")


@plans.command("show")
def plans_show(
    ctx: typer.Context,
    plan: Annotated[str, typer.Argument(help="The plan's code or id")],
    version: Annotated[int, typer.Option(help="This version instead of the latest")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Show a plan's terms: each charge in words, quotas, base fee and GST."""
    gateway = gateway_of(ctx)
    found = resolve_plan(gateway, plan)
    chosen = found["latest_version"]
    if version:
        versions = gateway.request("GET", f"/api/v1/admin/plans/{found['id']}/versions")["data"]
        matching = [v for v in versions if v["version"] == version]
        if not matching:
            raise CliError(f"plan {plan} has versions {[v['version'] for v in versions]}, not {version}")
        chosen = matching[0]
    show_version(chosen, as_json)


@plans.command("versions")
def plans_versions(
    ctx: typer.Context, plan: Annotated[str, typer.Argument(help="The plan's code or id")], as_json: JsonOption = False
) -> None:
    """List every version of a plan, oldest first."""
    gateway = gateway_of(ctx)
    found = resolve_plan(gateway, plan)
    rows = gateway.request("GET", f"/api/v1/admin/plans/{found['id']}/versions")["data"]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show([_version_row(v) for v in rows], VERSION_COLUMNS, False, f"{found['name']} ({found['code']})")


@plans.command("new-version")
def plans_new_version(
    ctx: typer.Context,
    plan: Annotated[str, typer.Argument(help="The plan's code or id")],
    file: File,
    reason: Annotated[str, typer.Option(help="Why the terms change (kept in the audit log)")],
    name: Annotated[str, typer.Option(help="A new display name for the plan")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the terms")] = "",
    as_json: JsonOption = False,
) -> None:
    """Edit a plan: the terms in the file become its next version. Subscriptions keep theirs until moved."""
    gateway = gateway_of(ctx)
    found = resolve_plan(gateway, plan)
    entries = [p for p in plans_in(load_document(file), file) if p.get("code") in (None, found["code"])]
    if len(entries) != 1:
        raise CliError(f"{file}: expected the terms of one plan (a catalog needs an entry with code "
                       f"{found['code']!r})")
    body = {"terms": entries[0]["terms"], "name": name, "reason": reason}
    key = idempotency_key or _key(f"version-{found['id']}", body)
    created = gateway.request("POST", f"/api/v1/admin/plans/{found['id']}/versions", json=body,
                              headers={"Idempotency-Key": key})
    show_version(created, as_json)


def _subscription_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "starts_at": row["phases"][0]["starts_at"] if row.get("phases") else None} for row in rows]


@subscriptions.command("create")
def subscriptions_create(
    ctx: typer.Context,
    organisation: Organisation,
    plan: Annotated[str, typer.Option(help="The plan's code (its latest version)")] = "",
    plan_version: Annotated[str, typer.Option(help="Or a plan version id")] = "",
    start_date: Annotated[str, typer.Option(help="YYYY-MM-DD in the organisation's zone; default today")] = "",
    anchor_day: Annotated[int, typer.Option(help="Day of the month periods start on (1..28)")] = 0,
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key")] = "",
    as_json: JsonOption = False,
) -> None:
    """Put an organisation on a plan."""
    if bool(plan) == bool(plan_version):
        raise CliError("give one of --plan (a code) or --plan-version (an id)")
    body: dict[str, Any] = {"organisation_id": organisation, "plan_code": plan, "plan_version_id": plan_version,
                            "billing_anchor_day": anchor_day}
    if start_date:
        body["start_date"] = start_date
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    created = gateway_of(ctx).request("POST", "/api/v1/admin/subscriptions", json=body, headers=headers)
    show(_subscription_rows([created]), SUBSCRIPTION_COLUMNS, as_json, "Subscription created")


@subscriptions.command("list")
def subscriptions_list(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="Only this organisation's")] = "",
    as_json: JsonOption = False,
) -> None:
    """List subscriptions, oldest first."""
    rows = list_all(gateway_of(ctx), "/api/v1/admin/subscriptions", {"organisation_id": organisation})
    show(rows if as_json else _subscription_rows(rows), SUBSCRIPTION_COLUMNS, as_json,
         f"{len(rows)} subscription(s)")


@subscriptions.command("change-plan")
def subscriptions_change_plan(
    ctx: typer.Context,
    subscription_id: str,
    plan: Annotated[str, typer.Option(help="The plan's code (its latest version)")] = "",
    plan_version: Annotated[str, typer.Option(help="Or a plan version id")] = "",
    effective_date: Annotated[str, typer.Option(help="YYYY-MM-DD, from the start of that day; default today")] = "",
    as_json: JsonOption = False,
) -> None:
    """Move a subscription to another plan: the base fee is prorated by days, usage priced on the plan in force."""
    if bool(plan) == bool(plan_version):
        raise CliError("give one of --plan (a code) or --plan-version (an id)")
    body: dict[str, Any] = {"plan_code": plan, "plan_version_id": plan_version}
    if effective_date:
        body["effective_date"] = effective_date
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/subscriptions/{subscription_id}/change-plan", json=body)
    show(_subscription_rows([row]), SUBSCRIPTION_COLUMNS, as_json, "Subscription")


@subscriptions.command("cancel")
def subscriptions_cancel(
    ctx: typer.Context,
    subscription_id: str,
    now: Annotated[bool, typer.Option("--now", help="End it now instead of at the end of the period")] = False,
    as_json: JsonOption = False,
) -> None:
    """Cancel a subscription at the end of its current billing period (or --now)."""
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/subscriptions/{subscription_id}/cancel",
                                  json={"at_period_end": not now})
    show(_subscription_rows([row]), SUBSCRIPTION_COLUMNS, as_json, "Subscription cancelled")


@rates.command("add")
def rates_add(
    ctx: typer.Context,
    base: Annotated[str, typer.Option(help="1 unit of this currency ...")],
    quote: Annotated[str, typer.Option(help="... is --rate units of this one")],
    rate: Annotated[str, typer.Option(help="A decimal, e.g. 84.50")],
    source: Annotated[str, typer.Option(help="Where the rate came from")] = "",
    effective_at: Annotated[str, typer.Option(help="RFC 3339 time it takes effect; default now")] = "",
    as_json: JsonOption = False,
) -> None:
    """Record an exchange rate (1 BASE = RATE QUOTE)."""
    body = {"base_currency": base, "quote_currency": quote, "rate": rate, "source": source}
    if effective_at:
        body["effective_at"] = effective_at
    row = gateway_of(ctx).request("POST", "/api/v1/admin/exchange-rates", json=body)
    show([row], RATE_COLUMNS, as_json, "Exchange rate recorded")


@rates.command("list")
def rates_list(
    ctx: typer.Context,
    base: Annotated[str, typer.Option(help="Only this base currency (with --quote)")] = "",
    quote: Annotated[str, typer.Option(help="Only this quote currency")] = "",
    as_json: JsonOption = False,
) -> None:
    """List exchange rates, newest effective first."""
    rows = gateway_of(ctx).request("GET", "/api/v1/admin/exchange-rates",
                                   params={"base_currency": base, "quote_currency": quote})["data"]
    show(rows, RATE_COLUMNS, as_json, f"{len(rows)} exchange rate(s)")


def quote(
    ctx: typer.Context,
    currency: Annotated[str, typer.Option(help="The charge's currency, e.g. INR")],
    charge: Annotated[Path, typer.Option(help="A JSON (or YAML) file with the charge, e.g. "
                                              "{\"model\": \"graduated\", \"tiers\": [...]}", exists=True,
                                         dir_okay=False)],
    quantity: Annotated[str, typer.Option(help="Units of usage, a decimal")] = "0",
    event_amount: Annotated[list[str] | None, typer.Option(help="For percentage: an event's amount (repeatable)")]
    = None,
    percent_off: Annotated[str, typer.Option(help="A discount to quote, as a coupon takes it: a percentage")] = "",
    amount_off: Annotated[str, typer.Option(help="... or an amount in --currency")] = "",
    as_json: JsonOption = False,
) -> None:
    """Price a charge for a quantity: the amount with a per-tier breakdown and the rounded lines (and what a
    coupon's discount would take off)."""
    definition = load_document(charge)
    if isinstance(definition, dict) and "charge" in definition and "model" not in definition:
        definition = definition["charge"]  # a plan charge ({"metric_code", "charge"}) works too
    body = {"currency": currency, "charge": definition, "quantity": quantity, "event_amounts": event_amount or []}
    body |= {key: value for key, value in (("percent_off", percent_off), ("amount_off", amount_off)) if value}
    result = gateway_of(ctx).request("POST", "/api/v1/pricing/quote", json=body)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    show(result["breakdown"], ["description", "quantity", "unit_price", "flat_fee", "amount"], False,
         f"{quantity} units ({result['billable_quantity']} billable): {result['amount']} {currency} unrounded")
    lines = [{"line": "usage", "amount": result["usage"]}]
    for name in ("minimum_spend", "maximum_cap"):
        if result[f"{name}_minor"]:
            lines.append({"line": name.replace("_", " "), "amount": result[name]})
    lines.append({"line": "total", "amount": result["total"]})
    if result["discount_minor"]:
        lines += [{"line": "discount", "amount": f"-{result['discount']}"},
                  {"line": "total after discount (before tax)", "amount": result["discounted_total"]}]
    show(lines, ["line", "amount"], False, f"Invoice lines ({currency}, rounded half-up once per line)")
