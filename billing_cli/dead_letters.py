"""billing dead-letters: the event batches metering could not process. List them with their state, show one with
its events, replay one once its cause is fixed, or discard one with a reason."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, console, gateway_of, show

dead_letters = typer.Typer(help="Event batches metering could not process: list, show, replay, discard.",
                           no_args_is_help=True)

PATH = "/api/v1/admin/dead-letters"
COLUMNS = ["sequence", "state", "reason", "source_stream", "source_sequence", "delivery_count", "payload_size",
           "dead_lettered_at"]
STATES = ("pending", "replayed", "discarded")


@dead_letters.command("list")
def dead_letters_list(
    ctx: typer.Context,
    state: Annotated[str, typer.Option(help="Only this state: pending, replayed or discarded")] = "",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List dead letters, newest first. The pending ones wait for an operator: replay or discard them."""
    if state and state not in STATES:
        raise CliError(f"--state must be one of {', '.join(STATES)}")
    gateway = gateway_of(ctx)
    rows: list[dict[str, Any]] = []
    token = ""
    while len(rows) < limit:
        page = gateway.request("GET", PATH, params={"page_size": 500, "page_token": token})
        rows.extend(letter for letter in page["data"] if not state or letter["state"] == state)
        token = page["next_page_token"]
        if not token:
            break
    rows = rows[:limit]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    show(rows, COLUMNS, False, f"{len(rows)} dead letter(s)")


@dead_letters.command("show")
def dead_letters_show(ctx: typer.Context, sequence: int, as_json: JsonOption = False) -> None:
    """Show one dead letter: why, where from, its state, and its payload (an event batch's events) as JSON."""
    letter = gateway_of(ctx).request("GET", f"{PATH}/{sequence}")
    if as_json:
        typer.echo(json.dumps(letter, indent=2))
        return
    show([letter], COLUMNS, False, f"Dead letter {letter['sequence']}")
    if letter["state"] == "discarded":
        console.print(f"Discarded at {letter['state_changed_at']}: {letter['discard_reason']}", highlight=False,
                      markup=False)
    elif letter["state"] == "replayed":
        console.print(f"Replayed at {letter['state_changed_at']}.", highlight=False)
    else:
        console.print(f"Pending: once the cause is fixed, `billing dead-letters replay {sequence}`; or "
                      f"`billing dead-letters discard {sequence} --reason ...`.", highlight=False, markup=False)
    if letter["payload_error"]:
        console.print(f"Payload ({letter['payload_size']} bytes) not decoded: {letter['payload_error']}",
                      highlight=False, markup=False)
        return
    try:
        payload = json.dumps(json.loads(letter["payload"]), indent=2)
    except ValueError:  # cut at the bound: print it as it came
        payload = letter["payload"]
    console.print(payload, highlight=False, markup=False)
    if letter["payload_truncated"]:
        console.print("(payload cut at 64 KiB; the whole of it stays in the dead-letter stream)", highlight=False)


@dead_letters.command("replay")
def dead_letters_replay(ctx: typer.Context, sequence: int, as_json: JsonOption = False) -> None:
    """Publish the letter's payload to its original subject again, for metering to process. Safe to repeat: a
    repeat publishes nothing new, and events are deduplicated anyway."""
    reply = gateway_of(ctx).request("POST", f"{PATH}/{sequence}/replay")
    if as_json:
        typer.echo(json.dumps(reply, indent=2))
        return
    letter = reply["dead_letter"]
    if reply["duplicate"]:
        title = f"Dead letter {sequence} was already replayed (stream sequence {reply['replay_sequence']})"
    else:
        title = f"Dead letter {sequence} replayed as stream sequence {reply['replay_sequence']}"
    show([letter], COLUMNS, False, title)
    console.print("If it fails again it comes back as a new dead letter: `billing dead-letters list --state "
                  "pending`.", highlight=False, markup=False)


@dead_letters.command("discard")
def dead_letters_discard(
    ctx: typer.Context,
    sequence: int,
    reason: Annotated[str, typer.Option(help="Why it is given up on (required, at most 500 characters)")],
    as_json: JsonOption = False,
) -> None:
    """Give up on a dead letter, saying why: it stays readable until it ages out, but can no longer be replayed."""
    if not reason.strip():
        raise CliError("--reason must say why the dead letter is discarded")
    letter = gateway_of(ctx).request("POST", f"{PATH}/{sequence}/discard", json={"reason": reason})
    if as_json:
        typer.echo(json.dumps(letter, indent=2))
        return
    show([letter], COLUMNS, False, f"Dead letter {sequence} discarded: {letter['discard_reason']}")
