"""One block of ``evi log verify``'s pass: everything about entries ``start``..``stop - 1``.

:func:`scan_block` checks the entries of one aligned block (sequence numbers ``k·2^b`` up
to the next multiple, or up to the last entry) and returns what it found as a
:class:`BlockResult`; :mod:`hub.ledger.verify_scan` puts the blocks' results together in
sequence order (gaps between blocks, the tree above the blocks, the tiles that span
blocks). Blocks do not depend on each other, so they can be scanned in any order and in
another process: on SQLite a second process (:mod:`hub.ledger.verify_worker`) takes
blocks from the front while the verifying one takes them from the back. That is why
this module needs only the standard library and the hashing and tree modules, which
need nothing else either: the helper process starts in a tenth of a second.

For each block: on SQLite the common case — every entry there, holding its bytes, not
marked purged, its bytes giving its leaf hash — is settled with a few list operations
over the leaf inputs (``0x00`` and the bytes, joined by SQLite) and the stored leaf
hashes; any other block is read again with sequence numbers and looked at entry by
entry. Then the tree inside the block is rebuilt from the stored leaf hashes and
compared with the stored tiles that lie wholly inside it (:class:`TileCheck`); the
hashes at the levels whose tiles span blocks are handed back. On SQLite the search
columns of the block are checked against the bytes by one ``json_extract`` query.

Why the tree is rebuilt from the *stored* leaf hashes rather than from the bytes: every
link is still checked (bytes → leaf hash, leaf hash → level-0 tile → … → signed root),
but a changed entry is then named once, exactly, instead of once per subtree above it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from operator import methodcaller
from typing import Any

from hub.ledger.hashing import HASH_SIZE
from hub.ledger.proofs import range_nodes
from hub.ledger.tiles import TILE_HEIGHT, TILE_WIDTH, slots, stored_level
from hub.store.tables.ledger import SEARCH_COLUMNS

Problem = tuple[int, str, "int | None"]
"""(first sequence number, what is wrong, last sequence number or None)."""
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
ENTRY_SQL = {
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
TILE_SQL = {
    "sqlite": "SELECT start, hashes FROM ledger_tile WHERE level = ? AND start >= ? "
    "AND start < ? ORDER BY start",
    "postgresql": "SELECT start, hashes FROM ledger_tile WHERE level = %s AND start >= %s "
    "AND start < %s ORDER BY start",
}


@dataclass
class BlockResult:
    """What one block holds and what is wrong with it, in the order it was found."""

    start: int
    stop: int
    seqs: list[int] | None = None
    """The sequence numbers stored, when not every one from ``start`` to ``stop - 1``."""
    problems: list[Problem] = field(default_factory=list)
    """Entries on their own: bytes, leaf hash, purge marks (and columns on PostgreSQL)."""
    purged: list[tuple[int, int]] = field(default_factory=list)
    flagged: list[int] = field(default_factory=list)
    """SQLite: entries whose search columns the SQL check could not clear."""
    complete: bool = False
    """Every entry from ``start`` to ``stop - 1`` is stored: the tree parts below are set."""
    tile_problems: list[Problem] = field(default_factory=list)
    edge: list[tuple[int, int, list[bytes]]] = field(default_factory=list)
    """(level, first index, hashes) at the stored levels whose tiles reach past the block."""
    root: bytes | None = None
    """The hash of the whole block, when it is full."""
    tail: list[bytes] = field(default_factory=list)
    """The complete subtrees of a partial block, left to right."""
    within: dict[int, list[bytes]] = field(default_factory=dict)
    """For each wanted tree size that ends inside the block: its subtrees inside it."""


def scan_block(
    cursor: Any,
    dialect: str,
    start: int,
    stop: int,
    block_level: int,
    wanted: Collection[int],
    columns: Callable[[Sequence[Any]], str | None] | None = None,
) -> BlockResult:
    """Check entries ``start``..``stop - 1`` (``start`` a multiple of ``2^block_level``,
    ``stop`` at most one block further) with the DB-API ``cursor``; ``columns`` judges a
    row's search columns in Python (PostgreSQL), otherwise SQLite's query does."""
    result = BlockResult(start, stop)
    leaves = _clean(cursor, start, stop) if dialect == "sqlite" else None
    if leaves is None:
        cursor.execute(ENTRY_SQL[dialect], (start, stop))
        rows = cursor.fetchall()
        leaves = [bytes(row[1]) for row in rows]
        if len(rows) != stop - start:
            result.seqs = [int(row[0]) for row in rows]
        _entries(rows, result, columns)
    if dialect == "sqlite":
        result.flagged = _flagged(cursor, start, stop)
    if result.seqs is None:
        result.complete = True
        _tree(cursor, dialect, result, block_level, leaves, wanted)
    return result


def _clean(cursor: Any, start: int, stop: int) -> list[bytes] | None:
    """SQLite, the common case in a few C-speed list operations: the stored leaf hashes of
    ``start``..``stop - 1`` if every one of them is stored, holds its bytes, is not marked
    purged and its bytes give its leaf hash; else None (look row by row)."""
    cursor.execute(_SQLITE_LEAVES, (start, stop))
    rows = cursor.fetchall()
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


def _entries(
    rows: Sequence[Any],
    result: BlockResult,
    columns: Callable[[Sequence[Any]], str | None] | None,
) -> None:
    """Each entry on its own."""
    report = result.problems.append
    purged = result.purged
    for row in rows:
        seq, stored, data, purged_at = row[:4]
        if data is None:
            if purged_at is None:
                report((seq, "its stored bytes are gone but it was never purged", None))
                continue
            if purged and purged[-1][1] == seq - 1:
                purged[-1] = (purged[-1][0], seq)
            else:
                purged.append((seq, seq))
        elif _sha256(b"\x00" + data).digest() != stored:
            report((seq, "its stored bytes do not give its leaf hash (entry altered)", None))
            continue
        elif purged_at is not None:
            report((seq, "it is marked purged but still holds its bytes", None))
            continue
        if columns is not None:
            problem = columns(row)
            if problem:
                report((seq, problem, None))


def _flagged(cursor: Any, start: int, stop: int) -> list[int]:
    """SQLite: the entries whose search columns ``json_extract`` does not find in their
    bytes (only flagged: each is then judged in Python)."""
    try:
        cursor.execute(_SQLITE_FLAGGED_FAST, (start, stop))
    except sqlite3.OperationalError:  # some stored bytes are not JSON
        cursor.execute(_SQLITE_FLAGGED, (start, stop))
    return [int(row[0]) for row in cursor.fetchall()]


def _tree(
    cursor: Any,
    dialect: str,
    result: BlockResult,
    block_level: int,
    leaves: list[bytes],
    wanted: Collection[int],
) -> None:
    """The tree inside one complete block of leaves (full, or the last, partial one)."""
    start, full = result.start, len(leaves) == 1 << block_level
    # tiles wholly inside a full block are compared here, the others where blocks meet
    inside = TileCheck(cursor, dialect, lambda *p: result.tile_problems.append(p))
    levels = [leaves]
    for level in range(block_level + 1):
        if level:
            pairs = iter(levels[-1])  # zip(pairs, pairs): each hash with the one after it
            current = [
                _sha256(b"\x01" + left + right).digest()
                for left, right in zip(pairs, pairs, strict=False)  # an odd last one waits
            ]
            if not current:
                break
            levels.append(current)
        if stored_level(level):
            if full and level + TILE_HEIGHT <= block_level:
                inside.add(level, start >> level, levels[level])
            else:
                result.edge.append((level, start >> level, levels[level]))
    end = start + len(leaves)

    def within(size: int) -> list[bytes]:
        return [levels[lv][idx - (start >> lv)] for lv, idx in range_nodes(start, size)]

    for size in sorted(s for s in wanted if start < s < start + (1 << block_level) and s <= end):
        result.within[size] = within(size)
    if full:
        result.root = levels[-1][0]
    else:
        result.tail = within(end)


class TileCheck:
    """Compares the hashes the scan computes with the stored tiles, whole tiles at a time.

    Hashes arrive level by level in index order (from 0); complete tiles are compared
    as soon as they are known, the partial tiles at the right edge at :meth:`finish`.
    The common case is one query and one byte-string comparison per level and block;
    only a mismatch is looked at hash by hash.
    """

    def __init__(self, cursor: Any, dialect: str, report: Report) -> None:
        self.cursor = cursor
        self.sql = TILE_SQL[dialect]
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
