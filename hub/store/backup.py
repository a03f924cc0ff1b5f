"""An online backup of the SQLite database: a consistent copy while syncs and workers run.

Copying ``evi.db`` with ``cp`` while the hub runs is not a backup: recent commits may
still be in ``evi.db-wal``, and a copy taken mid-write can be torn. SQLite's online
backup API (Python's ``sqlite3.Connection.backup``) copies a consistent snapshot page by
page, and the copy is checked with ``PRAGMA quick_check`` before it is put in place. On
PostgreSQL, use ``pg_dump`` (docs/operations.md).

The copy is written beside the target and put in place only when it is complete and
checked (:func:`hub.files.staged`), mode 0600: it holds the same personal data as the
database.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hub.errors import ConfigError, InputError
from hub.files import staged
from hub.store.db import Database

ALL_PAGES = -1
"""The copy is made in one step, inside one read transaction. In WAL mode (the hub's)
that blocks no writer, and it is the only way a copy of a database that a sync keeps
writing to ever finishes: a step-by-step backup starts again whenever another
connection writes between two steps."""


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int


def require_sqlite(db: Database) -> None:
    """Refuse PostgreSQL, pointing to its own tool, before anything else is checked."""
    if db.dialect != "sqlite":
        raise ConfigError(
            "`evi db backup` copies a SQLite database; for PostgreSQL use pg_dump "
            "(see docs/operations.md)"
        )


def backup_sqlite(db: Database, target: Path, *, overwrite: bool = False) -> Backup:
    """Copy ``db`` to ``target`` (see the module docstring)."""
    require_sqlite(db)
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists; choose a new file name or pass --overwrite")
    with staged(target) as staging:
        raw = db.engine.raw_connection()
        try:
            source = raw.driver_connection
            assert isinstance(source, sqlite3.Connection)
            copy = sqlite3.connect(staging)
            try:
                source.backup(copy, pages=ALL_PAGES)
                verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                copy.close()
        finally:
            raw.close()
        if verdict != "ok":
            raise InputError(f"the copy failed SQLite's quick_check ({verdict}); nothing kept")
    return Backup(target, target.stat().st_size)
