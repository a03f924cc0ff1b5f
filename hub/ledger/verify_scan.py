"""The one pass over all entries that ``evi log verify`` makes, in blocks of 2^14 entries.

For each aligned block (sequence numbers ``k·2^14`` up to the next multiple) it fetches
the entry rows, recomputes leaf hashes from the stored bytes and every subtree from the
stored leaf hashes, and compares whole lists at a time with the stored tiles
(:class:`_TileCheck`), so the common case — nothing wrong — runs at the speed of
``hashlib`` and list comparison: on SQLite the block is read as just the leaf inputs
(``0x00`` and the bytes, joined by SQLite), the leaf hashes and the purge marks, and
only a block where something does not fit is read again with sequence numbers and
looked at entry by entry. Block roots are combined as the leaves of a small tree above
the blocks, which yields the higher stored subtrees, the root at every signed size and
the right edge the ledger head must hold.

Why the tree is rebuilt from the *stored* leaf hashes rather than from the bytes: every
link is still checked (bytes → leaf hash, leaf hash → level-0 tile → … → signed root),
but a changed entry is then named once, exactly, instead of once per subtree above it.

On SQLite the search-column check runs as ``json_extract`` queries beside the pass, on a
second core (see :class:`_Flagged`), flagging only rows that need a closer look; on
PostgreSQL each row is checked in Python.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import methodcaller
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from hub.ledger.canonical import format_time
from hub.ledger.hashing import EMPTY_ROOT, HASH_SIZE, frontier_append
from hub.ledger.proofs import fold, range_nodes
from hub.ledger.tiles import TILE_HEIGHT, TILE_WIDTH, slots, stored_level
from hub.store.tables.ledger import LedgerEntryRow

BLOCK_LEVEL = 14
BLOCK = 1 << BLOCK_LEVEL
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

Report = Callable[[int, str, "int | None"], None]

_sha256 = hashlib.sha256
_digest = methodcaller("digest")


# A purged entry keeps only its time and action.
_PURGED_CLEARED = " AND ".join(f"{name} IS NULL" for name in SEARCH_COLUMNS if name != "action")


def _sqlite_columns_ok() -> str:
    doc = "CAST(canonical AS TEXT)"
    same = " AND ".join(f"json_extract({doc}, '$.{name}') IS {name}" for name in SEARCH_COLUMNS)
    # SQLAlchemy stores SQLite times as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, always 6 digits)
    same += f" AND json_extract({doc}, '$.time') = replace(time, ' ', 'T') || 'Z'"
    return (
        f"CASE WHEN canonical IS NULL THEN ({_PURGED_CLEARED}) "
        f"WHEN json_valid({doc}) THEN ({same}) ELSE 0 END"
    )


def _sqlite_columns_ok_fast() -> str:
    """The same check with one JSON parse per row: the fields as one JSON array, compared
    as text with the columns rendered the same way. Equal text means equal values (both
    sides decode to them); a difference that is only one of spelling (an escape written
    another way) flags a row that the close look then clears. Stops with an error on
    bytes that are not JSON, and the careful query runs instead."""
    doc = "CAST(canonical AS TEXT)"
    paths = ", ".join(f"'$.{name}'" for name in (*SEARCH_COLUMNS, "time"))
    columns = ", ".join(SEARCH_COLUMNS) + ", replace(time, ' ', 'T') || 'Z'"
    return (
        f"CASE WHEN canonical IS NULL THEN ({_PURGED_CLEARED}) "
        f"ELSE json_extract({doc}, {paths}) = json_array({columns}) END"
    )


# Built from constants only (column names above), never from input.
_ENTRY_SQL = {
    "sqlite": "SELECT seq, leaf_hash, canonical, purged_at "
    "FROM ledger_entry WHERE seq >= ? AND seq < ? ORDER BY seq",
    "postgresql": "SELECT seq, leaf_hash, canonical, purged_at, time, "  # noqa: S608
    + ", ".join(SEARCH_COLUMNS)
    + " FROM ledger_entry WHERE seq >= %s AND seq < %s ORDER BY seq",
}
# SQLite, the common case: the leaf input (0x00 and the bytes, joined by SQLite, so Python
# hashes each entry without copying it again), the stored leaf hash, the purge mark.
_SQLITE_LEAVES = (
    "SELECT CAST(X'00' || canonical AS BLOB), leaf_hash, purged_at "
    "FROM ledger_entry WHERE seq >= ? AND seq < ? ORDER BY seq"
)
_SQLITE_FLAGGED = (
    "SELECT seq FROM ledger_entry WHERE seq >= ? AND seq < ? "  # noqa: S608
    "AND NOT (" + _sqlite_columns_ok() + ") ORDER BY seq"
)
_SQLITE_FLAGGED_FAST = (
    "SELECT seq FROM ledger_entry WHERE seq >= ? AND seq < ? "  # noqa: S608
    "AND NOT (" + _sqlite_columns_ok_fast() + ") ORDER BY seq"
)
_MAX_SEQ = "SELECT max(seq) FROM ledger_entry"
_TILE_SQL = {
    "sqlite": "SELECT start, hashes FROM ledger_tile WHERE level = ? AND start >= ? "
    "AND start < ? ORDER BY start",
    "postgresql": "SELECT start, hashes FROM ledger_tile WHERE level = %s AND start >= %s "
    "AND start < %s ORDER BY start",
}


def column_problem(row: Any) -> str | None:
    """What is wrong with an entry's search columns, judged against its stored bytes."""
    if row.canonical is None:
        filled = [
            name for name in SEARCH_COLUMNS if name != "action" and getattr(row, name) is not None
        ]
        return f"purged but still holds {', '.join(filled)}" if filled else None
    try:
        doc = json.loads(row.canonical)
    except (ValueError, UnicodeDecodeError):
        return "its stored bytes are not JSON"
    if not isinstance(doc, dict):
        return "its stored bytes are not a JSON object"
    wrong = [name for name in SEARCH_COLUMNS if doc.get(name) != getattr(row, name)]
    if doc.get("time") != format_time(row.time):
        wrong.insert(0, "time")
    if wrong:
        return f"search column(s) {', '.join(wrong)} do not match the stored bytes"
    return None


@contextmanager
def _mapped(cursor: Any) -> Iterator[None]:
    """SQLite: read the database file through a memory map while the block lasts.

    A full scan then reads pages straight from the operating system's file cache instead
    of copying each into the connection's page cache first (measured: the pass reads its
    rows about 15 % faster). Only for this connection and only while verifying; the
    setting it had is restored. SQLite caps the map (2 GB in common builds); the rest of
    a larger file is read as usual.
    """
    cursor.execute("PRAGMA mmap_size")
    (before,) = cursor.fetchone()
    cursor.execute(f"PRAGMA mmap_size={_MMAP_SIZE}")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA mmap_size={int(before)}")


_MMAP_SIZE = 1 << 40  # as much as SQLite allows


class _Flagged:
    """SQLite: the search-column check as ``json_extract`` queries beside the pass.

    ``json_extract`` runs inside SQLite, which releases the GIL, so on a machine with two
    cores this check runs beside the hashing at no cost in wall-clock time. The ranges of
    sequence numbers are taken from the front by a helper thread on a second connection,
    and from the back by the verifying thread once its own pass is done (:meth:`help`),
    so whichever side is faster does more. It only flags rows; each flagged row is then
    judged in the verifying session itself. (A row purged between the two snapshots
    could escape this check once; nothing else can.)
    """

    RANGE = 1 << 16

    def __init__(self, engine: Engine, end: int) -> None:
        self._todo = deque(
            (start, min(start + self.RANGE, end)) for start in range(0, end, self.RANGE)
        )
        self._lock = threading.Lock()
        self._seqs: list[int] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(engine,), daemon=True)
        self._thread.start()

    def _take(self, *, front: bool) -> tuple[int, int] | None:
        with self._lock:
            if not self._todo:
                return None
            return self._todo.popleft() if front else self._todo.pop()

    def _check(self, cursor: Any, first: int, end: int) -> None:
        try:
            cursor.execute(_SQLITE_FLAGGED_FAST, (first, end))
        except sqlite3.OperationalError:  # some stored bytes are not JSON
            cursor.execute(_SQLITE_FLAGGED, (first, end))
        flagged = [int(row[0]) for row in cursor.fetchall()]
        with self._lock:
            self._seqs.extend(flagged)

    def _run(self, engine: Engine) -> None:
        try:
            connection = engine.raw_connection()
            try:
                cursor = connection.cursor()
                with _mapped(cursor):
                    while (todo := self._take(front=True)) is not None:
                        self._check(cursor, *todo)
                cursor.close()
            finally:
                connection.close()
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def help(self, cursor: Any) -> None:
        """Check ranges from the back in the calling thread until none is left."""
        while (todo := self._take(front=False)) is not None:
            self._check(cursor, *todo)

    def result(self) -> list[int]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return sorted(self._seqs)


class _Row(NamedTuple):
    """A row of the PostgreSQL entry query, by name."""

    seq: int
    leaf_hash: bytes
    canonical: bytes | None
    purged_at: Any
    time: Any
    action: str
    decision: str | None
    outcome: str | None
    origin: str | None
    recipient: str | None
    actor: str | None
    participant: str | None
    correlation_id: str | None


@dataclass
class ScanResult:
    size: int = 0
    tree_intact: bool = True
    frontier: list[bytes] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=lambda: {0: EMPTY_ROOT})
    purged: list[tuple[int, int]] = field(default_factory=list)


class EntryScan:
    """Runs the pass; problems go to ``report(seq, what, last_seq_or_None)``."""

    def __init__(
        self,
        session: Session,
        report: Report,
        head_size: int,
        wanted: set[int],
        block_level: int = BLOCK_LEVEL,
    ) -> None:
        self.block_level = block_level
        self.block = 1 << block_level
        self.session = session
        self.conn: Connection = session.connection()
        self.dialect = self.conn.dialect.name
        # The driver's own cursor, in the session's transaction: SQLAlchemy's per-row
        # Result objects would cost more than all the hashing.
        self.cursor = self.conn.connection.cursor()
        self.report = report
        self.head_size = head_size
        self.wanted = wanted
        self.result = ScanResult()
        self.blocks: list[bytes] = []  # right edge of the tree of block roots
        self.tail: list[bytes] = []  # complete subtrees of the last, partial block
        self.columns_in_sql = self.dialect == "sqlite"
        self.tiles = _TileCheck(self.cursor, self.dialect, report)

    def run(self) -> ScanResult:
        if self.dialect != "sqlite":
            return self._run()
        with _mapped(self.cursor):
            return self._run()

    def _run(self) -> ScanResult:
        self.cursor.execute(_MAX_SEQ)
        (top,) = self.cursor.fetchone() or (None,)
        end = -1 if top is None else int(top)  # the highest sequence number stored
        flagged = _Flagged(self.conn.engine, end + 1) if self.columns_in_sql else None
        expected = 0
        for start in range(0, end + 1, self.block):
            stop = min(start + self.block, end + 1)
            if start <= self.head_size < start + self.block and self.head_size <= end:
                # entries are stored at or beyond the head: named once, in this block
                self.report(
                    self.head_size,
                    f"entries from {self.head_size} on were added outside the writer "
                    f"(the ledger head says {self.head_size} entries)",
                    None,
                )
            clean = self.columns_in_sql and expected == start
            leaves = self._clean(start, stop) if clean else None
            if leaves is not None:  # every entry is there, and its bytes give its leaf hash
                expected = stop
            else:
                self.cursor.execute(_ENTRY_SQL[self.dialect], (start, stop))
                rows = self.cursor.fetchall()
                if not rows:
                    continue  # a gap, named where the entries go on (or by the head)
                expected = self._gaps(expected, [row[0] for row in rows])
                leaves = [bytes(row[1]) for row in rows]
                self._entries(rows)
            if self.result.tree_intact:
                self._tree(start, leaves)
        self.result.size = expected
        if self.result.tree_intact:
            self.tiles.finish()
        if flagged is not None:
            flagged.help(self.cursor)
            for seq in flagged.result():
                if seq < expected:
                    self._columns(seq)
        if self.result.tree_intact:
            self.result.frontier = self.blocks + self.tail
        return self.result

    def _clean(self, start: int, stop: int) -> list[bytes] | None:
        """SQLite, the common case in a few C-speed list operations: the stored leaf hashes
        of ``start``..``stop - 1`` if every one of them is stored, holds its bytes, is not
        marked purged and its bytes give its leaf hash; else None (look row by row)."""
        self.cursor.execute(_SQLITE_LEAVES, (start, stop))
        rows = self.cursor.fetchall()
        inputs = [row[0] for row in rows]
        leaves = [row[1] for row in rows]
        if (
            len(rows) == stop - start
            and None not in inputs
            and [row[2] for row in rows].count(None) == len(rows)
            and list(map(_digest, map(_sha256, inputs))) == leaves
        ):
            return leaves
        return None

    def _gaps(self, expected: int, seqs: list[int]) -> int:
        """Report every run of missing sequence numbers before and among ``seqs``."""
        for seq in seqs:
            if seq != expected:
                self.report(expected, f"entries {expected} to {seq - 1} are missing", seq - 1)
                self.result.tree_intact = False
            expected = seq + 1
        return expected

    # -- each entry on its own --------------------------------------------------------

    def _entries(self, rows: Sequence[Any]) -> None:
        for row in rows:
            seq, stored, data, purged_at = row[:4]
            if data is None:
                if purged_at is None:
                    self.report(seq, "its stored bytes are gone but it was never purged", None)
                    continue
                self._purged(seq)
            elif _sha256(b"\x00" + data).digest() != stored:
                self.report(seq, "its stored bytes do not give its leaf hash (entry altered)", None)
                continue
            elif purged_at is not None:
                self.report(seq, "it is marked purged but still holds its bytes", None)
                continue
            if not self.columns_in_sql:
                problem = column_problem(_Row._make(row))
                if problem:
                    self.report(seq, problem, None)

    def _purged(self, seq: int) -> None:
        purged = self.result.purged
        if purged and purged[-1][1] == seq - 1:
            purged[-1] = (purged[-1][0], seq)
        else:
            purged.append((seq, seq))

    def _columns(self, seq: int) -> None:
        """Look closely at a row the SQL check flagged."""
        row = self.session.execute(
            select(
                LedgerEntryRow.time,
                LedgerEntryRow.canonical,
                *(getattr(LedgerEntryRow, name) for name in SEARCH_COLUMNS),
            ).where(LedgerEntryRow.seq == seq)
        ).one()
        problem = column_problem(row)
        if problem:
            self.report(seq, problem, None)

    # -- the tree -------------------------------------------------------------------

    def _tree(self, start: int, leaves: list[bytes]) -> None:
        """Check one aligned block (``start`` a multiple of the block size) of leaves."""
        levels = [leaves]
        self.tiles.add(0, start, leaves)
        for level in range(1, self.block_level + 1):
            pairs = iter(levels[-1])  # zip(pairs, pairs): each hash with the one after it
            current = [
                _sha256(b"\x01" + left + right).digest()
                for left, right in zip(pairs, pairs, strict=False)  # an odd last one waits
            ]
            if not current:
                break
            self.tiles.add(level, start >> level, current)
            levels.append(current)
        end = start + len(leaves)

        def intra(size: int) -> list[bytes]:
            return [levels[lv][idx - (start >> lv)] for lv, idx in range_nodes(start, size)]

        for size in sorted(s for s in self.wanted if start < s < start + self.block and s <= end):
            self.result.roots[size] = fold([*self.blocks, fold(intra(size))])
        if len(leaves) == self.block:
            block_index = start >> self.block_level
            for level, idx, digest in frontier_append(self.blocks, block_index, levels[-1][0]):
                self.tiles.add(self.block_level + level, idx, [digest])
            if end in self.wanted:
                self.result.roots[end] = fold(self.blocks)
            self.tail = []
        else:
            self.tail = intra(end)


class _TileCheck:
    """Compares the hashes the scan computes with the stored tiles, whole tiles at a time.

    Hashes arrive level by level in index order (from 0); complete tiles are compared
    as soon as they are known, the partial tiles at the right edge at :meth:`finish`.
    The common case is one query and one byte-string comparison per level and block;
    only a mismatch is looked at hash by hash.
    """

    def __init__(self, cursor: Any, dialect: str, report: Report) -> None:
        self.cursor = cursor
        self.sql = _TILE_SQL[dialect]
        self.report = report
        self.pending: dict[int, tuple[int, list[bytes]]] = {}

    def add(self, level: int, first: int, hashes: list[bytes]) -> None:
        if not stored_level(level):
            return
        start, buffer = self.pending.get(level, (first, []))
        buffer.extend(hashes)
        complete = (start + len(buffer)) // TILE_WIDTH * TILE_WIDTH - start
        if complete > 0:
            self._compare(level, start, buffer[:complete])
            start, buffer = start + complete, buffer[complete:]
        self.pending[level] = (start, buffer)

    def finish(self) -> None:
        for level, (start, buffer) in sorted(self.pending.items()):
            if buffer:
                self._compare(level, start, buffer)
        self.pending = {}

    def _compare(self, level: int, first: int, computed: list[bytes]) -> None:
        self.cursor.execute(self.sql, (level // TILE_HEIGHT, first, first + len(computed)))
        stored = [(int(start), bytes(blob)) for start, blob in self.cursor.fetchall()]
        position = first
        for start, blob in stored:
            if start != position or len(blob) % HASH_SIZE:
                break
            position += len(blob) // HASH_SIZE
        else:
            if b"".join(blob for _, blob in stored) == b"".join(computed):
                return
        found = slots(stored)
        for idx, digest in enumerate(computed, start=first):
            if found.get(idx) != digest:
                low, high = idx << level, ((idx + 1) << level) - 1
                where = f"entry {low}" if level == 0 else f"entries {low} to {high}"
                self.report(
                    low,
                    f"the stored tree hash over {where} does not match "
                    "(an entry, its place or a tree hash was altered)",
                    high,
                )
