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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from typing import Any

from sqlalchemy import Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hub.errors import StorageError
from hub.ledger.canonical import canonical_batch
from hub.ledger.event import LedgerEvent
from hub.ledger.hashing import frontier_append, split_frontier
from hub.ledger.tiles import TILE_HEIGHT, TILE_WIDTH, runs, stored_level
from hub.store.base import Base
from hub.store.tables.ledger import LedgerHeadRow

HEAD_ID = 1

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
    prepared = canonical_batch(batch)
    if not prepared:
        return range(0)
    size, frontier = lock_head(session)
    connection = session.connection()
    sql = _statements(connection.dialect)
    sqlite_time = connection.dialect.name == "sqlite"
    entry_rows: list[tuple[Any, ...]] = []
    # new hashes per tile level, consecutive from size >> (TILE_HEIGHT * level)
    added: list[list[bytes]] = [[]]
    seq = size
    for event, (data, time_text) in zip(batch, prepared, strict=True):
        digest = sha256(b"\x00" + data).digest()
        entry_rows.append(
            (
                seq,
                # SQLite: the text SQLAlchemy writes for a UTCDateTime, from the same
                # characters as the stored bytes ('YYYY-MM-DD HH:MM:SS.ffffff').
                f"{time_text[:10]} {time_text[11:26]}" if sqlite_time else event.time,
                event.action.value,
                event.decision,
                event.outcome.value,
                event.origin,
                event.recipient,
                event.actor,
                event.participant,
                event.correlation_id,
                digest,
                data,
            )
        )
        added[0].append(digest)
        if seq & (TILE_WIDTH - 1) == TILE_WIDTH - 1:  # completes a stored subtree or more
            for level, _, value in frontier_append(frontier, seq, digest):
                if stored_level(level):
                    while len(added) <= level // TILE_HEIGHT:
                        added.append([])
                    added[level // TILE_HEIGHT].append(value)
        else:
            frontier_append(frontier, seq, digest)
        seq += 1
    tile_rows = [
        run
        for level, hashes in enumerate(added)
        if hashes
        for run in runs(level, size >> (TILE_HEIGHT * level), hashes)
    ]
    # Plain driver executemany: per-row SQLAlchemy processing costs more than the
    # hashing; the statements are prepared once per dialect.
    connection.exec_driver_sql(sql.entries, entry_rows)
    connection.exec_driver_sql(sql.tiles, tile_rows)
    connection.exec_driver_sql(sql.head, (seq, b"".join(frontier), HEAD_ID))
    return range(size, seq)


@dataclass(frozen=True)
class _Sql:
    entries: str
    tiles: str
    head: str


_ENTRY_COLUMNS = (
    "seq",
    "time",
    "action",
    "decision",
    "outcome",
    "origin",
    "recipient",
    "actor",
    "participant",
    "correlation_id",
    "leaf_hash",
    "canonical",
)


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
        if dialect == "sqlite" and "locked" in str(exc.orig):
            # SQLite cannot upgrade a read snapshot another writer has moved past.
            raise StorageError(
                "the ledger is busy: this transaction read before appending while another "
                "writer committed; nothing was written. Retry; open such transactions with "
                "Database.session(write_lock=True)"
            ) from None
        raise
    return int(size), split_frontier(bytes(blob))
