"""A bad night for the operator: a database locked elsewhere, a full disk, a broken home.

Each failure is one ``error:`` line that says what to fix, with a non-zero exit code, no
personal data and no traceback; nothing stored is lost or half-written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import hub.store.db as store_db
from hub.errors import StorageError
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.writer import append
from hub.store import migrate
from hub.store.db import Database

NUMBER = "199001012385"  # a Skatteverket test personnummer


def _short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite waits 50 ms, not 30 s, for a lock held elsewhere (engines made from now)."""
    pragmas = store_db._sqlite_pragmas

    def quicker(dbapi_connection: Any, record: Any) -> None:
        pragmas(dbapi_connection, record)
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    monkeypatch.setattr(store_db, "_sqlite_pragmas", quicker)


@pytest.fixture
def held_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A migrated SQLite file on which another program holds a write transaction."""
    _short_busy_timeout(monkeypatch)
    path = tmp_path / "evi.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield path
    finally:
        holder.rollback()
        holder.close()


def test_a_write_lock_held_elsewhere_at_begin_is_said_in_words(held_elsewhere: Path) -> None:
    """``BEGIN IMMEDIATE`` itself finds the lock taken (every ``write_lock`` session):
    the operator's words, not an internal error."""
    db = Database(f"sqlite:///{held_elsewhere}")
    try:
        with pytest.raises(StorageError) as err, db.session(write_lock=True) as session:
            session.execute(text("INSERT INTO hub_meta (key, value) VALUES ('k', 'v')"))
        assert str(err.value).startswith("the database is locked")
        assert "BEGIN" not in str(err.value)
    finally:
        db.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_consent_withdraw_on_a_database_locked_elsewhere_is_an_error_line(
    demo_home: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _short_busy_timeout(monkeypatch)
    holder = sqlite3.connect(demo_home.parent / "evi.db")
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = cli("consent", "withdraw", "--pnr", NUMBER)
    finally:
        holder.rollback()
        holder.close()
    assert result.code == 1
    assert result.err.startswith("error: the database is locked"), result.err
    assert "internal error" not in result.err and NUMBER not in result.err + result.out


def test_a_disk_io_error_opening_a_sqlite_file_names_the_disk_not_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite on a full disk that cannot even make its ``-shm`` file says ``disk I/O
    error`` when opened: the message is about the disk, not a database server."""
    db = Database(f"sqlite:///{tmp_path / 'evi.db'}")

    def full(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(db.engine, "connect", full)
    with pytest.raises(StorageError) as err:
        db.check_connection()
    message = str(err.value)
    assert "free space" in message and str(tmp_path / "evi.db") in message
    assert "server" not in message
    db.dispose()


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"[sync\nmax_attempts = 3\n", "is not valid TOML: Expected ']'"),
        (b"\xff\xfe[sync]\n", "is not UTF-8 text"),
    ],
)
def test_a_config_file_that_is_not_toml_is_named_with_where_it_breaks(
    evi_home: Path, cli: Any, content: bytes, said: str
) -> None:
    (evi_home / "evi.toml").write_bytes(content)
    result = cli("config", "show")
    assert result.code == 2, result.err
    assert result.err.startswith(f"error: the configuration file {evi_home / 'evi.toml'} ")
    assert said in result.err and "internal error" not in result.err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_key_file_of_binary_garbage_is_named_not_an_internal_error(
    demo_home: Path, cli: Any
) -> None:
    key = demo_home / "keys" / "pseudonym.key"
    key.write_bytes(b"\xff\x00\x9c" + NUMBER.encode() + b"\xfe")
    result = cli("keys", "list")
    assert result.code == 2
    assert result.err == f"error: key 'pseudonym' in {key} is not valid base64\n"


def _event() -> LedgerEvent:
    return LedgerEvent(action=Action.DECISION, decision="permit", actor="job:bad-night")


def test_a_ledger_append_that_waits_out_a_lock_held_elsewhere_says_so_in_words(
    held_elsewhere: Path,
) -> None:
    """Before: "the ledger is busy: … open such transactions with
    Database.session(write_lock=True)", a developer's message, for a stuck other program
    (seen running `evi demo` while a database tool held the write lock)."""
    db = Database(f"sqlite:///{held_elsewhere}")
    try:
        with pytest.raises(StorageError) as err, db.session() as session:
            append(session, _event())
        assert str(err.value).startswith("the database is locked"), str(err.value)
    finally:
        db.dispose()


def test_a_ledger_append_on_a_stale_read_snapshot_is_still_named(tmp_path: Path) -> None:
    """SQLite cannot upgrade a read snapshot another writer has moved past: that one, and
    only that one, is the ledger's own busy message."""
    db = Database(f"sqlite:///{tmp_path / 'evi.db'}")
    migrate.upgrade(db)
    try:
        with pytest.raises(StorageError, match="the ledger is busy"), db.session() as reader:
            reader.execute(text("SELECT COUNT(*) FROM hub_meta")).scalar()
            with db.session() as other:
                append(other, _event())
            append(reader, _event())
        with db.session() as session:
            assert session.execute(text("SELECT COUNT(*) FROM ledger_entry")).scalar() == 1
    finally:
        db.dispose()
