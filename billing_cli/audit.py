"""billing audit: the audit log of admin and financial writes (append-only). List the latest with filters, or
export every matching entry as JSON lines (oldest first, streamed)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from billing_cli.output import JsonOption, gateway_of, show

audit = typer.Typer(help="The audit log: who did what, when, from where and why.", no_args_is_help=True)

PATH = "/api/v1/admin/audit-log"
COLUMNS = ["id", "created_at", "actor", "role", "action", "resource_type", "resource_id", "source_ip", "reason"]
ActorOption = Annotated[str, typer.Option(help="Only this actor: admin-token, user:<id>, prj_...")]
ActionOption = Annotated[str, typer.Option(help="Only actions starting with this, e.g. 'invoice.' or 'refund.'")]
ResourceOption = Annotated[str, typer.Option(help="Only this resource id (an invoice, a user ...)")]
SinceOption = Annotated[datetime | None, typer.Option(help="At or after this time (UTC if no zone)")]
UntilOption = Annotated[datetime | None, typer.Option(help="Before this time (UTC if no zone)")]


def _filters(actor: str, action: str, resource_id: str, since: datetime | None,
             until: datetime | None) -> dict[str, Any]:
    params: dict[str, Any] = {"actor": actor, "action": action, "resource_id": resource_id}
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            params[name] = value.isoformat() + ("" if value.tzinfo else "Z")
    return {k: v for k, v in params.items() if v}


@audit.command("list")
def audit_list(
    ctx: typer.Context,
    actor: ActorOption = "",
    action: ActionOption = "",
    resource_id: ResourceOption = "",
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest matching entries, newest first."""
    rows = gateway_of(ctx).request("GET", PATH, params={**_filters(actor, action, resource_id, since, until),
                                                        "limit": limit})
    show(rows, COLUMNS, as_json, f"{len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'}")


@audit.command("export")
def audit_export(
    ctx: typer.Context,
    actor: ActorOption = "",
    action: ActionOption = "",
    resource_id: ResourceOption = "",
    since: SinceOption = None,
    until: UntilOption = None,
    after_id: Annotated[int, typer.Option(min=0, help="Resume after this id (the last one received)")] = 0,
) -> None:
    """Every matching entry as JSON lines on stdout, oldest first: `billing audit export > audit.jsonl`."""
    params = {**_filters(actor, action, resource_id, since, until), "after_id": after_id}
    for line in gateway_of(ctx).stream_lines("GET", f"{PATH}/export", params=params):
        json.loads(line)  # a line cut short by a dropped connection fails here, not in the file
        typer.echo(line)
