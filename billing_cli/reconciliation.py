"""billing reconciliation: compare our payments and refunds with Razorpay's, and work through what differs.

``billing reconciliation run`` exits 1 when it found discrepancies (or could not read the provider), so a cron job
running it notices; it prints ``clean: no discrepancies`` otherwise.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, console, gateway_of, list_all, show

reconciliation = typer.Typer(help="Reconciliation: our payments and refunds against the provider's.",
                             no_args_is_help=True)

RUN_COLUMNS = ["id", "state", "trigger", "start_time", "end_time", "payments_checked", "refunds_checked",
               "discrepancy_count", "created_at"]
# A run's own discrepancies need no run id beside them: the run is in the line above the table.
FOUND_COLUMNS = ["id", "kind", "object_type", "provider_id", "our_id", "detail"]
DISCREPANCY_COLUMNS = [*FOUND_COLUMNS, "run_id"]
RESOLVED_COLUMNS = [*DISCREPANCY_COLUMNS, "resolved", "resolution"]
# The gateway waits 120 s for a run; a little more here, so its answer (even a 503) arrives rather than ours.
RUN_TIMEOUT_SECONDS = 150.0


def _moment(text: str, option: str) -> datetime:
    """ISO 8601 (a date, or a time with or without a zone); UTC when it has no zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} must be ISO 8601, such as 2026-11-04 or 2026-11-04T00:00:00+05:30; not "
                       f"{text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window(start: str, end: str, now: datetime) -> tuple[datetime, datetime]:
    """The window given, or yesterday in UTC (the day whose payments the provider has settled)."""
    if bool(start) != bool(end):
        raise CliError("give --from and --to together (or neither: yesterday, UTC)")
    if start:
        return _moment(start, "--from"), _moment(end, "--to")
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today


def _run_title(run: dict[str, Any]) -> str:
    return (f"Reconciliation run {run['id']} of {run['start_time']} to {run['end_time']} ({run['trigger']}): "
            f"{run['state']}, {run['payments_checked']} payment(s) and {run['refunds_checked']} refund(s) checked")


def print_run(run: dict[str, Any]) -> None:
    """The run in a line, then what it found (or that it found nothing, or why it failed)."""
    console.print(_run_title(run), highlight=False)
    if run["state"] == "failed":
        console.print(f"failed: {run['error']}", highlight=False)
    elif run["discrepancies"]:
        resolved = any(d["resolved"] for d in run["discrepancies"])
        show(run["discrepancies"], [*FOUND_COLUMNS, "resolution"] if resolved else FOUND_COLUMNS, False,
             f"{len(run['discrepancies'])} discrepancy(ies)")
    elif run["discrepancy_count"]:
        # Payments lists a discrepancy under the last run that found it: an earlier run's are under a later one.
        console.print(f"{run['discrepancy_count']} discrepancy(ies) found, found again by a later run since: see "
                      "`billing reconciliation discrepancies --all`", highlight=False)
    elif run["state"] == "completed":
        console.print("clean: no discrepancies", highlight=False)


@reconciliation.command("run")
def reconciliation_run(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="Start, ISO 8601 (UTC without a zone); default yesterday "
                                                      "00:00 UTC")] = "",
    end: Annotated[str, typer.Option("--to", help="End (not included), ISO 8601; default today 00:00 UTC")] = "",
    as_json: JsonOption = False,
) -> None:
    """Compare our payments and refunds created in a window with Razorpay's, and print what differs. Exits 1
    when there are discrepancies or the provider could not be read, so a cron job notices."""
    start_at, end_at = window(start, end, datetime.now(UTC))
    run = gateway_of(ctx).request("POST", "/api/v1/admin/reconciliation-runs", timeout=RUN_TIMEOUT_SECONDS,
                                  json={"start_time": start_at.isoformat(), "end_time": end_at.isoformat()})
    if as_json:
        typer.echo(json.dumps(run, indent=2))
    else:
        print_run(run)
        if run["discrepancies"]:
            console.print("Resolve each, once dealt with, with `billing reconciliation resolve ID --note ...`.",
                          highlight=False)
    if run["state"] == "failed" or run["discrepancies"]:
        raise typer.Exit(1)


@reconciliation.command("show")
def reconciliation_show(ctx: typer.Context, run_id: str, as_json: JsonOption = False) -> None:
    """One run with the discrepancies it found (resolved ones too)."""
    run = gateway_of(ctx).request("GET", f"/api/v1/admin/reconciliation-runs/{run_id}")
    if as_json:
        typer.echo(json.dumps(run, indent=2))
        return
    print_run(run)


@reconciliation.command("list")
def reconciliation_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the latest", min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest runs, newest first: manual ones and payments' daily run."""
    rows = gateway_of(ctx).request("GET", "/api/v1/admin/reconciliation-runs", params={"page_size": limit})["data"]
    show(rows, RUN_COLUMNS, as_json, f"{len(rows)} latest reconciliation run(s)")


@reconciliation.command("discrepancies")
def reconciliation_discrepancies(
    ctx: typer.Context,
    include_resolved: Annotated[bool, typer.Option("--all", help="Resolved ones too")] = False,
    as_json: JsonOption = False,
) -> None:
    """Discrepancies of every run, newest first: the open ones, or all with --all."""
    params = {"include_resolved": "true"} if include_resolved else {}
    rows = list_all(gateway_of(ctx), "/api/v1/admin/discrepancies", params)
    what = "discrepancy(ies)" if include_resolved else "open discrepancy(ies)"
    show(rows, RESOLVED_COLUMNS if include_resolved else DISCREPANCY_COLUMNS, as_json, f"{len(rows)} {what}")


@reconciliation.command("resolve")
def reconciliation_resolve(
    ctx: typer.Context,
    discrepancy_id: str,
    note: Annotated[str, typer.Option(help="What was done about it (kept as its resolution)")],
    as_json: JsonOption = False,
) -> None:
    """Close a discrepancy, saying what was done. Resolving it again changes nothing."""
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/discrepancies/{discrepancy_id}/resolve",
                                  json={"resolution": note})
    show([row], RESOLVED_COLUMNS, as_json, f"Discrepancy {row['id']} resolved")


# -- usage: what ingest accepted against what metering counts ---------------------------------------------------

usage = typer.Typer(help="Usage reconciliation: events ingest accepted against events metering stores, and usage "
                         "aggregates against the stored events.", no_args_is_help=True)
reconciliation.add_typer(usage, name="usage")

USAGE_COLUMNS = ["id", "status", "trigger", "start_time", "end_time", "accepted_events", "stored_events",
                 "missing_events", "aggregate_mismatches", "discrepancy_count", "started_at"]
USAGE_FOUND_COLUMNS = ["kind", "organisation_id", "project_id", "metric", "period_start", "expected", "found",
                       "detail"]
# The gateway waits 300 s for a run; a little more here.
USAGE_RUN_TIMEOUT_SECONDS = 330.0


def previous_hour(now: datetime) -> tuple[datetime, datetime]:
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def print_usage_report(report: dict[str, Any]) -> None:
    console.print(
        f"Usage reconciliation {report['id']} of {report['start_time']} to {report['end_time']} ({report['trigger']}): "
        f"{report['status']}, {report['accepted_events']} event(s) accepted, {report['stored_events']} stored, "
        f"{report['missing_events']} missing, {report['aggregate_mismatches']} aggregate mismatch(es)",
        highlight=False,
    )
    if report["status"] == "failed":
        console.print(f"failed: {report['error']}", highlight=False)
    elif report["status"] == "metering_behind":
        console.print("metering had not consumed the window yet: nothing concluded, run it again later",
                      highlight=False)
    elif report["discrepancies"]:
        kept = len(report["discrepancies"])
        more = f" (the first {kept} of {report['discrepancy_count']})" if report["discrepancy_count"] > kept else ""
        title = f"{report['discrepancy_count']} discrepancy(ies){more}"
        show(report["discrepancies"], USAGE_FOUND_COLUMNS, False, title)
    elif report["status"] == "clean":
        console.print("clean: no discrepancies", highlight=False)


@usage.command("run")
def usage_run(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="Start of acceptance time, ISO 8601 (UTC without a zone); "
                                                      "default the previous full hour")] = "",
    end: Annotated[str, typer.Option("--to", help="End (not included), ISO 8601; at most 24 hours after --from")] = "",
    as_json: JsonOption = False,
) -> None:
    """Reconcile a window now and print the report. Exits 1 when it found discrepancies or concluded nothing
    (failed, or metering behind), so a cron job notices."""
    if bool(start) != bool(end):
        raise CliError("give --from and --to together (or neither: the previous full hour, UTC)")
    start_at, end_at = ((_moment(start, "--from"), _moment(end, "--to")) if start
                        else previous_hour(datetime.now(UTC)))
    report = gateway_of(ctx).request("POST", "/api/v1/admin/usage-reconciliations",
                                     timeout=USAGE_RUN_TIMEOUT_SECONDS,
                                     json={"start_time": start_at.isoformat(), "end_time": end_at.isoformat()})
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        print_usage_report(report)
    if report["status"] != "clean":
        raise typer.Exit(1)


@usage.command("show")
def usage_show(ctx: typer.Context, report_id: str, as_json: JsonOption = False) -> None:
    """One report with its discrepancies (the first 1,000)."""
    report = gateway_of(ctx).request("GET", f"/api/v1/admin/usage-reconciliations/{report_id}")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    print_usage_report(report)


@usage.command("list")
def usage_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the latest", min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest reports, newest first: metering's hourly runs and on-demand ones."""
    rows = gateway_of(ctx).request("GET", "/api/v1/admin/usage-reconciliations", params={"page_size": limit})["data"]
    show(rows, USAGE_COLUMNS, as_json, f"{len(rows)} latest usage reconciliation(s)")
