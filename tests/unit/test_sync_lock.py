"""The sync lock (hub.sync.lock): one sync per connector, kept for as long as the run
lasts and no longer than a lease after its holder stops."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sync_support import sync_options

from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget
from hub.errors import LockHeldError
from hub.store.tables.sync import SyncLock, SyncRun
from hub.sync import lock as sync_lock
from hub.sync.job import run_sync
from hub.sync.lock import LEASE, RENEW_EVERY, LockLostError, SyncLocks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _expires(hub: Hub, connector: str) -> datetime:
    with hub.db.session() as session:
        row = session.get(SyncLock, connector)
        assert row is not None
        return row.expires_at


def _set_expires(hub: Hub, connector: str, when: datetime) -> None:
    with hub.db.session() as session:
        session.execute(
            update(SyncLock).where(SyncLock.connector == connector).values(expires_at=when)
        )


def test_a_held_lock_is_renewed_when_due_and_not_before(hub: Hub) -> None:
    clock = Clock()
    locks = SyncLocks(hub.db, monotonic=clock)
    locks.take("af")
    soon = datetime.now(UTC) + timedelta(minutes=2)
    _set_expires(hub, "af", soon)
    clock.now += RENEW_EVERY.total_seconds() / 2
    locks.keep()
    assert _expires(hub, "af") == soon  # not due yet: no write
    clock.now += RENEW_EVERY.total_seconds()
    locks.keep()
    assert _expires(hub, "af") > datetime.now(UTC) + LEASE - timedelta(minutes=5)
    locks.release()
    with hub.db.session() as session:
        assert session.get(SyncLock, "af") is None


def test_a_lock_another_run_took_over_stops_this_run_and_stays_the_others(hub: Hub) -> None:
    clock = Clock()
    locks = SyncLocks(hub.db, monotonic=clock)
    locks.take("af")
    locks.take("fk")
    # This run could not renew for a lease (say its database was out of reach): the lease
    # ran out and another run took fk's lock over.
    _set_expires(hub, "fk", datetime.now(UTC) - timedelta(seconds=1))
    other = SyncLocks(hub.db)
    other.take("fk")
    clock.now += RENEW_EVERY.total_seconds()
    with pytest.raises(LockLostError, match="'fk'") as lost:
        locks.keep()
    assert lost.value.exit_code == 3
    assert "af" not in str(lost.value)
    assert list(locks.held) == ["af"]  # still ours, and renewed
    clock.now += RENEW_EVERY.total_seconds()
    locks.keep()  # fk is given up once, not again and again
    locks.release()
    with hub.db.session() as session:
        rows = {row.connector: row.holder for row in session.scalars(select(SyncLock))}
    assert rows == {"fk": other.held["fk"]}  # the other run's lock is left alone
    other.release()


def test_a_refusal_says_until_when_the_lease_runs(hub: Hub) -> None:
    locks = SyncLocks(hub.db)
    locks.take("region")
    expires = _expires(hub, "region")
    with pytest.raises(LockHeldError) as held:
        SyncLocks(hub.db).take("region")
    text = str(held.value)
    assert socket.gethostname() in text
    assert f"lease runs until {expires:%H:%M} UTC" in text
    locks.release()


def test_a_long_night_keeps_renewing_its_locks(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every stored batch is a moment to renew. Each progress report (made after a batch is
    # stored, before the renewal) finds the leases renewed since the previous report, then
    # sets them to have run out a minute ago: a run that stopped renewing would be seen.
    monkeypatch.setattr(sync_lock, "RENEW_EVERY", timedelta(0))
    past = datetime.now(UTC) - timedelta(minutes=1)
    seen: list[bool] = []

    def progress(_name: str, _pulled: int) -> None:
        with demo.db.session() as session:
            rows = session.scalars(select(SyncLock)).all()
            seen.append(bool(rows) and all(row.expires_at > datetime.now(UTC) for row in rows))
            session.execute(update(SyncLock).values(expires_at=past))

    report = run_sync(demo, sync_options(targets, progress=progress))
    assert report.exit_code == 0, report.table()
    assert len(seen) >= 2
    assert all(seen), seen
    with demo.db.session() as session:
        assert session.scalars(select(SyncLock)).all() == []  # released at the end


def test_a_night_whose_lock_was_taken_over_stops_with_exit_3(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_lock, "RENEW_EVERY", timedelta(0))

    def progress(_name: str, _pulled: int) -> None:
        with demo.db.session() as session:  # another run takes every lock over
            session.execute(update(SyncLock).values(holder="another-run"))

    with pytest.raises(LockLostError) as lost:
        run_sync(demo, sync_options(targets, progress=progress))
    assert lost.value.exit_code == 3
    with demo.db.session() as session:
        assert {row.holder for row in session.scalars(select(SyncLock))} == {"another-run"}
        runs = session.scalars(select(SyncRun)).all()
    assert runs
    assert all(run.finished_at is not None and run.status == "failed" for run in runs)
