"""billing credit-notes: credit an issued invoice in whole or in part, list and show credit notes, download PDFs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.documents import canonical
from billing_cli.invoices import download_pdf
from billing_cli.output import JsonOption, gateway_of, list_all, show

credit_notes = typer.Typer(help="Credit notes: adjustments of issued invoices (GST reversed), refunded or left as "
                                "credit.", no_args_is_help=True)

COLUMNS = ["id", "number", "invoice_number", "issue_date", "reason_code", "subtotal", "tax", "total", "outcome",
           "refund_state"]
LINE_COLUMNS = ["invoice_line_number", "description", "quantity", "amount", "gst_rate"]
TAX_COLUMNS = ["kind", "rate", "taxable", "amount"]


def _line(text: str) -> dict[str, Any]:
    """``1=250000`` (an amount off line 1, in minor units) or ``1:q=3`` (a quantity off line 1)."""
    number, sep, value = text.partition("=")
    if not sep or not number.strip().rstrip(":q").isdigit():
        raise CliError(f"--line {text!r}: expected LINE=AMOUNT_MINOR (e.g. 1=250000) or LINE:q=QUANTITY (1:q=3)")
    if number.strip().endswith(":q"):
        return {"line_number": int(number.strip()[:-2]), "quantity": value.strip()}
    if not value.strip().isdigit():
        raise CliError(f"--line {text!r}: the amount is in minor units (paise, cents), e.g. 1=250000")
    return {"line_number": int(number), "amount_minor": int(value)}


@credit_notes.command("create")
def credit_notes_create(
    ctx: typer.Context,
    invoice_id: Annotated[str, typer.Argument(help="The issued invoice to credit")],
    reason: Annotated[str, typer.Option(help="Why, in words (printed on the credit note)")],
    reason_code: Annotated[str, typer.Option(help="billing_error, service_issue, goodwill, cancellation, "
                                                  "duplicate or other")] = "other",
    outcome: Annotated[str, typer.Option(help="What was already paid: refund (through the provider) or credit "
                                              "(left with the customer)")] = "credit",
    whole: Annotated[bool, typer.Option("--whole", help="Credit everything still creditable")] = False,
    line: Annotated[list[str] | None, typer.Option(help="LINE=AMOUNT_MINOR or LINE:q=QUANTITY (repeatable)")] = None,
    idempotency_key: Annotated[str, typer.Option(help="Default: derived from the request, so running the same "
                                                      "command twice credits once")] = "",
    as_json: JsonOption = False,
) -> None:
    """Issue a credit note against an invoice (`--whole`, or `--line` per line). Never more than is left."""
    if whole == bool(line):
        raise CliError("give --whole or at least one --line (not both)")
    body: dict[str, Any] = {"whole": whole, "lines": [_line(x) for x in line or []], "reason_code": reason_code,
                            "reason": reason, "outcome": outcome}
    key = idempotency_key or "cli-cn-" + hashlib.sha256(
        canonical({"invoice_id": invoice_id, **body}).encode()).hexdigest()[:24]
    note = gateway_of(ctx).request("POST", f"/api/v1/admin/invoices/{invoice_id}/credit-notes", json=body,
                                   headers={"Idempotency-Key": key})
    show([note], COLUMNS, as_json, f"Credit note {note['number']} ({note['id']}) against {note['invoice_number']}")


@credit_notes.command("list")
def credit_notes_list(
    ctx: typer.Context,
    invoice: Annotated[str, typer.Option("--invoice", "--invoice-id", help="This invoice's credit notes")] = "",
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="This organisation's credit notes")] = "",
    as_json: JsonOption = False,
) -> None:
    """List credit notes of an invoice or of an organisation, newest first."""
    if bool(invoice) == bool(organisation):
        raise CliError("give --invoice or --organisation (one of them)")
    path = (f"/api/v1/admin/invoices/{invoice}/credit-notes" if invoice
            else f"/api/v1/admin/organisations/{organisation}/credit-notes")
    rows = list_all(gateway_of(ctx), path, {})
    show(rows, COLUMNS, as_json, f"{len(rows)} credit note(s) of {invoice or organisation}")


@credit_notes.command("show")
def credit_notes_show(ctx: typer.Context, credit_note_id: str, as_json: JsonOption = False) -> None:
    """One credit note, with its lines and reversed GST."""
    note = gateway_of(ctx).request("GET", f"/api/v1/admin/credit-notes/{credit_note_id}")
    if as_json:
        show([note], COLUMNS, True, "")
        return
    show([note], COLUMNS, False, f"Credit note {note['number']}: {note['reason']}")
    show(note["lines"], LINE_COLUMNS, False, "Lines")
    show(note["tax_lines"], TAX_COLUMNS, False, "GST reversed")


@credit_notes.command("pdf")
def credit_notes_pdf(
    ctx: typer.Context,
    credit_note_id: str,
    out: Annotated[Path | None, typer.Option(help="Where to write it; default its file name here")] = None,
) -> None:
    """Download a credit note's PDF."""
    download_pdf(ctx, f"/api/v1/admin/credit-notes/{credit_note_id}/pdf", f"{credit_note_id}.pdf", out)
