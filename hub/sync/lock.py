"""One sync per connector at a time, with the lock held in the database.

A row in ``sync_lock`` names the holder and when its lease ends. A lock whose holder died
(same host, process gone) or whose lease ran out is taken over; a live one makes the
caller fail with :class:`~hub.errors.LockHeldError` (exit code 3). Taking over is a
compare-and-swap on the old holder, so two processes cannot both win, on SQLite or
PostgreSQL.

The lease is short (:data:`LEASE`) and the run renews it as it goes
(:meth:`SyncLocks.keep`, at most every :data:`RENEW_EVERY`), so a lock left by a host
that went down is free again within the hour, while a night of any length keeps its
lock. Renewing is done by the run's own loops (after each stored batch, each delivery
round, and while waiting for its helper processes), not by a thread: the run forks its
helpers, and a fork beside a thread that is holding a lock (the connection pool's, the
logging module's) can leave the helper hung. A run that could not renew for a whole
lease (its database out of reach, the process frozen) and finds its lock taken over by
another run stops with :class:`LockLostError` (exit code 3) instead of syncing the
connector twice at once.

A run that ends while its database is away (PostgreSQL restarting or failing over as the
run finishes) keeps its outcome: releasing its locks is tried again on a new connection
for a few seconds (:data:`RELEASE_WAITS`), and if the database still does not answer,
the locks are left with a warning saying when they are free (:meth:`SyncLocks.release`).
Before, the release's error replaced the run's: a night that had stored and delivered
everything printed no report and exited 1 saying nothing of it was kept.

Leases are read and written by the database's clock on PostgreSQL
(:func:`~hub.sync.outbox.database_clock`), where runs may start on different hosts: a
host whose clock is an hour ahead would otherwise take over a live lock, and one an hour
behind would write a lease every other host already sees as run out.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from hub.errors import LockHeldError, StorageError
from hub.store.db import Database
from hub.store.tables.sync import SyncLock
from hub.sync.outbox import database_clock

log = logging.getLogger(__name__)

LEASE = timedelta(hours=1)
"""How long a lock is the holder's after it was taken or last renewed."""

RENEW_EVERY = timedelta(minutes=1)
"""How often a run renews the leases of the locks it holds (one short write each time)."""

RELEASE_WAITS = (0.0, 1.0, 3.0)
"""Seconds waited before each try at releasing a run's locks on PostgreSQL: a server that
closed the connection as the run ended (a restart takes a few seconds) is asked again on a
new one. SQLite is tried once: it has waited its 30 s for the file's write lock already."""


class LockLostError(LockHeldError):
    """The run could not renew its lock in time and another run has taken it over."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(lock: SyncLock, now: datetime) -> bool:
    if lock.expires_at <= now:
        return True
    return lock.host == socket.gethostname() and not _alive(lock.pid)


class SyncLocks:
    """The sync locks one run holds: taken, renewed as the run goes, released at its end."""

    def __init__(
        self,
        db: Database,
        *,
        lease: timedelta | None = None,
        renew_every: timedelta | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self._sleep = sleep
        self._clock = database_clock(db) if clock is None else clock
        self.lease = LEASE if lease is None else lease
        self.renew_every = (RENEW_EVERY if renew_every is None else renew_every).total_seconds()
        self._monotonic = monotonic
        self.held: dict[str, str] = {}  # connector -> this run's holder id
        self._renewed = monotonic()
        self.expires_at: datetime | None = None  # the latest lease taken or renewed

    def take(self, connector: str) -> None:
        """Take ``connector``'s lock; :class:`LockHeldError` if a live run holds it."""
        holder = uuid.uuid4().hex
        now = self._clock()
        mine = SyncLock(
            connector=connector,
            holder=holder,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired_at=now,
            expires_at=now + self.lease,
        )
        try:
            with self.db.session(write_lock=True) as session:
                current = session.get(SyncLock, connector)
                if current is None:
                    session.add(mine)
                elif _stale(current, now):
                    taken = session.execute(
                        update(SyncLock)
                        .where(SyncLock.connector == connector, SyncLock.holder == current.holder)
                        .values(
                            holder=holder,
                            host=mine.host,
                            pid=mine.pid,
                            acquired_at=now,
                            expires_at=mine.expires_at,
                        )
                    )
                    if taken.rowcount != 1:  # type: ignore[attr-defined]
                        raise _held(connector, None)
                else:
                    raise _held(connector, current)
        except IntegrityError:
            raise _held(connector, None) from None
        self.held[connector] = holder
        self.expires_at = mine.expires_at

    def keep(self) -> None:
        """Renew every held lease if :data:`RENEW_EVERY` has passed since the last renewal.

        Call it only outside a write transaction of this process (on SQLite the renewal
        would wait for that transaction). A lock another run has taken over meanwhile is
        given up, and :class:`LockLostError` names it (once)."""
        if not self.held or self._monotonic() - self._renewed < self.renew_every:
            return
        now = self._clock()
        lost = []
        with self.db.session(write_lock=True) as session:
            for connector, holder in self.held.items():
                renewed = session.execute(
                    update(SyncLock)
                    .where(SyncLock.connector == connector, SyncLock.holder == holder)
                    .values(expires_at=now + self.lease)
                )
                if renewed.rowcount != 1:  # type: ignore[attr-defined]
                    lost.append(connector)
        self._renewed = self._monotonic()
        self.expires_at = now + self.lease
        if lost:
            for connector in lost:
                del self.held[connector]
            log.warning("sync lock lost to another run: %s", ", ".join(lost))
            raise LockLostError(
                f"the sync lock of {', '.join(repr(c) for c in lost)} was taken over by another "
                f"run while this one could not renew it for {_minutes(self.lease)} minutes "
                "(database out of reach, or the process stopped); this run stops, what it "
                "stored stays, and the other run carries on from there"
            )

    def release(self) -> None:
        """Release every lock this run still holds.

        A database server that does not answer (it closed the connection, or is restarting)
        is asked again on a new connection after each of :data:`RELEASE_WAITS`; if it still
        does not, the locks are left, with a warning saying when another run may take
        them, and the run's own outcome (its report, its exit code, or the error that
        stopped it) stands: a lock is only ever a guard against two runs at once."""
        problem = ""
        for wait in RELEASE_WAITS if self.db.dialect == "postgresql" else (0.0,):
            if not self.held:
                return
            if wait:
                self._sleep(wait)
            try:
                self._delete_held()
            except StorageError as exc:
                problem = exc.message.split("; ")[0]  # not the one-shot command's advice
                continue
            self.held.clear()
            return
        until = f" ({self.expires_at:%Y-%m-%d %H:%M} UTC)" if self.expires_at else ""
        log.warning(
            "the sync locks of %s could not be released (%s): a sync on this host takes "
            "them over once this process has ended, one on another host when their lease "
            "ends%s",
            ", ".join(sorted(self.held)),
            problem,
            until,
        )

    def _delete_held(self) -> None:
        with self.db.session(write_lock=True) as session:
            for connector, holder in self.held.items():
                session.execute(
                    delete(SyncLock).where(
                        SyncLock.connector == connector, SyncLock.holder == holder
                    )
                )


def require_no_sync(db: Database, what: str) -> None:
    """Raise :class:`LockHeldError` if a live sync holds any connector's lock (``what``
    names the operation that must wait for it)."""
    now = database_clock(db)()
    with db.session() as session:
        for lock in session.scalars(select(SyncLock)).all():
            if not _stale(lock, now):
                raise LockHeldError(
                    f"a sync of '{lock.connector}' is running (process {lock.pid} on "
                    f"{lock.host}); {what} must wait until it has finished"
                )


def _minutes(span: timedelta) -> int:
    return round(span.total_seconds() / 60)


def _held(connector: str, lock: SyncLock | None) -> LockHeldError:
    who = (
        f" by process {lock.pid} on {lock.host} since {lock.acquired_at:%Y-%m-%d %H:%M} UTC "
        f"(its lease runs until {lock.expires_at:%H:%M} UTC unless that run renews it)"
        if lock
        else ""
    )
    return LockHeldError(
        f"connector '{connector}' is already being synced{who}; wait for that run to finish "
        "(a lock left by a dead process is taken over automatically)"
    )
