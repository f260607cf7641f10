"""billing users / billing tokens: staff users (admin, operator, viewer), organisation users (member, owner, with
their organisation) and their API tokens. A token's secret is
printed once, when it is minted or rotated."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from billing_cli.output import JsonOption, console, gateway_of, list_all, show

users = typer.Typer(help="Users and their roles: staff (admin, operator, viewer) and organisation users (member, "
                         "owner).", no_args_is_help=True)
tokens = typer.Typer(help="Staff users' API tokens (bt_...): mint, list, rotate, revoke.", no_args_is_help=True)

USER_COLUMNS = ["id", "email", "name", "role", "organisation_id", "created_at", "disabled_at"]
TOKEN_COLUMNS = ["id", "user_id", "name", "prefix", "state", "created_at", "expires_at", "last_used_at"]
ROLES = ("admin", "operator", "viewer", "member", "owner")
RoleOption = Annotated[str, typer.Option(help="admin (everything), operator (reads and operations), viewer (reads); "
                                              "for an organisation's user: member (reads and pays), owner (also "
                                              "manages its webhook endpoints)")]


def _secret(created: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    show([created], TOKEN_COLUMNS, False, title)
    console.print(f"[bold]Secret (shown once, store it now):[/bold] {created['secret']}")


@users.command("create")
def users_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="Their email (unique)")],
    name: Annotated[str, typer.Option(help="Their name")],
    role: RoleOption,
    organisation_id: Annotated[str | None, typer.Option(help="A member's or owner's organisation")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user. Mint them a token with `billing tokens create`."""
    body: dict[str, Any] = {"email": email, "name": name, "role": role}
    if organisation_id is not None:
        body["organisation_id"] = organisation_id
    user = gateway_of(ctx).request("POST", "/api/v1/admin/users", json=body)
    show([user], USER_COLUMNS, as_json, "User created")


@users.command("list")
def users_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List staff users."""
    rows = list_all(gateway_of(ctx), "/api/v1/admin/users", {})
    show(rows, USER_COLUMNS, as_json, f"{len(rows)} user(s)")


@users.command("update")
def users_update(
    ctx: typer.Context,
    user_id: str,
    role: Annotated[str | None, typer.Option(help="A new role: admin, operator or viewer")] = None,
    name: Annotated[str | None, typer.Option(help="A new name")] = None,
    disable: Annotated[bool | None, typer.Option("--disable/--enable", help="Disable (tokens stop at once)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a user's role or name, or disable/enable them. The last active admin cannot be demoted."""
    body: dict[str, Any] = {}
    if role is not None:
        body["role"] = role
    if name is not None:
        body["name"] = name
    if disable is not None:
        body["disabled"] = disable
    user = gateway_of(ctx).request("PATCH", f"/api/v1/admin/users/{user_id}", json=body)
    show([user], USER_COLUMNS, as_json, "User updated")


@users.command("me")
def users_me(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Who the configured credential acts as, with its role and permissions."""
    me = gateway_of(ctx).request("GET", "/api/v1/admin/me")
    show([{**me, "permissions": ", ".join(me["permissions"])}], ["actor", "role", "permissions", "credential"],
         as_json, "Credential")


@tokens.command("create")
def tokens_create(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Option(help="The user the token acts for (with their role)")],
    name: Annotated[str, typer.Option(help="A label, e.g. where it is used")],
    expires_at: Annotated[datetime | None, typer.Option(help="When it stops working (UTC if no zone)")] = None,
    allowed_cidr: Annotated[list[str] | None, typer.Option(help="A source range it may be used from (repeat)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Mint a token. Its secret is printed now and can never be shown again."""
    body: dict[str, Any] = {"name": name, "allowed_cidrs": allowed_cidr or []}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat() + ("" if expires_at.tzinfo else "Z")
    _secret(gateway_of(ctx).request("POST", f"/api/v1/admin/users/{user_id}/tokens", json=body), as_json,
            "Token created")


@tokens.command("list")
def tokens_list(ctx: typer.Context, user_id: str, as_json: JsonOption = False) -> None:
    """List a user's tokens (without secrets)."""
    rows = list_all(gateway_of(ctx), f"/api/v1/admin/users/{user_id}/tokens", {})
    show(rows, TOKEN_COLUMNS, as_json, f"{len(rows)} token(s)")


@tokens.command("rotate")
def tokens_rotate(
    ctx: typer.Context,
    token_id: str,
    overlap_seconds: Annotated[int, typer.Option(min=0, max=30 * 86_400,
                                                 help="How long the old token keeps working (0: leaked)")] = 86_400,
    as_json: JsonOption = False,
) -> None:
    """Mint the token's successor; the old one works for the overlap, then stops."""
    rotated = gateway_of(ctx).request("POST", f"/api/v1/admin/tokens/{token_id}/rotate",
                                      json={"overlap_seconds": overlap_seconds})
    if as_json:
        typer.echo(json.dumps(rotated, indent=2))
        return
    console.print(f"{token_id} stops working at {rotated['previous']['expires_at']}.", highlight=False)
    _secret(rotated["token"], False, "New token")


@tokens.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: str, as_json: JsonOption = False) -> None:
    """Revoke a token at once."""
    show([gateway_of(ctx).request("POST", f"/api/v1/admin/tokens/{token_id}/revoke")], TOKEN_COLUMNS, as_json,
         "Token revoked")
