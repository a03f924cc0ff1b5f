"""SQLite writers in several processes take turns at the write lock (hub.store.db)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.store.db import Database

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forks writer processes")


def _turn_taken(database_file: Path) -> bool:
    """Whether some writer holds the turn now (a non-blocking try at the turn's file lock)."""
    fd = os.open(f"{database_file}-writer", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_write_transaction_holds_the_turn_and_a_read_does_not(tmp_path: Path) -> None:
    """Every writer of the file, in any process, waits for the turn this one holds; the
    operating system would hand it on at once (no SQLite busy-handler sleeps)."""
    path = tmp_path / "turns.db"
    database = Database(f"sqlite:///{path}")
    with database.session() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        assert not _turn_taken(path)
    with database.session(write_lock=True) as session:
        assert _turn_taken(path)
        session.execute(text("INSERT INTO t (x) VALUES (1)"))
    assert not _turn_taken(path)
    with pytest.raises(RuntimeError), database.session(write_lock=True):
        raise RuntimeError("the transaction failed")
    assert not _turn_taken(path), "a failed transaction kept the turn"
    database.dispose()


def test_a_writer_killed_during_its_turn_holds_nobody_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    database = Database(url)
    with database.session() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import time
        from sqlalchemy import text
        from hub.store.db import Database

        with Database({url!r}).session(write_lock=True) as session:
            session.execute(text("INSERT INTO t (x) VALUES (1)"))
            open({str(ready)!r}, "w").close()
            time.sleep(120)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.05)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with database.session(write_lock=True) as session:  # the turn is free again
            session.execute(text("INSERT INTO t (x) VALUES (2)"))
        with database.session() as session:
            rows = session.execute(text("SELECT x FROM t")).scalars().all()
        assert rows == [2], "the killed writer's uncommitted row survived"
    finally:
        if holder.poll() is None:
            holder.kill()
        database.dispose()


def test_a_forked_helper_opens_its_own_connections_with_the_cache_it_asks_for(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'helper.db'}")
    with database.session() as session:
        parents = session.connection().connection.dbapi_connection
        assert session.execute(text("PRAGMA cache_size")).scalar() == -65536
    database.after_fork(page_cache_kib=1024)
    with database.session(write_lock=True) as session:
        assert session.connection().connection.dbapi_connection is not parents
        assert session.execute(text("PRAGMA cache_size")).scalar() == -1024
    database.dispose()
