"""The one writer of the transfer log.

Every part of the hub appends through :func:`append` (or :func:`append_many` for a
batch) inside its own transaction; the entry commits or rolls back with the caller's
work, so the log never records something that did not happen, nor misses something
that did.

Sequence numbers are the 0-based leaf indexes and are gap-free: the first statement of
an append is an upsert on the single ``ledger_head`` row, which serialises writers until
their transaction ends (a row lock on PostgreSQL, the database write lock on SQLite).
A writer that rolls back takes nothing with it, so no gap can appear.

On SQLite, a transaction that has *read* before it appends may fail with "database is
locked" if another writer committed in between (SQLite cannot upgrade a stale read
snapshot); it is never written wrongly. Open such transactions with
``Database.session(write_lock=True)`` to wait for the lock up front instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.errors import StorageError
from hub.ledger.canonical import canonical_bytes
from hub.ledger.event import LedgerEvent
from hub.ledger.hashing import frontier_append, leaf_hash, split_frontier
from hub.store.base import Base
from hub.store.tables.ledger import LedgerEntryRow, LedgerHeadRow, LedgerNodeRow

HEAD_ID = 1

_entries: Table = Base.metadata.tables[LedgerEntryRow.__tablename__]
_nodes: Table = Base.metadata.tables[LedgerNodeRow.__tablename__]
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
    prepared = [(event, canonical_bytes(event)) for event in events]
    if not prepared:
        return range(0)
    size, frontier = lock_head(session)
    entry_rows: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    seq = size
    for event, data in prepared:
        digest = leaf_hash(data)
        entry_rows.append(
            {
                "seq": seq,
                "time": event.time,
                "action": event.action.value,
                "decision": event.decision,
                "outcome": event.outcome.value,
                "origin": event.origin,
                "recipient": event.recipient,
                "actor": event.actor,
                "participant": event.participant,
                "correlation_id": event.correlation_id,
                "leaf_hash": digest,
                "canonical": data,
                "purged_at": None,
            }
        )
        node_rows.append({"level": 0, "idx": seq, "hash": digest})
        for level, index, value in frontier_append(frontier, seq, digest):
            node_rows.append({"level": level, "idx": index, "hash": value})
        seq += 1
    session.execute(insert(_entries), entry_rows)
    session.execute(insert(_nodes), node_rows)
    session.execute(
        update(_head).where(_head.c.id == HEAD_ID).values(size=seq, frontier=b"".join(frontier))
    )
    return range(size, seq)


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
    size, blob = session.execute(stmt).one()
    return int(size), split_frontier(bytes(blob))
