"""billing alerts | quota | entitlements: alert rules and what they fired, quota checks, and what a plan grants."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, gateway_of, list_all, show

alerts = typer.Typer(help="Alert rules on usage and cost, and the alerts they fired.", no_args_is_help=True)
quota = typer.Typer(help="Quota checks: may an organisation use more of a metric now?", no_args_is_help=True)
entitlements = typer.Typer(help="What an organisation's plan grants, and its overrides.", no_args_is_help=True)

Organisation = Annotated[str, typer.Option("--organisation", "--organisation-id", help="The organisation's id")]
RULE_COLUMNS = ["id", "kind", "name", "metric_code", "project_id", "basis", "levels", "budget", "currency",
                "cost_basis", "created_at", "deleted_at"]
FIRED_COLUMNS = ["fired_at", "rule_name", "kind", "metric_code", "level", "threshold", "value", "event_id",
                 "period_start", "period_end"]
QUOTA_COLUMNS = ["metric", "allowed", "reason", "used", "limit", "remaining", "cap", "resets_at", "message"]
ENTITLEMENT_COLUMNS = ["feature", "value", "type", "source"]


@alerts.command("create")
def alerts_create(
    ctx: typer.Context,
    organisation: Organisation,
    kind: Annotated[str, typer.Option(help="threshold, spike, cost or credit_balance")],
    metric: Annotated[str, typer.Option(help="threshold and spike: the metric's code")] = "",
    level: Annotated[list[str] | None, typer.Option(
        help="threshold: a usage amount, or a percent of the quota with --of-quota; cost: a percent of the budget "
             "(repeatable, e.g. --level 80 --level 100)")] = None,
    of_quota: Annotated[bool, typer.Option("--of-quota", help="threshold: levels are percents of the plan's quota")
                        ] = False,
    window: Annotated[int, typer.Option(help="spike: the window in seconds, e.g. 3600")] = 0,
    baseline: Annotated[int, typer.Option(help="spike: the trailing span in seconds, e.g. 604800")] = 0,
    factor: Annotated[str, typer.Option(help="spike: times the trailing average, e.g. 3")] = "",
    min_volume: Annotated[str, typer.Option(help="spike: nothing fires below this usage in the window")] = "",
    budget: Annotated[str, typer.Option(help="cost: per billing period, in the organisation's currency")] = "",
    forecast: Annotated[bool, typer.Option(
        "--forecast", help="cost: compare the budget with the forecast of the period's end, not the invoice so far")
                        ] = False,
    below_minor: Annotated[int, typer.Option(help="credit_balance: fire when the prepaid credit balance is below "
                                                  "this many minor units")] = 0,
    project: Annotated[str, typer.Option(help="Only this project's usage")] = "",
    name: Annotated[str, typer.Option(help="A name people recognise in the email")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key: the same key returns the same result")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create an alert rule. Each level fires once per period, as events are metered, by email and webhook."""
    body: dict[str, Any] = {"organisation_id": organisation, "kind": kind, "name": name, "project_id": project,
                            "metric_code": metric, "levels": level or []}
    if kind == "threshold":
        body["basis"] = "quota_percent" if of_quota else "absolute"
    elif of_quota:
        raise CliError("--of-quota applies to threshold rules only")
    if forecast:
        if kind != "cost":
            raise CliError("--forecast applies to cost rules only")
        body["cost_basis"] = "forecast"
    body.update({key: value for key, value in (("window_seconds", window), ("baseline_seconds", baseline),
                                               ("factor", factor), ("min_volume", min_volume),
                                               ("budget", budget), ("credit_threshold_minor", below_minor))
                 if value})
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    created = gateway_of(ctx).request("POST", "/api/v1/admin/alert-rules", json=body, headers=headers)
    show([created], RULE_COLUMNS, as_json, "Alert rule created")


@alerts.command("list")
def alerts_list(
    ctx: typer.Context,
    organisation: Organisation,
    include_deleted: Annotated[bool, typer.Option(help="List deleted rules too")] = False,
    as_json: JsonOption = False,
) -> None:
    """An organisation's alert rules, oldest first."""
    rows = list_all(gateway_of(ctx), "/api/v1/admin/alert-rules",
                    {"organisation_id": organisation, "include_deleted": str(include_deleted).lower()})
    show(rows, RULE_COLUMNS, as_json, f"{len(rows)} alert rule(s)")


@alerts.command("delete")
def alerts_delete(ctx: typer.Context, rule_id: str, as_json: JsonOption = False) -> None:
    """Stop a rule; what it fired stays in the history."""
    row = gateway_of(ctx).request("DELETE", f"/api/v1/admin/alert-rules/{rule_id}")
    show([row], RULE_COLUMNS, as_json, "Alert rule deleted")


@alerts.command("history")
def alerts_history(
    ctx: typer.Context,
    organisation: Organisation,
    rule: Annotated[str, typer.Option(help="Only this rule's alerts")] = "",
    as_json: JsonOption = False,
) -> None:
    """Alerts fired, newest first: the level, the value and the event that reached it."""
    rows = list_all(gateway_of(ctx), "/api/v1/admin/fired-alerts", {"organisation_id": organisation, "rule_id": rule})
    show(rows, FIRED_COLUMNS, as_json, f"{len(rows)} alert(s) fired")


@quota.command("check")
def quota_check(
    ctx: typer.Context,
    organisation: Organisation,
    metric: Annotated[str, typer.Option(help="The metric's code")],
    quantity: Annotated[str, typer.Option(help="How much is about to be used")] = "1",
    as_json: JsonOption = False,
) -> None:
    """Allowed or denied, with used, limit, remaining, when the quota resets and why. Exits 3 when denied."""
    status = gateway_of(ctx).request("GET", "/api/v1/admin/quota", params={
        "organisation_id": organisation, "metric": metric, "quantity": quantity})
    show([status], QUOTA_COLUMNS, as_json, "Allowed" if status["allowed"] else "Denied")
    if not status["allowed"]:
        raise typer.Exit(3)


@entitlements.command("show")
def entitlements_show(
    ctx: typer.Context,
    organisation: Organisation,
    feature: Annotated[str, typer.Option(help="Only this feature")] = "",
    as_json: JsonOption = False,
) -> None:
    """The features the organisation's plan grants, with its overrides applied."""
    answer = gateway_of(ctx).request("GET", "/api/v1/admin/entitlements",
                                     params={"organisation_id": organisation, "feature": feature})
    if as_json:
        show([answer], [], True, "")
        return
    plan = f"plan {answer['plan_code']} (v{answer['plan_version']})" if answer["subscription_found"] else \
        "no subscription in force"
    show(answer["entitlements"], ENTITLEMENT_COLUMNS, False, f"Entitlements of {organisation}: {plan}")


def _override_value(value: str) -> Any:
    """``true``/``false``, a number (sent exactly, as {"number": ...}), or a word."""
    if value in ("true", "false"):
        return value == "true"
    try:
        Decimal(value)
    except InvalidOperation:
        return value
    return {"number": value}


@entitlements.command("set")
def entitlements_set(
    ctx: typer.Context,
    organisation: Organisation,
    feature: Annotated[str, typer.Argument(help="The feature's key, e.g. sso or seats")],
    value: Annotated[str, typer.Argument(help="true, false, a number (25) or a word (priority)")],
    as_json: JsonOption = False,
) -> None:
    """Grant the organisation a feature value over its plan's (or one its plan lacks)."""
    answer = gateway_of(ctx).request("PUT", f"/api/v1/admin/organisations/{organisation}/entitlement-overrides/"
                                            f"{feature}", json={"value": _override_value(value)})
    _show_overrides(answer, as_json)


@entitlements.command("unset")
def entitlements_unset(
    ctx: typer.Context,
    organisation: Organisation,
    feature: Annotated[str, typer.Argument(help="The feature's key")],
    as_json: JsonOption = False,
) -> None:
    """Remove an override: the plan's value applies again."""
    answer = gateway_of(ctx).request("DELETE", f"/api/v1/admin/organisations/{organisation}/entitlement-overrides/"
                                               f"{feature}")
    _show_overrides(answer, as_json)


def _show_overrides(answer: dict[str, Any], as_json: bool) -> None:
    rows = [{"feature": feature, "value": value["number"] if isinstance(value, dict) else value}
            for feature, value in sorted(answer["overrides"].items())]
    show(rows if not as_json else [answer], ["feature", "value"], as_json,
         f"{len(rows)} override(s) for {answer['organisation_id']}")
