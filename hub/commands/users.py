"""`evi users …`: the people who may sign in to the web pages and JSON API.

A token is printed once, when it is issued (`add`, `token`, `enable`); only its SHA-256 is
stored, so it can never be shown again. `list` never prints tokens or their digests.
"""

from __future__ import annotations

import typer

from hub.commands.common import area_app, hub_from, info, print_json
from hub.ledger.service import ACTOR_HELP, cli_actor
from hub.web.users import (
    IssuedToken,
    Role,
    add_user,
    disable_user,
    enable_user,
    list_users,
    replace_token,
)

users_app = area_app(
    help="Web users: add, list, disable, enable again, issue a new token.", no_args_is_help=True
)

ROLE_HELP = "caseworker, privacy_officer, steering_group or administrator."


def _show_token(issued: IssuedToken, what: str) -> None:
    typer.echo(issued.token)
    info(
        f"{what} for '{issued.user.name}' ({issued.user.party}, {issued.user.role.value}). "
        "This token cannot be shown again: hand it to the user now, over a safe channel"
    )


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's name, e.g. anna.af."),
    party: str = typer.Option(..., "--party", help="The user's party (kommun, af, fk, …)."),
    role: Role = typer.Option(..., "--role", help=ROLE_HELP),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Add a web user and print their token (once, on stdout)."""
    _show_token(add_user(hub_from(ctx), name, party, role, actor=cli_actor(actor)), "token")


@users_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array (stable fields)."),
) -> None:
    """Show every web user: name, party, role, created, last used, status. Never a token.

    LAST USED is when they last signed in or used their token (to the hour): for the
    periodic review of who still needs access."""
    users = list_users(hub_from(ctx))
    if as_json:
        print_json([u.as_json() for u in users])
        return
    rows = [("NAME", "PARTY", "ROLE", "CREATED", "LAST USED", "STATUS")]
    for u in users:
        status = "active" if u.active else f"disabled {u.disabled_at:%Y-%m-%d}"
        used = f"{u.last_used_at:%Y-%m-%d}" if u.last_used_at else "never"
        rows.append((u.name, u.party, u.role.value, f"{u.created_at:%Y-%m-%d}", used, status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not users:
        info("no web users yet; add one with `evi users add NAME --party P --role R`")


@users_app.command("disable")
def disable(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's name."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Disable a web user: their token stops working at once.

    `evi users enable NAME` lets them sign in again, with a new token."""
    user = disable_user(hub_from(ctx), name, actor=cli_actor(actor))
    info(f"user '{user.name}' is disabled; their token no longer works")


@users_app.command("enable")
def enable(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's name."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Make a disabled user active again with a new token (printed once).

    The token they had when they were disabled never works again."""
    _show_token(
        enable_user(hub_from(ctx), name, actor=cli_actor(actor)),
        "new token (the user is active again; their old token still does not work)",
    )


@users_app.command("token")
def token(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's name."),
    actor: str | None = typer.Option(None, "--actor", help=ACTOR_HELP),
) -> None:
    """Issue a new token for an active user (print it once); the old token stops working.

    A disabled user is refused: `evi users enable NAME` gives them a new token."""
    _show_token(
        replace_token(hub_from(ctx), name, actor=cli_actor(actor)),
        "new token (the old one no longer works)",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
