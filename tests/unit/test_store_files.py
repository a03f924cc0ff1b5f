"""The SQLite database holds personal data: its files are its owner's alone, whatever the
umask, and `evi db upgrade` warns about an existing file others can read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.store.db import Database


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: new files readable by everyone
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_a_new_database_and_its_wal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "home" / "evi.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.session(write_lock=True) as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
        with db.engine.connect() as conn:  # while a connection is open the WAL exists
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1
            for name in ("evi.db", "evi.db-wal", "evi.db-shm", "evi.db-writer"):
                assert _mode(path.with_name(name)) == 0o600, name
    finally:
        db.dispose()
    assert _mode(path.parent) == 0o700


@pytest.mark.usefixtures("open_umask")
def test_an_existing_database_keeps_its_mode_and_data(tmp_path: Path) -> None:
    path = tmp_path / "evi.db"
    first = Database(f"sqlite:///{path}")
    with first.session() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (7)"))
    first.dispose()
    path.chmod(0o640)  # say the owner lets a backup group read it
    again = Database(f"sqlite:///{path}")
    try:
        with again.engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM t")).scalar() == 7
    finally:
        again.dispose()
    assert _mode(path) == 0o640


def test_db_upgrade_warns_about_a_database_others_can_read(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    quiet = cli("db", "upgrade")
    assert "warning" not in quiet.err
    (evi_home / "evi.db").chmod(0o644)
    loud = cli("db", "upgrade")
    assert loud.code == 0
    assert "can be read or written by other users (mode 0644)" in loud.err
    assert "chmod 600" in loud.err


@pytest.fixture
def no_umask() -> Iterator[None]:
    old = os.umask(0)  # the worst a service manager could hand the hub
    yield
    os.umask(old)


@pytest.mark.usefixtures("no_umask")
def test_a_home_made_for_the_keys_alone_is_private(
    cli, evi_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the database elsewhere (as on PostgreSQL): the home holds only the keys
    home = tmp_path / "fresh-home"
    (tmp_path / "db").mkdir(mode=0o700)
    monkeypatch.setenv("EVI_HOME", str(home))
    monkeypatch.setenv("EVI_DATABASE_URL", f"sqlite:///{tmp_path / 'db' / 'evi.db'}")
    assert cli("db", "upgrade").code == 0
    assert _mode(home) == 0o700 and _mode(home / "keys") == 0o700


@pytest.mark.usefixtures("no_umask")
def test_the_witness_directory_may_be_written_by_its_owner_only(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # writable by others, anyone could delete the copies that catch a truncated log
    evi_home.chmod(0o700)  # made under this umask by the fixture: the hub would refuse it
    monkeypatch.setenv("EVI_LEDGER__WITNESS_DIR", "witness")
    assert cli("db", "upgrade").code == 0
    assert cli("log", "checkpoint", "--new").code == 0
    assert _mode(evi_home / "witness") == 0o755
