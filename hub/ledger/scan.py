"""Streaming readers over the ledger tables for whole-ledger passes (verify, bench).

Keyset pagination in batches keeps memory flat and works the same on SQLite and
PostgreSQL, without holding a server-side cursor open for minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.tables.ledger import LedgerEntryRow, LedgerNodeRow

BATCH = 20_000
SEARCH_COLUMNS = (
    "action",
    "decision",
    "outcome",
    "origin",
    "recipient",
    "actor",
    "participant",
    "correlation_id",
)
"""Columns of ``ledger_entry`` that copy a field of the stored bytes (besides ``time``)."""


def entry_batches(session: Session, batch: int = BATCH) -> Iterator[list[Any]]:
    """Every entry row in sequence order, ``batch`` rows at a time."""
    columns = [
        LedgerEntryRow.seq,
        LedgerEntryRow.time,
        *(getattr(LedgerEntryRow, name) for name in SEARCH_COLUMNS),
        LedgerEntryRow.leaf_hash,
        LedgerEntryRow.canonical,
        LedgerEntryRow.purged_at,
    ]
    start = 0
    while True:
        rows = session.execute(
            select(*columns)
            .where(LedgerEntryRow.seq >= start)
            .order_by(LedgerEntryRow.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield list(rows)
        start = rows[-1].seq + 1


class LevelCursor:
    """Stored node hashes of one tree level, asked for in increasing index order."""

    def __init__(self, session: Session, level: int, batch: int = BATCH) -> None:
        self.session = session
        self.level = level
        self.batch = batch
        self.rows: list[tuple[int, bytes]] = []
        self.pos = 0
        self.exhausted = False

    def take(self, idx: int) -> bytes | None:
        """The stored hash at ``idx``, or None if there is none."""
        while True:
            while self.pos < len(self.rows) and self.rows[self.pos][0] < idx:
                self.pos += 1
            if self.pos < len(self.rows):
                found, digest = self.rows[self.pos]
                return digest if found == idx else None
            if self.exhausted:
                return None
            self._load(idx)

    def _load(self, start: int) -> None:
        rows = self.session.execute(
            select(LedgerNodeRow.idx, LedgerNodeRow.hash)
            .where(LedgerNodeRow.level == self.level, LedgerNodeRow.idx >= start)
            .order_by(LedgerNodeRow.idx)
            .limit(self.batch)
        ).all()
        self.rows = [(int(idx), bytes(digest)) for idx, digest in rows]
        self.pos = 0
        self.exhausted = len(rows) < self.batch
