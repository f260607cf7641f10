"""billing coupons: create coupons, list them, apply them to organisations and take them off again."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.documents import canonical
from billing_cli.output import JsonOption, gateway_of, list_all, show

coupons = typer.Typer(help="Coupons: a percentage or an amount off invoices before tax, once, for N periods or "
                           "forever, applied to organisations.", no_args_is_help=True)

Organisation = Annotated[str, typer.Option("--organisation", "--organisation-id", help="The organisation's id")]
COUPON_COLUMNS = ["id", "code", "name", "discount", "duration", "plan_codes", "redemptions", "expires_at",
                  "archived_at"]
REDEMPTION_COLUMNS = ["id", "coupon", "discount", "state", "start_period_key", "used_period_keys", "remaining",
                      "applied_at", "removed_at"]


def _discount(coupon: dict[str, Any]) -> str:
    if coupon.get("percent_off"):
        return f"{coupon['percent_off']}% off"
    return f"{coupon['amount_off']} {coupon['currency']} off"


def _duration(coupon: dict[str, Any]) -> str:
    if coupon["duration"] == "repeating":
        return f"{coupon['duration_periods']} periods"
    return coupon["duration"] or ""


def coupon_row(coupon: dict[str, Any]) -> dict[str, Any]:
    limit = coupon.get("max_redemptions")
    redeemed = coupon["times_redeemed"]
    return {**coupon, "discount": _discount(coupon), "duration": _duration(coupon),
            "plan_codes": ", ".join(coupon["plan_codes"]) or "all plans",
            "redemptions": f"{redeemed} of {limit}" if limit else str(redeemed)}


def redemption_row(redemption: dict[str, Any]) -> dict[str, Any]:
    coupon = redemption["coupon"] or {}
    remaining = redemption["periods_remaining"]
    return {**redemption, "coupon": coupon.get("code", ""), "discount": _discount(coupon) if coupon else "",
            "remaining": "no end" if remaining is None else remaining}


@coupons.command("create")
def coupons_create(
    ctx: typer.Context,
    code: Annotated[str, typer.Option(help="What customers and staff type, e.g. LAUNCH20")],
    name: Annotated[str, typer.Option(help="Printed on the invoice's discount line")],
    duration: Annotated[str, typer.Option(help="once, repeating or forever")],
    percent_off: Annotated[str, typer.Option(help="A percentage, e.g. 20 (or give --amount-off)")] = "",
    amount_off: Annotated[str, typer.Option(help="A fixed amount, with --currency")] = "",
    currency: Annotated[str, typer.Option(help="The currency of --amount-off")] = "",
    periods: Annotated[int, typer.Option(help="For repeating: how many invoices it discounts")] = 0,
    plan: Annotated[list[str] | None, typer.Option(help="Only this plan's lines (repeatable); default all")] = None,
    max_redemptions: Annotated[int, typer.Option(help="How many organisations may apply it; 0: no limit")] = 0,
    expires_at: Annotated[str, typer.Option(help="RFC 3339 time after which it can no longer be applied")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the coupon, so running the same "
                                                      "command twice creates it once")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a coupon. Invoicing checks the terms and names the option at fault."""
    body: dict[str, Any] = {"code": code, "name": name, "duration": duration, "plan_codes": plan or []}
    for key, value in (("percent_off", percent_off), ("amount_off", amount_off), ("currency", currency),
                       ("duration_periods", periods), ("max_redemptions", max_redemptions),
                       ("expires_at", expires_at)):
        if value:
            body[key] = value
    key = idempotency_key or f"cli-coupon-{hashlib.sha256(canonical(body).encode()).hexdigest()[:24]}"
    created = gateway_of(ctx).request("POST", "/api/v1/admin/coupons", json=body, headers={"Idempotency-Key": key})
    show([created] if as_json else [coupon_row(created)], COUPON_COLUMNS, as_json,
         f"Coupon {created['code']} ({created['id']})")


@coupons.command("list")
def coupons_list(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="This organisation's coupons instead of every coupon")] = "",
    as_json: JsonOption = False,
) -> None:
    """List coupons, oldest first; with --organisation, the coupons that organisation has had and the periods each
    was used for."""
    gateway = gateway_of(ctx)
    if organisation:
        rows = gateway.request("GET", f"/api/v1/admin/organisations/{organisation}/coupons")["data"]
        show(rows if as_json else [redemption_row(r) for r in rows], REDEMPTION_COLUMNS, as_json,
             f"{len(rows)} coupon(s) of {organisation}")
        return
    rows = list_all(gateway, "/api/v1/admin/coupons", {})
    show(rows if as_json else [coupon_row(c) for c in rows], COUPON_COLUMNS, as_json, f"{len(rows)} coupon(s)")


@coupons.command("apply")
def coupons_apply(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The coupon's code")],
    organisation: Organisation,
    start_period: Annotated[str, typer.Option(help="YYYY-MM: the first period it discounts; default the "
                                                   "organisation's current one")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key")] = "",
    as_json: JsonOption = False,
) -> None:
    """Apply a coupon to an organisation: its invoices from the start period on get a discount line before tax."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/organisations/{organisation}/coupons",
                                  json={"coupon_code": code, "start_period_key": start_period}, headers=headers)
    show([row] if as_json else [redemption_row(row)], REDEMPTION_COLUMNS, as_json,
         f"Coupon {row['coupon']['code']} applied to {organisation} from {row['start_period_key']}")


@coupons.command("remove")
def coupons_remove(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The coupon's code")],
    organisation: Organisation,
    as_json: JsonOption = False,
) -> None:
    """Take a coupon off an organisation: invoices from now on are not discounted by it (issued ones keep theirs)."""
    gateway = gateway_of(ctx)
    path = f"/api/v1/admin/organisations/{organisation}/coupons"
    held = [r for r in gateway.request("GET", path)["data"]
            if r["state"] != "removed" and (r["coupon"] or {}).get("code", "").upper() == code.strip().upper()]
    if not held:
        raise CliError(f"organisation {organisation} has no coupon {code.strip().upper()} to remove "
                       f"(billing coupons list --organisation {organisation})")
    row = gateway.request("DELETE", f"{path}/{held[0]['id']}")
    show([row] if as_json else [redemption_row(row)], REDEMPTION_COLUMNS, as_json,
         f"Coupon {row['coupon']['code']} removed from {organisation}")


@coupons.command("archive")
def coupons_archive(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The coupon's code")],
    as_json: JsonOption = False,
) -> None:
    """Archive a coupon: it can no longer be applied; organisations that have it keep it."""
    gateway = gateway_of(ctx)
    found = gateway.request("GET", "/api/v1/admin/coupons", params={"code": code})["data"]
    if not found:
        raise CliError(f"no coupon with code {code.strip().upper()}")
    row = gateway.request("POST", f"/api/v1/admin/coupons/{found[0]['id']}/archive")
    show([row] if as_json else [coupon_row(row)], COUPON_COLUMNS, as_json, f"Coupon {row['code']} archived")
