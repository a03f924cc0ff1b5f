"""`evi db upgrade` to 0009 on PostgreSQL while something else holds the `record` table.

Revision 0009 rewrites `record` under an ACCESS EXCLUSIVE lock, in the one transaction of
`evi db upgrade` (docs/operations.md, Upgrading the schema). An upgrade that cannot get
that lock (a long read, a transaction left open) or is stopped with Ctrl-C must leave the
database as it was, at 0008, say why, and a later upgrade must complete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sync_support import sync_options

from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget
from hub.store import migrate
from hub.sync.job import run_sync

POSTGRES = [pytest.param("postgres", marks=pytest.mark.postgres)]


def _at_0008_with_records(demo: Hub, targets: dict[str, SandboxTarget]) -> dict[str, int]:
    """A night's records stored, the schema taken down to 0008; the rows of each table."""
    from alembic import command

    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    with demo.db.engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0008")
    return _rows(demo)


def _rows(demo: Hub) -> dict[str, int]:
    with demo.db.engine.connect() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
        return {
            t: connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables
        }


def _schema(demo: Hub) -> tuple[str | None, set[str], set[str]]:
    with demo.db.engine.connect() as connection:
        found = inspect(connection)
        return (
            migrate.stored_revision(connection),
            {c["name"] for c in found.get_columns("record")},
            {i["name"] or "" for i in found.get_indexes("record")},
        )


@contextmanager
def _record_held(url: str) -> Iterator[Connection]:
    """Another session's open transaction that has read `record` (ACCESS SHARE), as a long
    report or a transaction left open in psql holds it."""
    engine = create_engine(url)
    try:
        with engine.connect() as holder, holder.begin():
            holder.execute(text("LOCK TABLE record IN ACCESS SHARE MODE"))
            yield holder
    finally:
        engine.dispose()


def _completes_afterwards(demo: Hub, cli: Any, before: dict[str, int]) -> None:
    assert _schema(demo)[0] == "0008"
    result = cli("db", "upgrade")
    assert result.code == 0, result.err
    assert "upgraded from 0008 to 0009" in result.err + result.out
    revision, columns, indexes = _schema(demo)
    assert revision == migrate.HEAD and "walk" in columns and "ix_record_walk" in indexes
    assert _rows(demo) == before
    with demo.db.engine.connect() as connection:
        walked = connection.execute(
            text("SELECT count(*) FROM record WHERE kind IN ('referral', 'closure')")
        ).scalar_one()
        filled = connection.execute(text("SELECT count(*) FROM record WHERE walk IS NOT NULL"))
        assert walked > 0 and filled.scalar_one() == walked


@pytest.mark.parametrize("db_url", POSTGRES, indirect=True)
def test_an_upgrade_kept_from_the_record_table_says_why_and_leaves_0008_whole(
    demo: Hub,
    targets: dict[str, SandboxTarget],
    cli: Any,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _at_0008_with_records(demo, targets)
    demo.db.dispose()
    monkeypatch.setattr("hub.store.db.LOCK_TIMEOUT_SECONDS", 1)  # the hub's is 60 s
    with _record_held(db_url):
        result = cli("db", "upgrade")
    assert result.code == 1
    assert "another database session has held a lock this command needs" in result.err
    assert "nothing of this one was kept" in result.err
    revision, columns, indexes = _schema(demo)
    assert (revision, "walk" in columns, "ix_record_walk" in indexes) == ("0008", False, False)
    assert _rows(demo) == before
    _completes_afterwards(demo, cli, before)


def _waiting_for_record(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted "
                        "AND mode = 'AccessExclusiveLock' AND relation = 'record'::regclass"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", POSTGRES, indirect=True)
def test_an_upgrade_stopped_with_ctrl_c_leaves_0008_whole_and_can_run_again(
    demo: Hub, targets: dict[str, SandboxTarget], cli: Any, db_url: str
) -> None:
    before = _at_0008_with_records(demo, targets)
    demo.db.dispose()
    env = {**os.environ, "EVI_DATABASE_URL": db_url}
    with _record_held(db_url):
        child = subprocess.Popen(
            [sys.executable, "-m", "hub", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(600):  # until it waits for the lock, inside its transaction
                if child.poll() is not None or _waiting_for_record(db_url):
                    break
                time.sleep(0.05)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 130  # as for Ctrl-C in any command (no traceback)
    assert "Traceback" not in err and "internal error" not in err
    revision, columns, indexes = _schema(demo)
    assert (revision, "walk" in columns, "ix_record_walk" in indexes) == ("0008", False, False)
    assert _rows(demo) == before
    _completes_afterwards(demo, cli, before)
