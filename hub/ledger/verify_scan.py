"""The one pass over all entries that ``evi log verify`` makes, in blocks of 2^14 entries.

For each aligned block it fetches the entry rows, recomputes leaf hashes from the stored
bytes and every subtree from the stored leaf hashes, and compares whole lists at a time
with the stored tiles (:class:`_TileCheck`), so the common case — nothing wrong — runs
at the speed of ``hashlib`` and list comparison, and only a mismatch is looked at entry
by entry. Block roots are combined as the leaves of a small tree above the blocks, which
yields the higher stored subtrees, the root at every signed size and the right edge the
ledger head must hold.

Why the tree is rebuilt from the *stored* leaf hashes rather than from the bytes: every
link is still checked (bytes → leaf hash, leaf hash → level-0 tile → … → signed root),
but a changed entry is then named once, exactly, instead of once per subtree above it.

On SQLite the search-column check runs as one ``json_extract`` query beside the pass (see
:class:`_Flagged`), flagging only rows that need a closer look; on PostgreSQL each row is
checked in Python.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
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
    "FROM ledger_entry WHERE seq >= ? ORDER BY seq LIMIT ?",
    "postgresql": "SELECT seq, leaf_hash, canonical, purged_at, time, "  # noqa: S608
    + ", ".join(SEARCH_COLUMNS)
    + " FROM ledger_entry WHERE seq >= %s ORDER BY seq LIMIT %s",
}
_SQLITE_FLAGGED = (
    "SELECT seq FROM ledger_entry WHERE NOT (" + _sqlite_columns_ok() + ") ORDER BY seq"  # noqa: S608
)
_SQLITE_FLAGGED_FAST = (
    "SELECT seq FROM ledger_entry WHERE NOT (" + _sqlite_columns_ok_fast() + ") ORDER BY seq"  # noqa: S608
)
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


class _Flagged:
    """SQLite: the search-column check as one query on a second connection, in a thread.

    ``json_extract`` runs inside SQLite, which releases the GIL, so on a machine with two
    cores this check costs no wall-clock time next to the hashing. It only flags rows;
    each flagged row is then judged in the verifying session itself. (A row purged
    between the two snapshots could escape this check once; nothing else can.)
    """

    def __init__(self, engine: Engine) -> None:
        self._seqs: list[int] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(engine,), daemon=True)
        self._thread.start()

    def _run(self, engine: Engine) -> None:
        try:
            with engine.connect() as conn:
                try:
                    flagged = conn.exec_driver_sql(_SQLITE_FLAGGED_FAST).all()
                except OperationalError:  # some stored bytes are not JSON
                    conn.rollback()
                    flagged = conn.exec_driver_sql(_SQLITE_FLAGGED).all()
                self._seqs = [int(r[0]) for r in flagged]
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def result(self) -> list[int]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._seqs


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
        flagged = _Flagged(self.conn.engine) if self.columns_in_sql else None
        start = 0
        expected = 0
        while True:
            self.cursor.execute(_ENTRY_SQL[self.dialect], (start, self.block))
            rows = self.cursor.fetchall()
            if not rows:
                break
            seqs = [row[0] for row in rows]
            if seqs[0] != expected or seqs[-1] - seqs[0] != len(seqs) - 1:
                gap = next(
                    (expected + i for i, seq in enumerate(seqs) if seq != expected + i),
                    expected,
                )
                after = next(seq for seq in seqs if seq > gap)
                self.report(gap, f"entries {gap} to {after - 1} are missing", after - 1)
                self.result.tree_intact = False
            if seqs[0] <= self.head_size <= seqs[-1]:
                self.report(
                    self.head_size,
                    f"entries from {self.head_size} on were added outside the writer "
                    f"(the ledger head says {self.head_size} entries)",
                    None,
                )
            leaves = [bytes(row[1]) for row in rows]
            self._entries(rows, leaves)
            if self.result.tree_intact:
                self._tree(seqs[0], leaves)
            expected = seqs[-1] + 1
            start = expected
            if len(rows) < self.block:
                break
        self.result.size = expected
        if self.result.tree_intact:
            self.tiles.finish()
        if flagged is not None:
            for seq in flagged.result():
                if seq < expected:
                    self._columns(seq)
        if self.result.tree_intact:
            self.result.frontier = self.blocks + self.tail
        return self.result

    # -- each entry on its own --------------------------------------------------------

    def _entries(self, rows: Sequence[Any], leaves: list[bytes]) -> None:
        if self.columns_in_sql:
            # The common case, in a few C-speed list operations: every entry holds its
            # bytes, none is marked purged, and every leaf hash matches.
            data = [row[2] for row in rows]
            if (
                None not in data
                and [row[3] for row in rows].count(None) == len(rows)
                and [_sha256(b"\x00" + d).digest() for d in data] == leaves
            ):
                return
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
            below = levels[-1]
            current = [
                _sha256(b"\x01" + below[i] + below[i + 1]).digest()
                for i in range(0, len(below) - 1, 2)
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
