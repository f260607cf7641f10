"""billing metrics | usage | events: define metrics, read usage, and send a test event through the REST API."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, console, gateway_of, list_all, show

metrics = typer.Typer(help="Billable metrics: what events add up to, per organisation.", no_args_is_help=True)
events = typer.Typer(help="Usage events, sent with a project's API key.", no_args_is_help=True)

Organisation = Annotated[str, typer.Option("--organisation", "--organisation-id", help="The organisation's id")]
METRIC_COLUMNS = ["id", "code", "name", "unit", "aggregation", "unique_dimension", "filters", "state", "created_at"]
OBSERVED_COLUMNS = ["code", "event_count", "defined", "metric_id", "first_event_at", "last_event_at"]


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise CliError(f"{option} takes key=value, not {value!r}")
        pairs.append((key, rest))
    return pairs


@metrics.command("create")
def metrics_create(
    ctx: typer.Context,
    organisation: Organisation,
    code: Annotated[str, typer.Option(help="What events carry as metricName, e.g. api_calls")],
    aggregation: Annotated[str, typer.Option(
        help="sum, count, max, min, unique_count, latest or weighted_sum (a gauge in value-hours: GB -> GB-hours)")],
    name: Annotated[str, typer.Option(help="Human name; the code if not given")] = "",
    unit: Annotated[str, typer.Option(help="e.g. requests, tokens, GB")] = "",
    unique_dimension: Annotated[str, typer.Option(help="For unique_count: the metadata key counted")] = "",
    filter_: Annotated[list[str] | None, typer.Option(
        "--filter", help="key=value1,value2: only events with one of the values count (repeatable)")] = None,
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key: the same key returns the same result")] = "",
    as_json: JsonOption = False,
) -> None:
    """Define a billable metric. Events already received for its code count at once."""
    filters: dict[str, list[str]] = {}
    for key, values in _pairs(filter_ or [], "--filter"):
        filters.setdefault(key, []).extend(v for v in values.split(",") if v)
    body = {"organisation_id": organisation, "code": code, "name": name or code, "unit": unit,
            "aggregation": aggregation, "unique_dimension": unique_dimension, "filters": filters}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    created = gateway_of(ctx).request("POST", "/api/v1/admin/metrics", json=body, headers=headers)
    show([created], METRIC_COLUMNS, as_json, "Metric created")


@metrics.command("list")
def metrics_list(
    ctx: typer.Context,
    organisation: Organisation,
    include_archived: Annotated[bool, typer.Option(help="List archived metrics too")] = False,
    as_json: JsonOption = False,
) -> None:
    """List an organisation's metrics, oldest first."""
    rows = list_all(gateway_of(ctx), "/api/v1/admin/metrics",
                    {"organisation_id": organisation, "include_archived": str(include_archived).lower()})
    show(rows, METRIC_COLUMNS, as_json, f"{len(rows)} metric(s)")


@metrics.command("archive")
def metrics_archive(ctx: typer.Context, metric_id: str, as_json: JsonOption = False) -> None:
    """Archive a metric: its code is free again; its events are kept."""
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/metrics/{metric_id}/archive")
    show([row], METRIC_COLUMNS, as_json, "Metric archived")


@metrics.command("observed")
def metrics_observed(ctx: typer.Context, organisation: Organisation, as_json: JsonOption = False) -> None:
    """Every metric code events arrived for, with counts, and whether a metric counts them."""
    rows = gateway_of(ctx).request("GET", "/api/v1/admin/metrics/observed",
                                   params={"organisation_id": organisation})
    show(rows, OBSERVED_COLUMNS, as_json, f"{len(rows)} observed metric code(s)")
    undefined = [row["code"] for row in rows if not row["defined"]]
    if undefined and not as_json:
        console.print(f"Events are kept for codes no metric defines yet: {', '.join(undefined)}. "
                      "`billing metrics create --code ...` counts them.")


def _local(moment: str, zone: ZoneInfo, window: str) -> str:
    when = datetime.fromisoformat(moment).astimezone(zone)
    return when.strftime("%Y-%m-%d" if window in ("day", "month") and not when.hour and not when.minute
                         else "%Y-%m-%d %H:%M")


def usage(
    ctx: typer.Context,
    metric: Annotated[str, typer.Argument(help="The metric's code, e.g. api_calls")],
    organisation: Organisation,
    project: Annotated[str, typer.Option("--project", "--project-id", help="Only this project's events")] = "",
    from_: Annotated[str, typer.Option("--from", help="Start, e.g. 2025-03-01 (read in --time-zone); "
                                                      "default 30 days ago")] = "",
    to: Annotated[str, typer.Option(help="End (exclusive); default now")] = "",
    window: Annotated[str, typer.Option(help="hour, day, month or whole")] = "whole",
    time_zone: Annotated[str, typer.Option(help="IANA zone windows start in, e.g. Asia/Kolkata")] = "UTC",
    group_by: Annotated[str, typer.Option(help="A metadata key to group by, e.g. model")] = "",
    as_json: JsonOption = False,
) -> None:
    """Show a metric's usage for an organisation (or one project) in windows, optionally grouped."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"--time-zone {time_zone!r} is not an IANA time zone such as Asia/Kolkata") from None
    params = {"organisation_id": organisation, "project_id": project, "metric": metric, "window": window,
              "time_zone": time_zone, "group_by": group_by}
    params.update({name: value for name, value in (("from", from_), ("to", to)) if value})
    body = gateway_of(ctx).request("GET", "/api/v1/admin/usage", params=params)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    found = body["metric"]
    rows = [{**row, "start": _local(row["start"], zone, window), "end": _local(row["end"], zone, window)}
            for row in body["rows"]]
    columns = ["start", "end", *(["group_value"] if group_by else []), "value", "event_count"]
    unit = found["unit"]
    if found["aggregation"] == "weighted_sum":  # a gauge's usage is its value held over time
        unit = f"{unit}-hours" if unit else "value-hours"
    unit = f" {unit}" if unit else ""
    title = (f"{found['code']} ({found['aggregation']}{unit}) for {organisation}"
             f"{' / ' + project if project else ''}, {_local(body['start'], zone, 'hour')} to "
             f"{_local(body['end'], zone, 'hour')} {time_zone}")
    show(rows, columns, False, title)
    if not rows:
        console.print("No usage in this range.")


@events.command("send")
def events_send(
    ctx: typer.Context,
    metric: Annotated[str, typer.Option(help="The metric's code, e.g. api_calls")],
    value: Annotated[str, typer.Option(help="A decimal number, e.g. 1 or 0.25")],
    api_key: Annotated[str, typer.Option(help="The project's API key; default BILLING_API_KEY, else the demo "
                                              "key in .run/endpoints.json")] = "",
    dimension: Annotated[list[str] | None, typer.Option(help="key=value metadata (repeatable)")] = None,
    event_id: Annotated[str, typer.Option(help="Idempotency key: resending the same id counts once; "
                                               "generated if not given")] = "",
    timestamp: Annotated[str, typer.Option(help="RFC 3339 time it happened; default now")] = "",
    unit: Annotated[str, typer.Option(help="Informational unit")] = "",
    as_json: JsonOption = False,
) -> None:
    """Send one usage event through POST /api/v1/events, as a client would."""
    gateway = gateway_of(ctx, admin=False)
    key = api_key or os.environ.get("BILLING_API_KEY", "") or gateway.demo_api_key
    if not key:
        raise CliError("no API key: pass --api-key (or BILLING_API_KEY); `billing api-keys create` mints one")
    event: dict[str, Any] = {"metricName": metric, "metricValue": value}
    for name, text in (("idempotencyKey", event_id), ("timestamp", timestamp), ("unit", unit)):
        if text:
            event[name] = text
    if dimension:
        event["metadata"] = dict(_pairs(dimension, "--dimension"))
    body = gateway.request("POST", "/api/v1/events", json=event, headers={"Authorization": f"Bearer {key}"})
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    show(body["results"], ["index", "eventId", "status", "reason", "field"], False,
         f"accepted {body['accepted']}, duplicates {body['duplicates']}, rejected {body['rejected']}")
    if body["rejected"]:
        raise typer.Exit(1)
