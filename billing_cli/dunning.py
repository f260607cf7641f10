"""billing dunning: where an unpaid invoice's reminders and retries stand, and an organisation's policy."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from billing_cli.connection import CliError
from billing_cli.output import JsonOption, console, gateway_of, show

dunning = typer.Typer(help="Dunning: overdue notices and payment retries of unpaid invoices, and their policy.",
                      no_args_is_help=True)

POLICY_COLUMNS = ["organisation_id", "policy", "max_attempts", "schedule"]


def duration(seconds: int) -> str:
    """``86400`` -> ``1d``, ``5400`` -> ``1h30m``, ``90`` -> ``1m30s``: the largest units, exactly."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def describe_schedule(policy: dict[str, Any]) -> str:
    """``days 1, 3, 7 after the due date`` or ``after 1d, then x2 each time, at most 14d apart``."""
    if not policy["max_attempts"]:
        return "no retries: uncollectible once overdue"
    if policy["retry_days"]:
        return f"days {', '.join(str(d) for d in policy['retry_days'])} after the due date"
    return (f"after {duration(policy['base_seconds'])}, then x{policy['factor']} each time, at most "
            f"{duration(policy['cap_seconds'])} apart")


@dunning.command("show")
def dunning_show(ctx: typer.Context, invoice_id: str, as_json: JsonOption = False) -> None:
    """Where an invoice's dunning stands: its state, the attempts made, the next step and the policy."""
    found = gateway_of(ctx).request("GET", f"/api/v1/admin/invoices/{invoice_id}/dunning")
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    policy = found["policy"]
    row = {"state": found["state"], "attempts": f"{found['attempts']} of {policy['max_attempts']}",
           "due_at": found["due_at"], "next_at": found["next_at"], "schedule": describe_schedule(policy)}
    show([row], list(row), False, f"Dunning of invoice {invoice_id}")
    if found["reason"]:
        console.print(f"Reason: {found['reason']}", highlight=False)


def _days(text: str) -> list[int]:
    try:
        return [int(day) for day in text.split(",") if day.strip()]
    except ValueError:
        raise CliError(f"--retry-days must be whole days separated by commas, such as 1,3,7; not {text!r}") from None


@dunning.command("policy")
def dunning_policy(
    ctx: typer.Context,
    organisation_id: str,
    set_: Annotated[bool, typer.Option("--set", help="Set the organisation's own policy from the options below")]
    = False,
    max_attempts: Annotated[int | None, typer.Option(help="Retries before the invoice is uncollectible; default "
                                                          "one per --retry-days", min=0)] = None,
    retry_days: Annotated[str, typer.Option(help="Days after the due date of each attempt, e.g. 1,3,7")] = "",
    base_seconds: Annotated[int, typer.Option(help="Backoff: the first delay (default one day)", min=0)] = 0,
    factor: Annotated[str, typer.Option(help="Backoff: each delay is the last times this, e.g. 2 or 1.5")] = "",
    cap_seconds: Annotated[int, typer.Option(help="Backoff: the longest delay (default 14 days)", min=0)] = 0,
    clear: Annotated[bool, typer.Option("--clear", help="Remove its own policy: the default applies again")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show an organisation's dunning policy (its own, or the default), set it with --set, or remove it with
    --clear. Invoices issued afterwards follow it; those already in dunning keep theirs."""
    changes = max_attempts is not None or retry_days or base_seconds or factor or cap_seconds
    if set_ and clear:
        raise CliError("--set and --clear together: choose one")
    if changes and not set_:
        raise CliError("pass --set to change the policy (without it the policy is only shown)")
    path = f"/api/v1/admin/organisations/{organisation_id}/dunning-policy"
    gateway = gateway_of(ctx)
    if set_:
        days = _days(retry_days)
        if max_attempts is None and not days:
            raise CliError("--set needs --max-attempts (or --retry-days, one day per attempt)")
        body: dict[str, Any] = {"max_attempts": len(days) if max_attempts is None else max_attempts,
                                "retry_days": days, "base_seconds": base_seconds, "factor": factor,
                                "cap_seconds": cap_seconds}
        found, title = gateway.request("PUT", path, json=body), "Dunning policy set"
    elif clear:
        found, title = gateway.request("DELETE", path), "Own dunning policy removed; the default applies"
    else:
        found, title = gateway.request("GET", path), "Dunning policy"
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    policy = found["policy"]
    row = {"organisation_id": found["organisation_id"], "policy": "own" if found["own"] else "default",
           "max_attempts": policy["max_attempts"], "schedule": describe_schedule(policy)}
    show([row], POLICY_COLUMNS, False, title)
