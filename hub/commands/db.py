"""`evi db …`: create and upgrade the schema."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hub.commands.common import area_app, hub_from, info
from hub.errors import StorageError
from hub.ledger import harden as ledger_harden
from hub.store import migrate
from hub.store.db import loose_permissions, safe_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.settings import Settings

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
    from hub.store.backup import backup_sqlite, require_sqlite

    hub = hub_from(ctx)
    require_sqlite(hub.db)
    # of any release: the copy `evi db upgrade` asks for is taken before upgrading
    hub.require_schema(any_revision=True)
    done = backup_sqlite(hub.db, target, overwrite=overwrite)
    info(f"backed up {safe_url(hub.db.url)} to {done.path} ({done.bytes / 1e6:.1f} MB, checked)")


@db_app.command("copy")
def copy_to(
    ctx: typer.Context,
    to: str = typer.Option(
        ...,
        "--to",
        help="The new, empty PostgreSQL database: postgresql+psycopg://USER@HOST:PORT/DB, as "
        "its owner (docs/operations.md). Give '-' to type it unseen or read it from standard "
        "input, so that a password in it stays out of the process list and the shell's "
        "history (or keep the password in ~/.pgpass).",
    ),
    batch_size: int = typer.Option(
        1000, "--batch-size", min=1, max=100_000, help="Rows read and written at a time."
    ),
) -> None:
    """Copy this hub's database (normally SQLite) into an empty PostgreSQL database.

    Every row of every table, in one transaction: the schema by the hub's own migrations,
    the sequences set past the copied ids, the row counts compared and the transfer log
    verified there (same root) before the commit; if anything fails, nothing is kept. Stop
    the sync timer, the workers and the web server first; the copy refuses while a sync
    runs. The keys stay in `$EVI_HOME`: the copy needs the same ones. See
    docs/operations.md, Moving from SQLite to PostgreSQL.
    """
    from hub.store.copy import copy_database, source_revision_of, target_url
    from hub.sync.lock import require_no_sync

    url = _url_from_stdin() if to == "-" else to
    target_url(url)  # a URL that is no PostgreSQL one is refused before anything is opened
    hub = hub_from(ctx)
    settings = hub.settings
    source_revision_of(hub.db)
    hub.keys  # noqa: B018 - the keys in $EVI_HOME are the ones the database was written with
    report = copy_database(
        hub.db,
        url,
        batch_size=batch_size,
        guard=lambda: require_no_sync(hub.db, "`evi db copy`"),
        check=lambda source, target: _verify_copied_log(settings, source, target),
        progress=_progress(),
    )
    typer.echo(f"copied {report.source} to {report.target} (schema revision {report.revision})")
    width = max(len(t.name) for t in report.tables)
    for table in report.tables:
        typer.echo(f"  {table.name:<{width}}  {table.rows:>12,}")
    typer.echo(f"  {len(report.tables)} tables, {report.rows:,} rows; row counts equal")
    typer.echo(f"sequences set past the copied ids: {', '.join(report.sequences) or 'none'}")
    if report.checked:
        typer.echo(report.checked)
    typer.echo(
        "next: stop using the old database; set database_url (evi.toml) or EVI_DATABASE_URL "
        "to the new one as the application role (postgresql+psycopg://evi@HOST/DB); keep "
        "$EVI_HOME/keys and ledger-signing.key as they are; as the owner run `evi db harden "
        "--role evi`; then `evi db status` and `evi log verify` as evi, and start the timer, "
        "the workers and the web server (docs/operations.md)"
    )


def _url_from_stdin() -> str:
    """The target URL typed at a hidden prompt (a terminal) or the first line of stdin."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("target database URL: ").strip()
    return sys.stdin.readline().strip()


def _progress() -> Callable[[str, int, int], None]:
    """Progress per table on stderr: a line that counts up on a terminal, else one line
    per table once it is copied (a log stays short)."""
    live = sys.stderr.isatty()

    def show(table: str, done: int, total: int) -> None:
        if live:
            end = "\n" if done >= total else ""
            sys.stderr.write(f"\rcopying {table}: {done:,} of {total:,} rows{end}")
            sys.stderr.flush()
        elif done >= total:
            info(f"copied {table}: {total:,} rows")

    return show


def _verify_copied_log(settings: Settings, source: Session, target: Session) -> str:
    """The transfer log on the target, verified as `evi log verify` does (entries, tree,
    signed checkpoints, witness copies), inside the copy's transaction; its size and root
    must be the source's. :class:`LedgerIntegrityError` (exit 4) rolls the copy back."""
    from hub.ledger.service import verify_in
    from hub.ledger.tree import StoredTree
    from hub.ledger.verify import LedgerIntegrityError

    report = verify_in(target, settings)
    worst = report.first_problem
    if worst is not None:
        raise LedgerIntegrityError(
            f"the copied transfer log does not verify: {worst}; nothing was kept. Run `evi "
            "log verify` on this database: if it fails too, deal with that first "
            "(docs/ledger.md)"
        )
    size, root = StoredTree(source).size(), StoredTree(source).root()
    copied_size, copied_root = StoredTree(target).size(), StoredTree(target).root()
    if (size, root) != (copied_size, copied_root):
        raise LedgerIntegrityError(
            f"the copied transfer log (size {copied_size}, root {copied_root.hex()[:16]}…) is "
            f"not the source's (size {size}, root {root.hex()[:16]}…); nothing was kept"
        )
    return (
        f"transfer log verified on the target: {report.size:,} entries, signed checkpoints: "
        f"{report.checkpoints}, witness copies: {report.witness_copies}; root {root.hex()} as "
        "in the source"
    )


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
