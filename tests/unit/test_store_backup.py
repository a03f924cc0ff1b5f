"""`evi db backup`: a consistent, checked copy of a running SQLite database that restores
to a verifying ledger; never a half-written or overwritten file by accident."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.errors import ConfigError
from hub.store.backup import backup_sqlite
from hub.store.db import Database


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


@pytest.fixture
def demo_home(cli, evi_home: Path) -> Path:
    result = cli("demo", "--seed", "3", "--population", "40")
    assert result.code == 0, result.err
    return evi_home


def test_a_backup_restores_to_the_same_verifying_log(
    cli, demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "nightly.db"
    made = cli("db", "backup", str(target))
    assert made.code == 0, made.err
    assert "checked" in made.err
    assert target.stat().st_mode & 0o077 == 0
    live = demo_home / "evi.db"
    for table in ("ledger_entry", "record", "outbox", "participant"):
        assert _count(target, table) == _count(live, table) > 0, table

    restored = tmp_path / "restored"
    (restored / "keys").mkdir(parents=True)
    target.rename(restored / "evi.db")
    for key in (demo_home / "keys").iterdir():  # keys are backed up on their own
        (restored / "keys" / key.name).write_bytes(key.read_bytes())
    monkeypatch.setenv("EVI_HOME", str(restored))
    # copied with the umask's mode, others may read them: the hub refuses such keys
    loose = cli("log", "verify")
    assert loose.code == 2 and "may be read by other users (mode 0644)" in loose.err
    assert "chmod 600" in loose.err
    for key in (restored / "keys").iterdir():
        key.chmod(0o600)
    verified = cli("log", "verify")
    assert verified.code == 0, verified.err
    assert "the ledger verifies" in verified.err


def test_an_existing_file_is_kept_unless_overwrite_is_asked(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    target = tmp_path / "nightly.db"
    target.write_text("yesterday\n")
    refused = cli("db", "backup", str(target))
    assert refused.code == 2
    assert "--overwrite" in refused.err
    assert target.read_text() == "yesterday\n"
    replaced = cli("db", "backup", str(target), "--overwrite")
    assert replaced.code == 0, replaced.err
    assert _count(target, "ledger_entry") > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".nightly")] == []


def test_a_backup_taken_during_a_write_holds_only_what_was_committed(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'live.db'}")
    try:
        with db.session() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
        with db.engine.connect() as writer:  # a sync half-way through a batch
            writer.execute(text("INSERT INTO t VALUES (2)"))
            copy = backup_sqlite(db, tmp_path / "copy.db")
            writer.commit()
        assert _count(copy.path, "t") == 1
        assert _count(tmp_path / "live.db", "t") == 2
    finally:
        db.dispose()


def test_a_database_of_the_release_before_is_backed_up_before_its_upgrade(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    """After installing a new release, `evi db upgrade` refuses to run before a backup is
    taken ("back the database up first"): `evi db backup` copies the database as it is,
    of the release before, and the upgrade then goes on."""
    from alembic import command

    from hub.store import migrate

    live = Database(f"sqlite:///{demo_home / 'evi.db'}")
    with live.engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0008")
    live.dispose()
    assert "evi db upgrade" in cli("log", "verify").err  # the new release refuses it
    target = tmp_path / "before-upgrade.db"
    made = cli("db", "backup", str(target))
    assert made.code == 0, made.err
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0008"
    assert _count(target, "record") == _count(demo_home / "evi.db", "record") > 0
    assert cli("db", "upgrade").code == 0
    assert cli("log", "verify").code == 0


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_evi_db_backup_on_postgresql_points_to_pg_dump_whatever_the_schema(
    cli, evi_home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked of a PostgreSQL database, not yet upgraded (no hub tables at all), the answer
    is the tool to use, not `evi db upgrade`."""
    monkeypatch.setenv("EVI_DATABASE_URL", db_url)
    refused = cli("db", "backup", str(evi_home / "copy.db"))
    assert refused.code == 2, refused.err
    assert "pg_dump" in refused.err and "evi db upgrade" not in refused.err
    assert not (evi_home / "copy.db").exists()


def test_postgresql_is_pointed_to_pg_dump(database: Database, tmp_path: Path) -> None:
    if database.dialect == "sqlite":
        pytest.skip("the refusal is PostgreSQL's")
    with pytest.raises(ConfigError, match="pg_dump"):
        backup_sqlite(database, tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()


def test_a_backup_finishes_while_another_connection_keeps_committing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'live.db'}")
    done = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        with db.engine.connect() as conn:
            while not done.is_set():
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": len(written)})
                conn.commit()
                written.append(1)

    try:
        with db.session() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            for start in range(0, 20_000, 1000):
                session.execute(
                    text("INSERT INTO t SELECT value FROM json_each(:xs)"),
                    {"xs": str(list(range(start, start + 1000)))},
                )
        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            while len(written) < 20 and writer.is_alive():  # busy before the backup starts
                threading.Event().wait(0.01)
            assert writer.is_alive(), "the writer stopped before the backup began"
            copy = backup_sqlite(db, tmp_path / "copy.db")
        finally:
            done.set()
            writer.join()
        assert 20_000 <= _count(copy.path, "t") <= 20_000 + len(written)
    finally:
        db.dispose()
