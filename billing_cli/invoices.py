"""billing invoices: close a period (with progress), list, show, void, reissue, download PDFs, projected invoices,
and an invoice's status history."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from billing_cli.connection import CliError, Gateway
from billing_cli.output import JsonOption, console, gateway_of, list_all, show

invoices = typer.Typer(help="Invoices: period close (invoice runs), listing, voiding, PDFs.", no_args_is_help=True)

INVOICE_COLUMNS = ["id", "number", "organisation_id", "period_key", "status", "currency", "subtotal", "tax", "total",
                   "issue_date", "due_date"]
LINE_COLUMNS = ["number", "description", "quantity", "unit_price", "amount", "gst_rate", "sac_code"]
RUN_COLUMNS = ["id", "period_key", "organisation_id", "state", "trigger", "organisations_done",
               "organisations_total", "invoiced", "already_invoiced", "not_due", "no_subscription", "failed",
               "created_at"]
HISTORY_COLUMNS = ["changed_at", "from_status", "to_status", "reason", "cause"]
OUTCOMES = (("invoiced", "invoiced"), ("already_invoiced", "already invoiced"), ("not_due", "not due"),
            ("no_subscription", "no subscription"), ("failed", "failed"))
FIRST_FAILURES = 10
# The render timeout of the gateway, plus slack: a PDF of many lines takes a moment.
DOWNLOAD_TIMEOUT_SECONDS = 60.0


def run_counts(run: dict[str, Any]) -> str:
    """``invoiced 3, already invoiced 1, not due 0, no subscription 2, failed 0``."""
    return ", ".join(f"{label} {run[name]}" for name, label in OUTCOMES)


def wait_for_run(gateway: Gateway, run: dict[str, Any], interval: float) -> dict[str, Any]:
    """Poll the run until it is no longer running, with a progress bar of organisations done."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("organisations"), TimeElapsedColumn(), TextColumn("{task.fields[counts]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"closing {run['period_key']}", total=run["organisations_total"] or None,
                                 completed=run["organisations_done"], counts=run_counts(run))
        while run["state"] == "running":
            time.sleep(interval)
            run = gateway.request("GET", f"/api/v1/admin/invoice-runs/{run['id']}")
            progress.update(task, total=run["organisations_total"] or None, completed=run["organisations_done"],
                            counts=run_counts(run))
    return run


def print_run_summary(run: dict[str, Any]) -> None:
    rows = [{"outcome": label, "organisations": run[name]} for name, label in OUTCOMES]
    show(rows, ["outcome", "organisations"], False,
         f"Invoice run {run['id']} for {run['period_key']}: {run['state']} "
         f"({run['organisations_done']}/{run['organisations_total']} organisations)")
    if run["failures"]:
        show(run["failures"][:FIRST_FAILURES], ["organisation_id", "message"], False,
             f"First failures ({min(len(run['failures']), FIRST_FAILURES)} of {run['failed']})")
    if run["invoiced"]:
        console.print(f"See them with `billing invoices list --period {run['period_key']}`.")


@invoices.command("run")
def invoices_run(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="The billing period, YYYY-MM (the month periods start in)")],
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="Only this organisation; default every organisation")] = "",
    wait: Annotated[bool, typer.Option(help="Follow the run's progress until it finishes")] = True,
    poll_interval: Annotated[float, typer.Option(help="Seconds between progress checks", min=0.05)] = 0.5,
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key: the same key returns the same run")] = "",
    as_json: JsonOption = False,
) -> None:
    """Close a billing period: invoice every organisation (or one) whose period has ended. Each organisation and
    period is invoiced at most once, however often this runs. Exits 1 if any organisation failed."""
    gateway = gateway_of(ctx)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    run = gateway.request("POST", "/api/v1/admin/invoice-runs",
                          json={"period_key": period, "organisation_id": organisation}, headers=headers)
    if wait and not as_json:
        console.print(f"Invoice run {run['id']} started for {period}"
                      f"{' (organisation ' + organisation + ')' if organisation else ''}; Ctrl-C stops watching, "
                      "not the run.")
        try:
            run = wait_for_run(gateway, run, poll_interval)
        except KeyboardInterrupt:
            console.print(f"Still running. Follow it with `billing invoices runs {run['id']}`.")
            raise typer.Exit(130) from None
    elif wait:
        while run["state"] == "running":
            time.sleep(poll_interval)
            run = gateway.request("GET", f"/api/v1/admin/invoice-runs/{run['id']}")
    if as_json:
        typer.echo(json.dumps(run, indent=2))
    elif wait:
        print_run_summary(run)
    else:
        console.print(f"Invoice run {run['id']} started. Follow it with `billing invoices runs {run['id']}`.")
    if run["state"] == "failed" or run["failed"]:
        raise typer.Exit(1)


@invoices.command("runs")
def invoices_runs(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="One run's id; default: list the runs")] = "",
    as_json: JsonOption = False,
) -> None:
    """List invoice runs, newest first, or show one with its counts and first failures."""
    gateway = gateway_of(ctx)
    if run_id:
        run = gateway.request("GET", f"/api/v1/admin/invoice-runs/{run_id}")
        if as_json:
            typer.echo(json.dumps(run, indent=2))
        else:
            print_run_summary(run)
        return
    rows = gateway.request("GET", "/api/v1/admin/invoice-runs", params={"page_size": 50})["data"]
    show(rows, RUN_COLUMNS, as_json, f"{len(rows)} latest invoice run(s)")


@invoices.command("list")
def invoices_list(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="Only this organisation's")] = "",
    status: Annotated[str, typer.Option(help="draft, issued, paid or void")] = "",
    period: Annotated[str, typer.Option(help="Only this period, YYYY-MM")] = "",
    as_json: JsonOption = False,
) -> None:
    """List invoices, newest first."""
    params = {name: value for name, value in (("organisation_id", organisation), ("status", status),
                                              ("period_key", period)) if value}
    rows = list_all(gateway_of(ctx), "/api/v1/admin/invoices", params)
    show(rows, INVOICE_COLUMNS, as_json, f"{len(rows)} invoice(s)")


def _credit_rows(invoice: dict[str, Any]) -> list[dict[str, str]]:
    """Prepaid credit paying the total (after tax), a row per grant, and what is left to pay; none without."""
    if not invoice.get("credit_lines"):
        return []
    rows = [{"": line["description"], "amount": line["amount"]} for line in invoice["credit_lines"]]
    left = "left to pay if the period closed now" if invoice["projected"] else "amount due"
    return [*rows, {"": left, "amount": f"{invoice['amount_due']} {invoice['currency']}"}]


def show_invoice(invoice: dict[str, Any], as_json: bool) -> None:
    """An invoice as an operator reads it: header, lines, tax lines and totals."""
    if as_json:
        typer.echo(json.dumps(invoice, indent=2))
        return
    currency = invoice["currency"]
    customer = (invoice.get("customer") or {}).get("name", invoice["organisation_id"])
    if invoice["projected"]:
        title = f"Projected invoice for {customer}, period {invoice['period_key']} so far, {currency}"
    else:
        title = (f"Invoice {invoice['number'] or '(draft)'} ({invoice['id']}) for {customer}, period "
                 f"{invoice['period_key']}: {invoice['status'] or ''}, {currency}")
    show(invoice["lines"], LINE_COLUMNS, False, title)
    totals = [{"": "subtotal", "amount": invoice["subtotal"]}]
    totals += [{"": f"{(t['kind'] or 'tax').upper()} {t['rate']}% on {t['taxable']}", "amount": t["amount"]}
               for t in invoice["tax_lines"]]
    totals.append({"": "total", "amount": f"{invoice['total']} {currency}"})
    totals += _credit_rows(invoice)
    show(totals, ["", "amount"], False, f"Tax: {(invoice['tax_regime'] or 'none').replace('_', ' ')}")
    details = [f"issued {invoice['issue_date']}" if invoice["issue_date"] else "",
               f"due {invoice['due_date']}" if invoice["due_date"] else "",
               f"void: {invoice['void_reason']}" if invoice["void_reason"] else "",
               f"replaces {invoice['replaces_invoice_id']}" if invoice["replaces_invoice_id"] else ""]
    rate = invoice.get("exchange_rate")
    if rate:
        details.append(f"1 {rate['base_currency']} = {rate['rate']} {rate['quote_currency']} ({rate['source']})")
    if any(details):
        console.print("; ".join(d for d in details if d))
    for note in invoice["notes"]:
        console.print(note)


@invoices.command("show")
def invoices_show(ctx: typer.Context, invoice_id: str, as_json: JsonOption = False) -> None:
    """Show an invoice with its lines, tax and totals."""
    show_invoice(gateway_of(ctx).request("GET", f"/api/v1/admin/invoices/{invoice_id}"), as_json)


@invoices.command("void")
def invoices_void(
    ctx: typer.Context,
    invoice_id: str,
    reason: Annotated[str, typer.Option(help="Why; kept on the invoice")],
    irn_cancel_reason: Annotated[str, typer.Option(
        help="An e-invoiced invoice's IRN cancellation reason: 1 duplicate, 2 data entry mistake, 3 order cancelled, "
        "4 other (default); within 24 hours of registration only")] = "",
    as_json: JsonOption = False,
) -> None:
    """Void an issued invoice. Its number is never reused; `billing invoices reissue` issues a new one. An
    e-invoiced invoice's IRN is cancelled first; after 24 hours that is refused and a credit note is needed."""
    body = {"reason": reason, **({"irn_cancel_reason": irn_cancel_reason} if irn_cancel_reason else {})}
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/invoices/{invoice_id}/void", json=body)
    show([row], INVOICE_COLUMNS, as_json, "Invoice voided")


@invoices.command("reissue")
def invoices_reissue(ctx: typer.Context, invoice_id: str, as_json: JsonOption = False) -> None:
    """Issue a new invoice, under a new number, for the period of a voided one."""
    row = gateway_of(ctx).request("POST", f"/api/v1/admin/invoices/{invoice_id}/reissue")
    show([row], INVOICE_COLUMNS, as_json, f"Reissued as {row['number']}")


def _attachment_name(disposition: str, fallback: str) -> str:
    match = re.search(r'filename="([^"/\\]+)"', disposition)
    return match.group(1) if match else fallback


@invoices.command("pdf")
def invoices_pdf(
    ctx: typer.Context,
    invoice_id: str,
    out: Annotated[Path | None, typer.Option(help="Where to write it; default the invoice's file name here")] = None,
) -> None:
    """Download an invoice's PDF."""
    download_pdf(ctx, f"/api/v1/admin/invoices/{invoice_id}/pdf", f"{invoice_id}.pdf", out)


def download_pdf(ctx: typer.Context, path_on_gateway: str, fallback_name: str, out: Path | None) -> None:
    """Write the PDF the gateway serves at ``path_on_gateway`` to ``out``, or here under its attachment name."""
    response = gateway_of(ctx).send("GET", path_on_gateway, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    if not response.content.startswith(b"%PDF"):
        raise CliError(f"the gateway answered {response.headers.get('content-type')}, not a PDF")
    path = out or Path(_attachment_name(response.headers.get("content-disposition", ""), fallback_name))
    try:
        path.write_bytes(response.content)
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from None
    console.print(f"Wrote {path} ({len(response.content):,} bytes)")


FORECAST_COLUMNS = ["line", "quantity so far", "projected quantity", "so far", "forecast"]
_METHODS = {"daily_trend": "the daily trend", "elapsed_fraction": "the elapsed fraction (no complete day yet)",
            "actual": "the actual usage (nothing left to bill)"}


def _line_key(line: dict[str, Any]) -> tuple[Any, ...]:
    return (line["kind"], line["metric_code"], line["plan_version_id"], line["period_start"])


def _minus(minor: int, text: str | None) -> str:
    return f"-{text}" if minor else "0"


def show_forecast(invoice: dict[str, Any], forecast: dict[str, Any]) -> None:
    """The forecast next to the period so far: each line's quantity and amount now and at the period's end, the
    totals, and how the forecast was made."""
    so_far = {_line_key(line): line for line in invoice["lines"]}
    rows = []
    for line in forecast["invoice"]["lines"]:
        now = so_far.get(_line_key(line), {})
        rows.append({"line": line["description"], "quantity so far": now.get("quantity", ""),
                     "projected quantity": line["quantity"], "so far": now.get("amount", ""),
                     "forecast": line["amount"]})
    end = forecast["invoice"]
    rows += [{"line": name, "so far": invoice[name], "forecast": end[name]} for name in ("subtotal", "tax")]
    rows.append({"line": "total", "so far": f"{invoice['total']} {invoice['currency']}",
                 "forecast": f"{end['total']} {end['currency']}"})
    if invoice.get("credit_lines") or end.get("credit_lines"):
        # Each spends the balance as it is now; the forecast leaves out grants expiring before the period ends.
        rows.append({"line": "prepaid credit", "so far": _minus(invoice["credits_minor"], invoice["credits"]),
                     "forecast": _minus(end["credits_minor"], end["credits"])})
        rows.append({"line": "left to pay", "so far": f"{invoice['amount_due']} {invoice['currency']}",
                     "forecast": f"{end['amount_due']} {end['currency']}"})
    show(rows, FORECAST_COLUMNS, False, f"Forecast for the end of period {invoice['period_key']}")
    method = _METHODS.get(forecast["method"] or "", forecast["method"] or "")
    if forecast["method"] == "daily_trend":
        method += (f": the mean of the average per day over the last {forecast['window_days']} and over all "
                   f"{forecast['days_observed']} complete days")
    console.print(f"{forecast['days_elapsed']} of {forecast['days_in_period']} days gone; projected from {method}. "
                  "Levels and distinct counts (max, min, latest, unique_count) stay at their value so far.")


@invoices.command("projected")
def invoices_projected(
    ctx: typer.Context, organisation_id: Annotated[str, typer.Argument(help="The organisation's id")],
    forecast: Annotated[bool, typer.Option(help="Also forecast the period's end from the trend so far")] = True,
    as_json: JsonOption = False,
) -> None:
    """The organisation's current period so far, priced: what its invoice would be if the period ended now (with
    earlier periods' late usage as adjustment lines, and the prepaid credit it would spend); and the forecast of its
    end if usage keeps its trend. Nothing is spent."""
    invoice = gateway_of(ctx).request("GET", f"/api/v1/admin/organisations/{organisation_id}/projected-invoice",
                                      params={"forecast": str(forecast).lower()}, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    show_invoice(invoice, as_json)
    if not as_json and invoice.get("forecast"):
        show_forecast(invoice, invoice["forecast"])


@invoices.command("history")
def invoices_history(ctx: typer.Context, invoice_id: str, as_json: JsonOption = False) -> None:
    """An invoice's status history, oldest first: each change with why and what caused it (a payment, a refund,
    an invoice run, a void)."""
    rows = gateway_of(ctx).request("GET", f"/api/v1/admin/invoices/{invoice_id}/status-changes")
    show(rows, HISTORY_COLUMNS, as_json, f"Status history of invoice {invoice_id}")
