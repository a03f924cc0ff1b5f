"""One sync per connector at a time, with the lock held in the database.

A row in ``sync_lock`` names the holder. A lock whose holder died (same host, process
gone) or whose lease expired is taken over; a live one makes the caller fail with
:class:`~hub.errors.LockHeldError` (exit code 3). Taking over is a compare-and-swap on
the old holder, so two processes cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from hub.errors import LockHeldError
from hub.store.db import Database
from hub.store.tables.sync import SyncLock

DEFAULT_LEASE = timedelta(hours=6)


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


@contextmanager
def connector_lock(
    db: Database, connector: str, *, lease: timedelta = DEFAULT_LEASE
) -> Iterator[str]:
    """Hold the sync lock for ``connector`` for the duration of the block."""
    holder = uuid.uuid4().hex
    now = datetime.now(UTC)
    mine = SyncLock(
        connector=connector,
        holder=holder,
        host=socket.gethostname(),
        pid=os.getpid(),
        acquired_at=now,
        expires_at=now + lease,
    )
    try:
        with db.session(write_lock=True) as session:
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
    try:
        yield holder
    finally:
        with db.session(write_lock=True) as session:
            session.execute(
                delete(SyncLock).where(SyncLock.connector == connector, SyncLock.holder == holder)
            )


def require_no_sync(db: Database, what: str) -> None:
    """Raise :class:`LockHeldError` if a live sync holds any connector's lock (``what``
    names the operation that must wait for it)."""
    now = datetime.now(UTC)
    with db.session() as session:
        for lock in session.scalars(select(SyncLock)).all():
            if not _stale(lock, now):
                raise LockHeldError(
                    f"a sync of '{lock.connector}' is running (process {lock.pid} on "
                    f"{lock.host}); {what} must wait until it has finished"
                )


def _held(connector: str, lock: SyncLock | None) -> LockHeldError:
    who = (
        f" by process {lock.pid} on {lock.host} since {lock.acquired_at:%Y-%m-%d %H:%M} UTC"
        if lock
        else ""
    )
    return LockHeldError(
        f"connector '{connector}' is already being synced{who}; wait for that run to finish "
        "(a lock left by a dead process is taken over automatically)"
    )
