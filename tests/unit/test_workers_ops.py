"""Running workers in production: hosts whose clocks disagree, leases that run out while a
push is under way.

An operations engineer relies on one transfer being pushed by one worker at a time, and
counted and given its state once, whatever the clocks of the hosts the workers run on
say; and on a worker on a host whose clock is behind still seeing the work that is due.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text, update
from sqlalchemy.engine import make_url
from sync_support import received, sync_options

from hub.commands import sync as sync_commands
from hub.connector.errors import TransientConnectorError
from hub.connector.service import build_connector
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget, transports
from hub.errors import LockHeldError, StorageError
from hub.settings import get_settings
from hub.store import db as store_db
from hub.store.db import Database
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.sync import OutboxItem
from hub.sync import delivery, inbound, lock, outbox
from hub.sync import history as history_module
from hub.sync.delivery import Deliverer
from hub.sync.history import history, retry
from hub.sync.job import run_sync
from hub.sync.lock import SyncLocks
from hub.sync.outbox import DEAD, DELIVERED, PENDING, OutboxRepository

POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
RECIPIENT = "fk"  # the authority most transfers of the demo's caseload go to


def _skewed(off: timedelta) -> type[datetime]:
    real = datetime

    class Skewed(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real.now(tz) + off

    return Skewed


def host_clock(monkeypatch: pytest.MonkeyPatch, off: timedelta) -> None:
    """This host's clock ``off`` from the true time (the database server's clock is not)."""
    for module in (delivery, inbound, outbox, lock):
        monkeypatch.setattr(module, "datetime", _skewed(off))


@contextmanager
def connector(hub: Hub, targets: dict[str, SandboxTarget]) -> Iterator[Any]:
    with build_connector(hub, RECIPIENT, transport=transports(targets)[RECIPIENT]) as built:
        yield built


def worker(hub: Hub, built: Any, **kwargs: Any) -> Deliverer:
    return Deliverer(hub, {RECIPIENT: built}, actor="evi-worker", max_attempts=5, **kwargs)


def delivers_all(hub: Hub, targets: dict[str, SandboxTarget], queued: int) -> None:
    """A worker round delivers every one of the ``queued`` transfers to RECIPIENT, and
    nothing is left in another state."""
    with connector(hub, targets) as built:
        counts = worker(hub, built).run()[RECIPIENT]
    assert counts.delivered == queued
    assert statuses(hub) == {DELIVERED: queued}


def statuses(hub: Hub) -> dict[str, int]:
    with hub.db.session() as session:
        rows = session.execute(
            select(OutboxItem.status, func.count())
            .where(OutboxItem.recipient == RECIPIENT)
            .group_by(OutboxItem.status)
        ).all()
    return {status: int(n) for status, n in rows}


def built_for(hub: Hub, targets: dict[str, SandboxTarget]) -> Any:
    return build_connector(hub, RECIPIENT, transport=transports(targets)[RECIPIENT])


def serve_until_warned(
    hub: Hub,
    built: Any,
    monkeypatch: pytest.MonkeyPatch,
    on_serving: Callable[[], None] | None = None,
) -> str:
    """`evi worker` serving ``built`` (none if ``None``) until it writes its first
    warning; that line. ``on_serving`` runs once it says what it serves."""
    stop = threading.Event()
    lines: list[str] = []

    def info(line: str) -> None:
        lines.append(line)
        if line.startswith("worker serves") and on_serving is not None:
            on_serving()
        if line.startswith("warning:"):
            stop.set()

    monkeypatch.setattr(sync_commands, "info", info)
    monkeypatch.setattr(
        sync_commands, "_worker_connectors", lambda *_a, **_k: {RECIPIENT: built} if built else {}
    )
    sync_commands.serve(hub, stop, once=False, poll=0.1, lease=timedelta(minutes=10))
    return next(line for line in lines if line.startswith("warning:"))


@pytest.fixture
def queued(demo: Hub, targets: dict[str, SandboxTarget]) -> int:
    """The night's transfers queued (`evi sync --queue-only`); how many go to RECIPIENT."""
    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    waiting = statuses(demo).get(PENDING, 0)
    assert waiting > 5, "too little queued for the authority"
    return waiting


@POSTGRES_ONLY
def test_a_worker_on_a_host_two_hours_ahead_leaves_a_live_lease_alone(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a worker read leases by its own host's clock, so one on a host two hours
    ahead took over every transfer another worker had just claimed (leases of 10 minutes)
    and pushed it a second time while the first was still pushing it."""
    with demo.db.session() as session:  # the worker on the host with the right time
        claimed = OutboxRepository(session).claim(datetime.now(UTC), timedelta(minutes=10), 10_000)
    assert len([i for i in claimed if i.recipient == RECIPIENT]) == queued

    host_clock(monkeypatch, timedelta(hours=2))
    with connector(demo, targets) as built:
        counts = worker(demo, built).run()[RECIPIENT]

    assert counts.delivered == 0
    assert received(targets[RECIPIENT])["unique"] == 0
    assert statuses(demo) == {PENDING: queued}


@POSTGRES_ONLY
@pytest.mark.parametrize("off", [timedelta(minutes=-5), timedelta(hours=-2)])
def test_a_worker_on_a_host_whose_clock_is_behind_delivers_what_is_due(
    demo: Hub,
    targets: dict[str, SandboxTarget],
    queued: int,
    monkeypatch: pytest.MonkeyPatch,
    off: timedelta,
) -> None:
    """Before: a worker whose host's clock was behind the one that queued the transfers
    found none of them due, and delivered nothing until its clock caught up."""
    host_clock(monkeypatch, off)
    delivers_all(demo, targets, queued)


@POSTGRES_ONLY
def test_dead_letters_retried_on_a_host_whose_clock_is_ahead_are_due_at_once(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evi transfers retry --all` (and the admin page's retry) on a host two hours ahead
    of the database server. Before: the transfers were stamped due by that host's clock,
    and workers waited two hours for them."""
    with demo.db.session() as session:
        session.execute(update(OutboxItem).values(status=DEAD, attempts=5))
    with monkeypatch.context() as ahead:
        ahead.setattr(history_module, "datetime", _skewed(timedelta(hours=2)))
        assert retry(demo, None, recipient=RECIPIENT) == queued
    delivers_all(demo, targets, queued)


@POSTGRES_ONLY
def test_transfers_queued_on_a_host_whose_clock_is_ahead_are_delivered_at_once(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evi sync --queue-only` runs on a host five minutes ahead of the database server;
    a worker on a host with the right time delivers what it queued at once. Before: they
    waited until the database's time reached the sync host's."""
    with monkeypatch.context() as ahead:
        host_clock(ahead, timedelta(minutes=5))
        assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    queued = statuses(demo)[PENDING]
    delivers_all(demo, targets, queued)


@POSTGRES_ONLY
def test_a_sync_on_a_host_whose_clock_is_ahead_delivers_what_it_queued(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync that queues and delivers by itself, on a host five minutes ahead of the
    database server, delivers its own night's transfers (the database's clock, by which
    it reads what is due, must not leave them for the next night)."""
    host_clock(monkeypatch, timedelta(minutes=5))
    report = run_sync(demo, sync_options(targets))
    assert report.exit_code == 0
    assert sum(entry.delivered for entry in report.connectors) > 0
    assert PENDING not in statuses(demo)


@POSTGRES_ONLY
def test_a_sync_on_a_host_two_hours_ahead_does_not_take_over_a_live_sync_lock(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `evi sync` on a host two hours ahead found the lock of a sync running on
    another host (its lease an hour, renewed every minute) run out, took it over, and the
    two synced the connector at once until the first stopped with exit 3."""
    SyncLocks(hub.db).take("af")
    host_clock(monkeypatch, timedelta(hours=2))
    with pytest.raises(LockHeldError, match="already being synced"):
        SyncLocks(hub.db).take("af")


@POSTGRES_ONLY
def test_a_sync_on_a_host_two_hours_behind_holds_a_lock_the_others_see_as_held(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: its lease (an hour from its own clock) had run out an hour ago for every
    other host, so any other run took its lock over at once."""
    with monkeypatch.context() as behind:
        host_clock(behind, timedelta(hours=-2))
        SyncLocks(hub.db).take("af")
    with pytest.raises(LockHeldError, match="already being synced"):
        SyncLocks(hub.db).take("af")


def test_a_push_that_outlasts_its_lease_does_not_overwrite_the_claim_that_took_it_over(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker's push outlasts its lease (a slow authority) and another worker claims the
    same transfers and delivers them; then the first push fails. Before: the first worker
    wrote its retry over the other's `delivered`, so each transfer was pushed a third
    time later, and counted twice when both pushes got through."""
    start = datetime.now(UTC)
    lease = timedelta(minutes=10)
    later = start + lease + timedelta(seconds=1)  # the first worker's lease has run out
    taken_over: dict[str, int] = {}

    with connector(demo, targets) as slow, connector(demo, targets) as other:
        original = slow.push_many

        def push_many(transfers: Any) -> Any:
            if not taken_over:  # meanwhile, another worker claims and delivers them
                counts = worker(demo, other, clock=lambda: later).run()[RECIPIENT]
                taken_over["delivered"] = counts.delivered
            original(transfers)
            raise TransientConnectorError(RECIPIENT, "the answer was lost")

        slow.push_many = push_many
        caplog.set_level("WARNING", logger="hub.sync.delivery")
        first = worker(demo, slow, clock=lambda: start, lease=lease, batch=10_000).run()

    assert taken_over["delivered"] == queued
    assert statuses(demo) == {DELIVERED: queued}  # not pending again, to be pushed again
    assert (first[RECIPIENT].delivered, first[RECIPIENT].retried) == (0, 0)
    assert any("outlasted their lease" in r.getMessage() for r in caplog.records)
    assert received(targets[RECIPIENT])["unique"] == queued


def test_a_push_that_outlasts_its_lease_is_counted_once(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int
) -> None:
    """Both pushes get through (the authority recognises the second by its key). Before:
    both workers counted every transfer delivered, so their lines added up to twice the
    night's transfers."""
    start = datetime.now(UTC)
    lease = timedelta(minutes=10)
    later = start + lease + timedelta(seconds=1)
    taken_over: dict[str, int] = {}

    with connector(demo, targets) as slow, connector(demo, targets) as other:
        original = slow.push_many

        def push_many(transfers: Any) -> Any:
            if not taken_over:
                counts = worker(demo, other, clock=lambda: later).run()[RECIPIENT]
                taken_over["delivered"] = counts.delivered
            return original(transfers)

        slow.push_many = push_many
        first = worker(demo, slow, clock=lambda: start, lease=lease, batch=10_000).run()

    assert taken_over["delivered"] + first[RECIPIENT].delivered == queued
    assert statuses(demo) == {DELIVERED: queued}


@POSTGRES_ONLY
def test_a_transaction_left_open_on_the_outbox_stops_a_worker_with_a_clear_error(
    demo: Hub,
    targets: dict[str, SandboxTarget],
    queued: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DBA's `BEGIN; LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE;` left open in psql.
    Before: a worker waited in its claim, silent and deaf to SIGTERM, for as long as the
    transaction stayed open (here until the server ends it, idle, after 15 s). Now it
    gives up after lock_timeout and says why (the long-running worker tries again)."""
    monkeypatch.setattr(store_db, "LOCK_TIMEOUT_SECONDS", 1, raising=False)
    demo.db.engine.dispose()  # connections made from now on get it
    dba = create_engine(demo.db.url)
    try:
        with dba.connect() as psql:
            psql.execute(text("SET idle_in_transaction_session_timeout = '15s'"))
            psql.execute(text("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE"))
            with connector(demo, targets) as built, pytest.raises(StorageError) as raised:
                worker(demo, built).run()
            assert raised.value.message.startswith(
                "another database session has held a lock this command needs"
            )
            assert "pg_stat_activity" in raised.value.message
            said = serve_until_warned(demo, built_for(demo, targets), monkeypatch)
            assert said.startswith(
                "warning: another database session has held a lock this command needs"
            )
            assert said.endswith("the worker tries again in 0 s")
            psql.rollback()
    finally:
        dba.dispose()
    assert statuses(demo) == {PENDING: queued}  # nothing claimed meanwhile


@pytest.mark.parametrize("wrapped", [True, False], ids=["sqlalchemys", "the-drivers-own"])
def test_a_worker_waits_for_a_database_gone_where_no_unit_of_work_said_so(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:
    """A server that closes the connection under a read made outside a unit of work
    (SQLAlchemy's error, not yet put in words) is the database away all the same: the
    worker warns and tries again. Before: it exited with "internal error
    (OperationalError)", and its service manager's restarts were all that kept it going."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    real = sync_commands._require_current
    rounds: list[int] = []

    def closed_once(hub: Hub, logged: int) -> int:
        rounds.append(logged)
        if len(rounds) == 1:
            closed = sqlite3.OperationalError(
                "consuming input failed: server closed the connection unexpectedly"
            )
            if wrapped:
                raise OperationalError("SELECT size FROM ledger_head", {}, closed)
            raise closed
        return real(hub, logged)

    monkeypatch.setattr(sync_commands, "_require_current", closed_once)
    said = serve_until_warned(demo, built_for(demo, targets), monkeypatch)
    assert (
        said == "warning: the database server closed the connection; the worker tries again in 0 s"
    )


@POSTGRES_ONLY
def test_a_lock_timeout_the_operator_set_is_kept(db_url: str) -> None:
    """The hub's 60 s is for a connection nobody gave one: a lock_timeout in the URL (or
    set for the role or the database) stays as the operator set it."""
    url = make_url(db_url)
    options = f"{url.query.get('options', '')} -c lock_timeout=5s".strip()
    given = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    for where, expected in ((db_url, "1min"), (given, "5s")):
        database = Database(where)
        try:
            with database.session() as session:
                assert session.scalar(text("SHOW lock_timeout")) == expected
        finally:
            database.dispose()


@POSTGRES_ONLY
def test_a_statement_the_server_cancels_is_said_in_words_and_a_worker_waits(
    db_url: str,
) -> None:
    """PostgreSQL cancels a statement (SQLSTATE 57014) when a DBA runs pg_cancel_backend
    or a statement_timeout set for the role or database runs out. Before: `error: internal
    error (OperationalError) ... report it`, and a worker stopped on it. Now a unit of work
    says what happened (a StorageError, on which a worker warns, waits and tries again, as
    for a lock timeout above)."""
    database = Database(db_url)
    dba = create_engine(db_url)
    try:
        with pytest.raises(StorageError) as timed_out, database.session() as session:
            session.execute(text("SET LOCAL statement_timeout = '50ms'"))
            session.execute(text("SELECT pg_sleep(5)"))

        def cancel_the_sleep() -> None:
            with dba.connect() as psql:
                for _ in range(500):  # until the sleep has started (at most 5 s)
                    if psql.execute(
                        text(
                            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                            "WHERE query = 'SELECT pg_sleep(30)' AND pid <> pg_backend_pid()"
                        )
                    ).all():
                        return
                    threading.Event().wait(0.01)

        canceller = threading.Thread(target=cancel_the_sleep)
        canceller.start()
        with pytest.raises(StorageError) as cancelled, database.session() as session:
            session.execute(text("SELECT pg_sleep(30)"))
        canceller.join()
    finally:
        dba.dispose()
        database.dispose()
    for raised in (timed_out.value, cancelled.value):
        assert raised.message.startswith("the database server cancelled a statement"), raised


@pytest.fixture
def limited_role(hub: Hub) -> Iterator[str]:
    """A URL of ``hub``'s database as a role the server lets have one connection."""
    role = "evi_one_" + uuid.uuid4().hex[:8]
    with hub.db.engine.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.exec_driver_sql(f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
        conn.exec_driver_sql(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}')
    try:
        yield make_url(hub.db.url).set(username=role).render_as_string(hide_password=False)
    finally:
        with hub.db.engine.begin() as conn:
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
            )
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")


@POSTGRES_ONLY
def test_a_worker_the_server_has_no_connection_left_for_says_so(
    hub: Hub, limited_role: str, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection the server (or the role) allows is taken, by too many workers.
    Before: `evi worker` said to check that the server was running, and a running worker
    that had to connect again said it had lost the connection to the database server."""
    monkeypatch.setenv("EVI_DATABASE_URL", limited_role)
    get_settings.cache_clear()
    other = create_engine(limited_role)  # another worker holds the role's one connection
    try:
        with other.connect():
            result = cli("worker")
        assert result.code == 1
        assert "the database server has no connection left for this process" in result.err
        assert "is running" not in result.err
        other.dispose()  # that worker stops

        running = Hub(settings=get_settings(), db=Database(limited_role))
        try:
            held: list[Any] = []

            def crowded_out() -> None:  # the server restarts; another worker gets in first
                with hub.db.engine.begin() as conn:
                    conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE usename = '{make_url(limited_role).username}'"
                    )
                held.append(other.connect())

            said = serve_until_warned(running, None, monkeypatch, on_serving=crowded_out)
            assert said.startswith(
                "warning: the database server has no connection left for this process"
            )
            for connection in held:
                connection.close()
        finally:
            running.close()
    finally:
        other.dispose()


def test_a_database_gone_while_a_sync_delivers_is_named_in_its_history(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarts while `evi sync` delivers. Before: every connector's line in
    `evi sync history` said it was stopped by an unexpected StorageError, 'a fault in the
    connector or the hub', which it was not."""
    gone = StorageError(
        "lost the connection to the database server; check that it is running and run the "
        "command again; nothing of this one was kept"
    )

    def restarted(self: Deliverer) -> Any:
        raise gone

    monkeypatch.setattr(Deliverer, "run", restarted)
    with pytest.raises(StorageError):
        run_sync(demo, sync_options(targets))
    rows = history(demo, 10, None)
    assert rows and all(row["status"] == "failed" for row in rows)
    for row in rows:
        assert row["error"].startswith(f"{row['connector']}: stopped: lost the connection")
        assert "unexpected" not in row["error"]


@POSTGRES_ONLY
def test_a_worker_holds_one_connection(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int
) -> None:
    """docs/operations.md says a worker holds one connection to PostgreSQL, for the
    operator counting them against max_connections: never two at once."""
    out: list[int] = []

    def checkout(*_args: Any) -> None:
        out.append(1)
        held.append(len(out))

    def checkin(*_args: Any) -> None:
        out.pop()

    held: list[int] = []
    event.listen(demo.db.engine, "checkout", checkout)
    event.listen(demo.db.engine, "checkin", checkin)
    try:
        with connector(demo, targets) as built:
            assert worker(demo, built).run()[RECIPIENT].delivered == queued
    finally:
        event.remove(demo.db.engine, "checkout", checkout)
        event.remove(demo.db.engine, "checkin", checkin)
    assert held and max(held) == 1


GONE = "lost the connection to the database server; check that it is running"


def deliveries_logged(hub: Hub) -> int:
    with hub.db.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(LedgerEntryRow)
                .where(LedgerEntryRow.action == "delivery", LedgerEntryRow.recipient == RECIPIENT)
            )
            or 0
        )


def test_results_the_database_could_not_take_for_a_moment_are_written_when_it_can(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarts between a round's pushes and the write of their results. Before:
    the results were lost with the transaction (the pushes missing from the log), and the
    transfers pushed again once their lease ended, ten minutes later."""
    real = delivery.append_prepared
    failed: list[str] = []

    def append_prepared(session: Any, entries: Any) -> Any:
        if not failed and len(entries):
            failed.append("once")
            raise StorageError(GONE)
        return real(session, entries)

    monkeypatch.setattr(delivery, "append_prepared", append_prepared)
    monkeypatch.setattr(delivery, "_pause", lambda _s: None, raising=False)
    with connector(demo, targets) as built:
        counts = worker(demo, built, batch=10_000).run()[RECIPIENT]

    assert failed and counts.delivered == queued
    assert statuses(demo) == {DELIVERED: queued}
    assert deliveries_logged(demo) == queued
    got = received(targets[RECIPIENT])
    assert (got["unique"], got["duplicates"]) == (queued, 0)


def test_results_whose_commit_went_through_unanswered_are_not_written_twice(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the results' COMMIT reached the server but before its
    answer came back: the write is not repeated, so the log has each delivery once."""
    real = demo.db.session
    state: dict[str, bool] = {}
    appended = delivery.append_prepared

    def append_prepared(session: Any, entries: Any) -> Any:
        state["results"] = bool(len(entries))
        return appended(session, entries)

    @contextmanager
    def session(**kwargs: Any) -> Iterator[Any]:
        with real(**kwargs) as opened:
            yield opened
        if state.pop("results", False) and not state.get("lost"):
            state["lost"] = True
            raise StorageError(GONE)  # committed, the answer lost

    monkeypatch.setattr(delivery, "append_prepared", append_prepared)
    monkeypatch.setattr(demo.db, "session", session)
    monkeypatch.setattr(delivery, "_pause", lambda _s: None, raising=False)
    with connector(demo, targets) as built:
        counts = worker(demo, built, batch=10_000).run()[RECIPIENT]

    assert state["lost"] and counts.delivered == queued
    assert statuses(demo) == {DELIVERED: queued}
    assert deliveries_logged(demo) == queued


def test_pushes_under_way_when_the_next_claim_fails_are_written_first(
    demo: Hub, targets: dict[str, SandboxTarget], queued: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away as a worker claims its next batch while the current one is
    being pushed. Before: the worker gave up the round with the current batch's results
    unwritten, so those transfers, delivered, stayed claimed (ten minutes, seen with
    connections cut under two workers), then went again."""
    real = Deliverer._claim
    claimed: list[int] = []

    def claim(self: Deliverer) -> Any:
        claimed.append(1)
        if len(claimed) == 2:
            raise StorageError(GONE)
        return real(self)

    monkeypatch.setattr(Deliverer, "_claim", claim)
    with connector(demo, targets) as built, pytest.raises(StorageError):
        worker(demo, built, batch=5).run()
    assert statuses(demo) == {DELIVERED: 5, PENDING: queued - 5}
    assert deliveries_logged(demo) == 5
