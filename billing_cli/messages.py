"""billing messages: the emails notification sent (or is sending) about invoices and payments, their delivery
attempts, a preview as sent, resending one, and an organisation's cc addresses and reminder opt-outs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, comma_list, console, gateway_of, list_all, show

messages = typer.Typer(help="Email messages: list, show with delivery attempts, preview, resend; an organisation's "
                            "recipients.", no_args_is_help=True)

MESSAGE_COLUMNS = ["id", "kind", "state", "recipient", "cc", "invoice_id", "subject", "attempts", "created_at",
                   "sent_at"]
ATTEMPT_COLUMNS = ["number", "outcome", "reply", "started_at", "ended_at"]
KINDS = ("invoice_issued, payment_receipt, payment_failed, payment_retry, invoice_overdue, refund_processed, "
         "endpoint_disabled, invoice_reminder, alert_triggered, autodebit_link")
STATES = "queued, sending, sent, failed, unknown, suppressed"
# What an operator does next about a message in these states (the others need nothing).
NEXT_STEP = {
    "failed": "the mail server refused it for good; once the cause is fixed, `billing messages resend {id}`",
    "unknown": "it may or may not have arrived (the send broke off); check with the recipient, then "
               "`billing messages resend {id}` if it did not",
}


def message_row(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "cc": ", ".join(message["cc"])}


@messages.command("list")
def messages_list(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", "--organisation-id",
                                              help="Only this organisation's")] = "",
    invoice: Annotated[str, typer.Option("--invoice", "--invoice-id", help="Only this invoice's")] = "",
    kind: Annotated[str, typer.Option(help=f"Only this kind: {KINDS}")] = "",
    state: Annotated[str, typer.Option(help=f"Only this state: {STATES}")] = "",
    as_json: JsonOption = False,
) -> None:
    """List messages, newest first. `--state failed` and `--state unknown` are the ones needing an operator."""
    params = {name: value for name, value in (("organisation_id", organisation), ("invoice_id", invoice),
                                               ("kind", kind), ("state", state)) if value}
    rows = list_all(gateway_of(ctx), "/api/v1/admin/messages", params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show([message_row(m) for m in rows], MESSAGE_COLUMNS, False, f"{len(rows)} message(s)")


@messages.command("show")
def messages_show(ctx: typer.Context, message_id: str, as_json: JsonOption = False) -> None:
    """Show one message and each attempt to hand it to the mail server, with the server's replies."""
    message = gateway_of(ctx).request("GET", f"/api/v1/admin/messages/{message_id}")
    if as_json:
        typer.echo(json.dumps(message, indent=2))
        return
    show([message_row(message)], MESSAGE_COLUMNS, False, f"Message {message['id']}")
    console.print(f"Message-ID {message['message_id_header']}, from event {message['event_id']}", highlight=False)
    if message["state"] == "queued" and message["next_attempt_at"]:
        console.print(f"Next attempt at {message['next_attempt_at']}", highlight=False)
    if message["delivery_attempts"]:
        show(message["delivery_attempts"], ATTEMPT_COLUMNS, False, f"Delivery attempts of {message['id']}")
    else:
        console.print("No delivery attempts yet.", highlight=False)
    step = NEXT_STEP.get(message["state"])
    if step:
        console.print(f"{message['state'].capitalize()}: {step.format(id=message['id'])}.", highlight=False)


@messages.command("preview")
def messages_preview(
    ctx: typer.Context,
    message_id: str,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML part to this file, to open in a "
                                                             "browser", dir_okay=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Render a message as it would be sent today (nothing is sent): its subject and text, the files that would
    be attached, and with --html the HTML part written to a file."""
    preview = gateway_of(ctx).request("GET", f"/api/v1/admin/messages/{message_id}/preview")
    if html is not None:
        try:
            html.write_text(preview["html"], encoding="utf-8")
        except OSError as error:
            raise CliError(f"cannot write {html}: {error.strerror}") from None
    if as_json:
        typer.echo(json.dumps(preview, indent=2))
        return
    console.print(f"Subject: {preview['subject']}", highlight=False, markup=False)
    if preview["attachments"]:
        console.print(f"Attachments: {', '.join(preview['attachments'])}", highlight=False, markup=False)
    console.print("", highlight=False)
    # The text part as written: it is the customer's mail, not rich markup ("[1]" is a footnote, not a style).
    console.print(preview["text"], highlight=False, markup=False)
    if html is not None:
        console.print(f"HTML written to {html}", highlight=False, markup=False)


@messages.command("resend")
def messages_resend(
    ctx: typer.Context,
    message_id: str,
    idempotency_key: Annotated[str, typer.Option(help="Retry-safe key; default a new one, printed so a retry can "
                                                      "pass it")] = "",
    as_json: JsonOption = False,
) -> None:
    """Queue a new copy of a message (its own Message-ID). Rerun with the printed --idempotency-key after a
    failure or a timeout: the copy is then made, and mailed, at most once."""
    key = idempotency_key or f"cli-resend-{uuid.uuid4().hex}"
    try:
        response = gateway_of(ctx).send("POST", f"/api/v1/admin/messages/{message_id}/resend",
                                        headers={"Idempotency-Key": key})
    except CliError as error:
        # Whether the copy was made is unknown after a timeout: the key is how a retry finds out.
        raise CliError(f"{error} (retry with --idempotency-key {key}: a copy it made is not made twice)") from None
    copy = response.json()
    if as_json:
        typer.echo(json.dumps(copy, indent=2))
        return
    title = (f"Already resent with this key: message {copy['id']}"
             if response.headers.get("idempotent-replayed") == "true"
             else f"Message {copy['id']} queued, a copy of {message_id}")
    show([message_row(copy)], MESSAGE_COLUMNS, False, title)
    console.print(f"Idempotency key: {key} (pass --idempotency-key {key} to retry safely). Follow it with "
                  f"`billing messages show {copy['id']}`.", highlight=False)


@messages.command("recipients")
def messages_recipients(
    ctx: typer.Context,
    organisation_id: str,
    cc: Annotated[str | None, typer.Option(help='Addresses copied on every message, comma-separated; "" for none')]
    = None,
    opt_out: Annotated[str | None, typer.Option(help="Reminder kinds it does not want, comma-separated "
                                                     '(payment_failed, payment_retry, invoice_overdue); "" for '
                                                     "none")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No cc and no opt-outs")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show an organisation's recipients, or change them: --cc and --opt-out each replace their list and leave
    the other as it is; --clear empties both. Messages recorded afterwards follow them."""
    addresses, kinds = comma_list(cc), comma_list(opt_out)
    if clear and (addresses is not None or kinds is not None):
        raise CliError("--clear with --cc or --opt-out: choose one")
    gateway = gateway_of(ctx)
    path = f"/api/v1/admin/organisations/{organisation_id}/recipients"
    if clear:
        found, title = gateway.request("PUT", path, json={"cc": [], "opted_out": []}), "Recipients cleared"
    elif addresses is not None or kinds is not None:
        # PUT replaces both lists: the one not given is kept as it is now.
        current = gateway.request("GET", path) if addresses is None or kinds is None else {}
        body = {"cc": current["cc"] if addresses is None else addresses,
                "opted_out": current["opted_out"] if kinds is None else kinds}
        found, title = gateway.request("PUT", path, json=body), "Recipients set"
    else:
        found, title = gateway.request("GET", path), "Recipients"
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    row = {"organisation_id": found["organisation_id"], "cc": ", ".join(found["cc"]) or "(none)",
           "opted_out": ", ".join(found["opted_out"]) or "(none: every reminder is sent)"}
    show([row], list(row), False, f"{title} of {found['organisation_id']}")
