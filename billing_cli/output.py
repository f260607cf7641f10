"""What every command shares: the gateway from the command line's options, tables or JSON out, and paging."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from billing_cli.connection import Gateway

console = Console()
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table")]


def gateway_of(ctx: typer.Context, *, admin: bool = True) -> Gateway:
    """The gateway from --gateway/--admin-token, the environment or .run/endpoints.json.

    ``admin=False`` for commands that authenticate with a project's API key instead of the admin token.
    """
    return Gateway.resolve(*ctx.find_root().obj, need_admin_token=admin)


def show(rows: list[dict[str, Any]], columns: list[str], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    # At least as wide as its title: rich wraps a title to the table's width, splitting a sentence over lines.
    # Titles and cells are text, not rich markup: an id in brackets, or an endpoint's "[maintenance]" answer, must
    # not be read as a style (and vanish).
    table = Table(title=escape(title), min_width=min(len(title), console.width))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[escape(_cell(row.get(column))) for column in columns])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(item) for item in value)
    return "" if value is None else str(value)


def list_all(gateway: Gateway, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = ""
    while True:
        page = gateway.request("GET", path, params={**params, "page_size": 500, "page_token": token})
        rows.extend(page["data"])
        token = page["next_page_token"]
        if not token:
            return rows


def comma_list(text: str | None) -> list[str] | None:
    """An option that replaces a list: ``a@x, b@y`` -> ``["a@x", "b@y"]``; ``""`` -> ``[]`` (empty the list);
    None: not given, keep the list as it is."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]
