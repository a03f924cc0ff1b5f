"""`evi db …`: create and upgrade the schema."""

from __future__ import annotations

import typer

from hub.commands.common import hub_from, info
from hub.store import migrate
from hub.store.db import safe_url

db_app = typer.Typer(help="Create, upgrade and inspect the database.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create or upgrade the schema to the newest version (safe to repeat), and set up keys."""
    hub = hub_from(ctx)
    before, after = migrate.upgrade(hub.db)
    hub.keys  # noqa: B018 - creates keys on a new database, checks them on an existing one
    where = safe_url(hub.db.url)
    if before == after:
        info(f"database {where} is already at revision {after}")
    else:
        info(f"database {where} upgraded from {before or 'empty'} to {after}")


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the schema revision of the database and of this installation."""
    hub = hub_from(ctx)
    hub.db.check_connection()
    typer.echo(f"database: {safe_url(hub.db.url)}")
    typer.echo(f"revision: {migrate.current_revision(hub.db) or 'none (run evi db upgrade)'}")
    typer.echo(f"newest:   {migrate.head_revision()}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
