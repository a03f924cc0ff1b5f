"""`evi sync` on PostgreSQL while the server ends its connections (a restart, a fail-over,
a DBA's ``pg_terminate_backend``): mid-pull, mid-delivery and as the run releases its
locks. A run the database failed ends with exit 1 and words naming the database (never
"internal error" or "a fault in the connector"), nothing of the step it was in is kept,
and the next `evi sync` completes with `evi log verify` passing; a run that had done all
its work when the server went away keeps its report and exit code.

Each cut is real and made just before a chosen statement (:mod:`test_database_away_support`);
the commands run in this process, against the in-process sandboxes (``--sandbox``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from test_database_away_support import POSTGRES_ONLY, cut_before

from hub.errors import StorageError
from hub.sync import lock

SEED, POPULATION = "7", "10"


@pytest.fixture
def night(evi_home: Path, db_url: str, cli: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The demo's caseload, its authorities not yet asked; ``sql(query)`` reads the
    database on a connection of its own."""
    monkeypatch.setenv("EVI_DATABASE_URL", db_url)
    monkeypatch.setenv("EVI_SYNC__HELPERS", "0")
    setup = cli("demo", "--setup-only", "--seed", SEED, "--population", POPULATION)
    assert setup.code == 0, setup.err
    engine = create_engine(db_url)
    yield lambda query: engine.connect().__enter__().execute(text(query)).all()
    engine.dispose()


def nth_of(n: int, *parts: str) -> Callable[[str], bool]:
    """The ``n``-th statement (from 1) that holds every one of ``parts``."""
    seen = [0]

    def test(sql: str) -> bool:
        if all(part in sql for part in parts):
            seen[0] += 1
            return seen[0] == n
        return False

    return test


def _said(result: Any) -> str:
    return result.out + result.err


def _names_the_server(said: str, start: str) -> bool:
    """Whether a line of ``said`` starts with ``start`` and then says the database server
    closed or lost the connection (which of the two depends on when the driver reads)."""
    return any(
        line.startswith(start + "the database server closed the connection; ")
        or line.startswith(start + "lost the connection to the database server; ")
        for line in said.splitlines()
    )


def _healthy(said: str) -> None:
    assert "internal error" not in said and "unexpected" not in said, said
    assert "Traceback" not in said and "a fault in the connector" not in said, said


@POSTGRES_ONLY
def test_a_sync_cut_mid_pull_and_then_mid_delivery_says_so_and_the_next_one_completes(
    night: Any, cli: Any
) -> None:
    sql = night
    # mid-pull: the second connector's batch, as it is stored
    with cut_before(Engine, nth_of(2, "INSERT INTO record")) as cut:
        pulled = cli("sync", "--sandbox", "--queue-only")
    assert cut and pulled.code == 1, _said(pulled)
    _healthy(_said(pulled))
    [failed] = [line.split()[0] for line in pulled.out.splitlines() if " failed " in line]
    assert _names_the_server(pulled.out, f"{failed}: ")  # its line says what happened
    # nothing of that batch: no record, no cursor, nothing queued; the log verifies
    assert sql(f"SELECT count(*) FROM record WHERE source = '{failed}'") == [(0,)]
    assert sql(f"SELECT count(*) FROM sync_cursor WHERE connector = '{failed}'") == [(0,)]
    stored_by_others = sql("SELECT count(*) FROM record")[0][0]
    assert stored_by_others > 0  # the connectors pulled before it kept theirs
    assert cli("log", "verify").code == 0

    # mid-delivery: the next claim, after the first round of pushes
    claim = nth_of(2, "FROM outbox WHERE status", "FOR UPDATE SKIP LOCKED")
    with cut_before(Engine, claim) as cut:
        delivering = cli("sync", "--sandbox")
    assert cut and delivering.code == 1, _said(delivering)
    _healthy(_said(delivering))
    assert _names_the_server(delivering.err.strip().splitlines()[-1], "error: ")
    # the pushes made before the cut are recorded, each with its entry in the log
    delivered = sql("SELECT count(*) FROM outbox WHERE status = 'delivered'")[0][0]
    assert delivered > 0
    logged = "SELECT count(*) FROM ledger_entry WHERE action = 'delivery' AND outcome = 'success'"
    assert sql(logged) == [(delivered,)]
    assert cli("log", "verify").code == 0

    after = cli("sync", "--sandbox")  # the server answers again
    assert after.code == 0, _said(after)
    assert sql("SELECT count(*) FROM outbox WHERE status <> 'delivered'") == [(0,)]
    assert sql(f"SELECT count(*) FROM record WHERE source = '{failed}'")[0][0] > 0
    assert sql(logged) == sql("SELECT count(*) FROM outbox")  # each delivered once, logged
    assert cli("log", "verify").code == 0


@POSTGRES_ONLY
def test_a_run_that_did_its_work_keeps_its_report_when_its_locks_cannot_be_released(
    night: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes away as the run ends. Before: the release's error replaced the
    run's outcome: no report, exit 1 and "nothing of this one was kept", for a night that
    had stored, delivered and logged everything."""
    sql = night
    monkeypatch.setattr(lock, "RELEASE_WAITS", (0.0, 0.0, 0.0))  # not 1 s and 3 s
    release = nth_of(1, "DELETE FROM sync_lock")
    with cut_before(Engine, release) as cut:
        ended = cli("sync", "--sandbox")
    assert cut and ended.code == 0, _said(ended)  # released on a new connection
    assert "connector  status" in ended.out and "error:" not in ended.err
    assert sql("SELECT count(*) FROM sync_lock") == [(0,)]

    # the server stays away for every try: the locks are left, and the run says until when
    with cut_before(Engine, lambda s: "DELETE FROM sync_lock" in s, times=3) as cut:
        stayed = cli("sync", "--sandbox")
    assert len(cut) == 3 and stayed.code == 0, _said(stayed)
    assert "connector  status" in stayed.out and "error:" not in stayed.err
    [warning] = [line for line in stayed.err.splitlines() if "hub.sync.lock" in line]
    assert (
        "WARNING hub.sync.lock: the sync locks of af, fk, kommun, region could not be " in warning
    )
    assert "database server" in warning and (
        "): a sync on this host takes them over once this process has ended, one on another "
        "host when their lease ends (" in warning
    )
    assert sql("SELECT count(*) FROM sync_lock") == [(4,)]
    assert cli("log", "verify").code == 0


@POSTGRES_ONLY
def test_a_connection_ended_as_the_database_is_checked_is_not_a_wrong_url(hub: Any) -> None:
    """Every command and worker round, and `evi sync` several times, first checks that the
    database answers. A server that took the connection and then ended it (restarting)
    was reported as one that cannot be reached: "cannot reach the database at URL:
    terminating connection due to administrator command. Check EVI_DATABASE_URL…", which
    sent the operator to the URL (seen twice in 14 runs of `evi sync` whose connections
    were ended at random moments)."""
    checked = cut_before(hub.db.engine, lambda sql: sql == "SELECT 1")
    with checked as cut, pytest.raises(StorageError) as err:
        hub.require_schema()
    assert cut
    assert _names_the_server(err.value.message, "")
    assert "EVI_DATABASE_URL" not in err.value.message
    hub.require_schema()  # it answers again
