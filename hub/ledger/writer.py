"""The one writer of the transfer log.

Every part of the hub appends through :func:`append` (or :func:`append_many` for a
batch) inside its own transaction; the entry commits or rolls back with the caller's
work, so the log never records something that did not happen, nor misses something
that did.

Sequence numbers are the 0-based leaf indexes and are gap-free: the first statement of
an append is an upsert on the single ``ledger_head`` row, which serialises writers until
their transaction ends (a row lock on PostgreSQL, the database write lock on SQLite).
A writer that rolls back takes nothing with it, so no gap can appear.

On SQLite, a transaction that has *read* before it appends fails with a
:class:`~hub.errors.StorageError` if another writer committed in between (SQLite cannot
upgrade a stale read snapshot); nothing is written wrongly, and a retry succeeds. Open
such transactions with ``Database.session(write_lock=True)`` to wait for the lock up front
instead.

On SQLite a large batch is written by one ``INSERT … SELECT`` per chunk of
:data:`CHUNK` entries, in a helper thread, while this thread encodes and hashes the next
chunk (see :func:`_sqlite_insert`). The rows are complete when :func:`append_many`
returns; if anything fails on the way, the rows it inserted are removed again before the
error is raised, so an append either adds all its entries or none.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hub.errors import StorageError
from hub.ledger.canonical import canonical_batch
from hub.ledger.event import LedgerEvent
from hub.ledger.hashing import frontier_extend, split_frontier
from hub.ledger.tiles import TILE_HEIGHT, runs, stored_level
from hub.store.base import Base
from hub.store.tables.ledger import SEARCH_COLUMNS, LedgerHeadRow

HEAD_ID = 1
CHUNK = 1000
"""SQLite: entries per ``INSERT … SELECT``; a batch of more than one chunk is pipelined."""

_head: Table = Base.metadata.tables[LedgerHeadRow.__tablename__]


def append(session: Session, event: LedgerEvent) -> int:
    """Append one entry in the caller's transaction; returns its sequence number.

    The entry is durable when the caller's transaction commits. Never commits.
    """
    return append_many(session, [event]).start


def append_many(session: Session, events: Iterable[LedgerEvent]) -> range:
    """Append entries in order in the caller's transaction; returns their sequence numbers.

    The numbers are consecutive. An empty batch appends nothing and returns an empty
    range. Never commits.
    """
    batch = list(events)
    if not batch:
        return range(0)
    size, frontier = lock_head(session)
    connection = session.connection()
    sql = _statements(connection.dialect)
    # new hashes per tile level, consecutive from size >> (TILE_HEIGHT * level)
    added: list[list[bytes]] = [[]]
    if connection.dialect.name == "sqlite":
        _sqlite_insert(connection, batch, size, frontier, added)
    else:
        prepared = canonical_batch(batch)
        digests = [sha256(b"\x00" + data).digest() for data, _ in prepared]
        _grow(frontier, added, size, digests)
        rows = [
            (seq, event.time, *_columns(event), digest, data)
            for seq, event, (data, _), digest in zip(
                itertools.count(size), batch, prepared, digests, strict=False
            )
        ]
        # Plain driver executemany: per-row SQLAlchemy processing costs more than the
        # hashing; the statements are prepared once per dialect.
        connection.exec_driver_sql(sql.entries, rows)
    _finish_append(connection, sql, size, len(batch), frontier, added)
    return range(size, size + len(batch))


@dataclass(frozen=True)
class PreparedEntries:
    """Entries encoded and hashed ahead of their append (see :func:`prepare_entries`)."""

    events: Sequence[LedgerEvent]
    datas: list[bytes]  # the canonical bytes of each entry
    times: list[str]  # each entry's time as written in its bytes
    digests: list[bytes]  # each entry's leaf hash

    def __len__(self) -> int:
        return len(self.events)


def prepare_entries(events: Iterable[LedgerEvent]) -> PreparedEntries:
    """Encode and hash entries now, so that :func:`append_prepared` has only to place them.

    Nothing here depends on where the entries will land in the tree (an entry's bytes and
    leaf hash are its own), so this can run before the writer lock is taken and the lock
    is held only while the entries are numbered and inserted. Touches no database.
    """
    batch = list(events)
    prepared = canonical_batch(batch)
    datas = [data for data, _ in prepared]
    return PreparedEntries(
        events=batch,
        datas=datas,
        times=[time_text for _, time_text in prepared],
        digests=[sha256(b"\x00" + data).digest() for data in datas],
    )


def append_prepared(session: Session, entries: PreparedEntries) -> range:
    """Append prepared entries in order in the caller's transaction, like :func:`append_many`.

    The same rows as :func:`append_many` writes for the same events. Never commits.
    """
    if not entries.events:
        return range(0)
    size, frontier = lock_head(session)
    connection = session.connection()
    sql = _statements(connection.dialect)
    added: list[list[bytes]] = [[]]
    _grow(frontier, added, size, entries.digests)
    if connection.dialect.name == "sqlite":
        for first in range(0, len(entries), CHUNK):
            datas = entries.datas[first : first + CHUNK]
            blob = b"".join(datas)
            if _NUL_ESCAPE in blob:
                connection.exec_driver_sql(sql.entries, _sqlite_rows(entries, first, size))
                continue
            offsets = ",".join(map(str, itertools.accumulate(map(len, datas), initial=0)))
            digests = b"".join(entries.digests[first : first + CHUNK])
            connection.exec_driver_sql(
                _SQLITE_INSERT, (size + first, digests, blob, "[" + offsets + "]")
            )
    else:
        rows = [
            (seq, event.time, *_columns(event), digest, data)
            for seq, event, data, digest in zip(
                range(size, size + len(entries)),
                entries.events,
                entries.datas,
                entries.digests,
                strict=True,
            )
        ]
        connection.exec_driver_sql(sql.entries, rows)
    _finish_append(connection, sql, size, len(entries), frontier, added)
    return range(size, size + len(entries))


def _sqlite_rows(entries: PreparedEntries, first: int, size: int) -> list[tuple[Any, ...]]:
    """Rows with the search columns from Python, for a chunk json_extract cannot read."""
    end = min(first + CHUNK, len(entries))
    return [
        (
            size + i,
            f"{entries.times[i][:10]} {entries.times[i][11:26]}",
            *_columns(entries.events[i]),
            entries.digests[i],
            entries.datas[i],
        )
        for i in range(first, end)
    ]


def _finish_append(
    connection: Connection,
    sql: _Sql,
    size: int,
    count: int,
    frontier: list[bytes],
    added: list[list[bytes]],
) -> None:
    """Store the tiles an append completed and move the head past it."""
    tile_rows = [
        run
        for level, hashes in enumerate(added)
        if hashes
        for run in runs(level, size >> (TILE_HEIGHT * level), hashes)
    ]
    connection.exec_driver_sql(sql.tiles, tile_rows)
    connection.exec_driver_sql(sql.head, (size + count, b"".join(frontier), HEAD_ID))


def _columns(event: LedgerEvent) -> tuple[str | None, ...]:
    """The search columns after ``time``, in :data:`_ENTRY_COLUMNS` order."""
    return (
        event.action.value,
        event.decision,
        event.outcome.value,
        event.origin,
        event.recipient,
        event.actor,
        event.participant,
        event.correlation_id,
    )


def _grow(frontier: list[bytes], added: list[list[bytes]], seq: int, digests: list[bytes]) -> None:
    """Add leaf hashes (the first at index ``seq``) to the right edge of the tree, keeping
    the hashes of the stored levels in ``added``."""
    for level, hashes in enumerate(frontier_extend(frontier, seq, digests)):
        if stored_level(level):
            while len(added) <= level // TILE_HEIGHT:
                added.append([])
            added[level // TILE_HEIGHT].extend(hashes)


# SQLite: the rows of one chunk from three parameters, so that one statement (and one
# sqlite3_step, which runs without the GIL) inserts them all: ?1 the first sequence number,
# ?2 the leaf hashes concatenated, ?3 the canonical bytes concatenated, ?4 a JSON array of
# the offsets where each entry's bytes start (and, last, where the last one ends). The
# search columns are read out of the canonical bytes themselves with json_extract (the
# function `evi log verify` checks them with), so they match the bytes by construction;
# 'YYYY-MM-DD HH:MM:SS.ffffff' is the text SQLAlchemy writes for a UTCDateTime.
_SQLITE_INSERT = """
INSERT INTO ledger_entry (seq, time, action, decision, outcome, origin, recipient, actor,
                          participant, correlation_id, leaf_hash, canonical)
SELECT ?1 + k, replace(substr(json_extract(d, '$.time'), 1, 26), 'T', ' '),
       json_extract(d, '$.action'), json_extract(d, '$.decision'),
       json_extract(d, '$.outcome'), json_extract(d, '$.origin'),
       json_extract(d, '$.recipient'), json_extract(d, '$.actor'),
       json_extract(d, '$.participant'), json_extract(d, '$.correlation_id'),
       substr(?2, 32 * k + 1, 32), c
FROM (SELECT k, c, CAST(c AS TEXT) AS d
      FROM (SELECT key AS k, substr(?3, value + 1, lead(value) OVER (ORDER BY key) - value) AS c
            FROM json_each(?4))
      WHERE c IS NOT NULL)
"""
# SQLite's json_extract (3.40) cuts a string at an escaped NUL character; entries whose
# bytes might hold one take the executemany path, with the columns from Python.
_NUL_ESCAPE = b"\\u0000"


def _sqlite_insert(
    connection: Connection,
    batch: Sequence[LedgerEvent],
    size: int,
    frontier: list[bytes],
    added: list[list[bytes]],
) -> None:
    """Insert the entries of ``batch`` from ``size`` on, chunk by chunk, on SQLite.

    Hand-written pipeline, because on a two-core machine it is what makes 100,000
    batched appends a second possible: this thread encodes and hashes chunk k+1 (Python,
    holding the GIL) while a helper thread inserts chunk k with one statement, whose
    sqlite3_step (the B-tree and index work) runs without the GIL. Only one thread uses
    the connection at a time: the next chunk is handed over only after the previous one
    finished. If anything fails, the rows inserted so far are deleted (this transaction
    holds the write lock, so every row from ``size`` on is this append's own) and the
    error is raised, so a caller that catches it cannot commit half a batch.
    """
    sql = _statements(connection.dialect)
    pool: ThreadPoolExecutor | None = None
    pending: Future[Any] | None = None
    seq = size
    try:
        for first in range(0, len(batch), CHUNK):
            chunk = batch[first : first + CHUNK]
            prepared = canonical_batch(chunk)
            datas = [data for data, _ in prepared]
            digests = [sha256(b"\x00" + data).digest() for data in datas]
            _grow(frontier, added, seq, digests)
            blob = b"".join(datas)
            if _NUL_ESCAPE in blob:
                if pending is not None:
                    pending.result()
                    pending = None
                rows = [
                    (n, f"{time_text[:10]} {time_text[11:26]}", *_columns(event), digest, data)
                    for n, event, (data, time_text), digest in zip(
                        itertools.count(seq), chunk, prepared, digests, strict=False
                    )
                ]
                connection.exec_driver_sql(sql.entries, rows)
            else:
                offsets = "[" + ",".join(map(str, itertools.accumulate(map(len, datas), initial=0)))
                params = (seq, b"".join(digests), blob, offsets + "]")
                if len(batch) <= CHUNK:
                    connection.exec_driver_sql(_SQLITE_INSERT, params)
                else:
                    if pending is not None:
                        pending.result()
                    if pool is None:
                        pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-append")
                    started = threading.Event()
                    pending = pool.submit(_insert_chunk, connection, params, started)
                    # Let the helper take the GIL now, until its statement runs without it;
                    # otherwise it would wait for this thread's switch interval (5 ms).
                    started.wait()
            seq += len(chunk)
        if pending is not None:
            pending.result()
    except BaseException:
        if pending is not None:
            wait([pending])  # the connection is free again before it is used for the undo
        if seq > size:
            connection.exec_driver_sql(_SQLITE_UNDO, (size,))
        raise
    finally:
        if pool is not None:
            pool.shutdown()


_SQLITE_UNDO = "DELETE FROM ledger_entry WHERE seq >= ?"


def _insert_chunk(
    connection: Connection, params: tuple[Any, ...], started: threading.Event
) -> None:
    started.set()
    connection.exec_driver_sql(_SQLITE_INSERT, params)


@dataclass(frozen=True)
class _Sql:
    entries: str
    tiles: str
    head: str


_ENTRY_COLUMNS = ("seq", "time", *SEARCH_COLUMNS, "leaf_hash", "canonical")


@cache
def _statements(dialect: Dialect) -> _Sql:
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * len(_ENTRY_COLUMNS))
    # Built only from the constants above and the driver's placeholder: no input.
    return _Sql(
        entries=f"INSERT INTO ledger_entry ({', '.join(_ENTRY_COLUMNS)}) VALUES ({marks})",  # noqa: S608
        tiles=f"INSERT INTO ledger_tile (level, start, hashes) VALUES ({mark}, {mark}, {mark})",  # noqa: S608
        head=f"UPDATE ledger_head SET size = {mark}, frontier = {mark} WHERE id = {mark}",  # noqa: S608
    )


def lock_head(session: Session) -> tuple[int, list[bytes]]:
    """Take the writer lock for this transaction; returns (size, frontier) as committed.

    Creates the head row on the very first append. Held until the transaction ends.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(_head)
    elif dialect == "sqlite":
        stmt = sqlite.insert(_head)
    else:  # pragma: no cover - Database refuses other engines
        raise StorageError(f"the ledger does not support the '{dialect}' database")
    stmt = (
        stmt.values(id=HEAD_ID, size=0, frontier=b"")
        .on_conflict_do_update(index_elements=[_head.c.id], set_={"size": _head.c.size})
        .returning(_head.c.size, _head.c.frontier)
    )
    try:
        size, blob = session.execute(stmt).one()
    except OperationalError as exc:
        if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY_SNAPSHOT:
            # SQLite cannot upgrade a read snapshot another writer has moved past. Any
            # other "database is locked" (another program holding the write lock past the
            # busy timeout) is the operator's error, worded by Database.session.
            raise StorageError(
                "the ledger is busy: this transaction read before appending while another "
                "writer committed; nothing was written. Retry; open such transactions with "
                "Database.session(write_lock=True)"
            ) from None
        raise
    return int(size), split_frontier(bytes(blob))
