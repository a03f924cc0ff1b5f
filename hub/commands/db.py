"""`evi db …`: create and upgrade the schema."""

from __future__ import annotations

from pathlib import Path

import typer

from hub.commands.common import area_app, hub_from, info
from hub.errors import StorageError
from hub.ledger import harden as ledger_harden
from hub.store import migrate
from hub.store.db import loose_permissions, safe_url

db_app = area_app(help="Create, upgrade and inspect the database.", no_args_is_help=True)


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
    warning = loose_permissions(hub.db.url)
    if warning:
        info(f"warning: {warning}")


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the schema revision of the database and of this installation; exit 1 if they
    differ (an upgrade is pending, or the database is of a newer release)."""
    hub = hub_from(ctx)
    hub.db.check_connection()
    typer.echo(f"database: {safe_url(hub.db.url)}")
    revision = migrate.current_revision(hub.db)
    typer.echo(f"revision: {revision or 'none (run evi db upgrade)'}")
    typer.echo(f"newest:   {migrate.head_revision()}")
    problem = migrate.revision_problem(revision)
    if problem is not None:  # for monitoring: the other commands refuse such a database
        raise StorageError(problem)


@db_app.command("backup")
def backup(
    ctx: typer.Context,
    target: Path = typer.Argument(..., help="The file to write (a SQLite database)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """SQLite: a consistent copy of the database, safe while syncs and workers run.

    The copy is checked and written whole (mode 0600) or not at all. The keys are not in
    it: back up `$EVI_HOME/keys` separately. On PostgreSQL use pg_dump.
    """
    from hub.store.backup import backup_sqlite

    hub = hub_from(ctx)
    hub.require_schema()
    done = backup_sqlite(hub.db, target, overwrite=overwrite)
    info(f"backed up {safe_url(hub.db.url)} to {done.path} ({done.bytes / 1e6:.1f} MB, checked)")


@db_app.command("harden")
def harden(
    ctx: typer.Context,
    role: str = typer.Option(..., "--role", help="The role the application connects as."),
    show: bool = typer.Option(False, "--print", help="Only print the SQL, run nothing."),
) -> None:
    """PostgreSQL: make the ledger append-only (revoke UPDATE/DELETE from ROLE, add guards).

    Run as the schema owner after `evi db upgrade`; repeatable. See docs/ledger.md.
    """
    hub = hub_from(ctx)
    if show:
        quoted = hub.db.engine.dialect.identifier_preparer.quote(role)
        statements = ledger_harden.harden_statements(role, quoted)
        typer.echo(";\n".join(s.strip() for s in statements) + ";")
        return
    hub.require_schema()
    ledger_harden.harden(hub.db.engine, role)
    info(f"ledger tables in {safe_url(hub.db.url)} are now append-only for role '{role}'")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
