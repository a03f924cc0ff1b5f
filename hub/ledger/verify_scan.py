"""The one pass over all entries that ``evi log verify`` makes, in blocks of 2^14 entries.

Each aligned block (sequence numbers ``k·2^14`` up to the next multiple) is checked on
its own by :func:`hub.ledger.verify_blocks.scan_block`: leaf hashes recomputed from the
stored bytes, the tree inside the block rebuilt from the stored leaf hashes and compared
with the stored tiles, the search columns checked against the bytes. This module then
puts the blocks together in sequence order: runs of missing entries, problems in the
order of the entries, purged ranges, the tiles that span blocks, and the tree above the
blocks — block roots combined as the leaves of a small tree, which yields the higher
stored subtrees, the root at every signed size and the right edge the ledger head must
hold.

On SQLite with more than a few blocks, a second process scans blocks from the front
while this one scans from the back (:class:`_Helper`; each side checks the search
columns of its own blocks), so both cores work; see :mod:`hub.ledger.verify_worker` for
why a process. If the helper cannot start or fails, this process scans its blocks too.
On PostgreSQL each row's search columns are checked in Python.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from hub.ledger.canonical import format_time
from hub.ledger.hashing import EMPTY_ROOT, frontier_append
from hub.ledger.proofs import fold
from hub.ledger.verify_blocks import (
    BlockResult,
    Report,
    TileCheck,
    scan_block,
)
from hub.store.tables.ledger import SEARCH_COLUMNS, LedgerEntryRow

BLOCK_LEVEL = 14
BLOCK = 1 << BLOCK_LEVEL
HELPER_MIN_BLOCKS = 4
"""SQLite: fewer blocks than this are scanned by this process alone."""

_MAX_SEQ = "SELECT max(seq) FROM ledger_entry"
_MMAP_SIZE = 1 << 40  # as much as SQLite allows

__all__ = ["BLOCK", "BLOCK_LEVEL", "SEARCH_COLUMNS", "EntryScan", "ScanResult", "column_problem"]


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


def _columns_in_python(row: Any) -> str | None:
    return column_problem(_Row._make(row))


@contextmanager
def _mapped(cursor: Any) -> Iterator[None]:
    """SQLite: read the database file through a memory map while the block lasts.

    A full scan then reads pages straight from the operating system's file cache instead
    of copying each into the connection's page cache first (measured: rows read about
    10-15 % faster). Only for this connection and only while verifying; the setting it
    had is restored. SQLite caps the map (2 GB in common builds); the rest of a larger
    file is read as usual.
    """
    cursor.execute("PRAGMA mmap_size")
    (before,) = cursor.fetchone()
    cursor.execute(f"PRAGMA mmap_size={_MMAP_SIZE}")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA mmap_size={int(before)}")


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
        self.tiles = TileCheck(self.cursor, self.dialect, report)

    def run(self) -> ScanResult:
        if self.dialect != "sqlite":
            return self._run()
        with _mapped(self.cursor):
            return self._run()

    def _run(self) -> ScanResult:
        self.cursor.execute(_MAX_SEQ)
        (top,) = self.cursor.fetchone() or (None,)
        end = -1 if top is None else int(top)  # the highest sequence number stored
        todo = deque(
            (start, min(start + self.block, end + 1)) for start in range(0, end + 1, self.block)
        )
        results: dict[int, BlockResult] = {}
        columns = None if self.dialect == "sqlite" else _columns_in_python

        def scan(start: int, stop: int) -> None:
            results[start] = scan_block(
                self.cursor, self.dialect, start, stop, self.block_level, self.wanted, columns
            )

        path = self.conn.engine.url.database if self.dialect == "sqlite" else None
        if path and path != ":memory:" and len(todo) >= HELPER_MIN_BLOCKS:
            scan(*todo.pop())  # the last block, which may grow while we read, is ours
            helper = _Helper(todo, os.path.abspath(path), self.block_level, self.wanted)
            while (block := helper.take()) is not None:
                scan(*block)
            results.update(helper.finish())
            for block in helper.lost:  # sent to the helper but not answered
                scan(*block)
        else:
            for block in todo:
                scan(*block)
        return self._combine([results[start] for start in sorted(results)], end)

    def _combine(self, blocks: list[BlockResult], end: int) -> ScanResult:
        """Put the blocks' results together in sequence order."""
        expected = 0
        flagged: list[int] = []
        for block in blocks:
            if block.start <= self.head_size < block.start + self.block and self.head_size <= end:
                # entries are stored at or beyond the head: named once, in this block
                self.report(
                    self.head_size,
                    f"entries from {self.head_size} on were added outside the writer "
                    f"(the ledger head says {self.head_size} entries)",
                    None,
                )
            seqs = [block.start] if block.seqs is None else block.seqs
            if not seqs:
                continue  # a gap, named where the entries go on (or by the head)
            for seq in seqs:  # every run of missing entries before or among these
                if seq != expected:
                    self.report(expected, f"entries {expected} to {seq - 1} are missing", seq - 1)
                    self.result.tree_intact = False
                expected = seq + 1
            if block.seqs is None:
                expected = block.stop
            for problem in block.problems:
                self.report(*problem)
            for first, last in block.purged:
                purged = self.result.purged
                if purged and purged[-1][1] == first - 1:
                    purged[-1] = (purged[-1][0], last)
                else:
                    purged.append((first, last))
            flagged += block.flagged
            if self.result.tree_intact and block.complete:
                self._tree(block)
        self.result.size = expected
        if self.result.tree_intact:
            self.tiles.finish()
        for seq in flagged:
            if seq < expected:
                self._columns(seq)
        if self.result.tree_intact:
            self.result.frontier = self.blocks + self.tail
        return self.result

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

    def _tree(self, block: BlockResult) -> None:
        """Add one complete block to the tree: its problems inside, the tiles it shares
        with the blocks beside it, the roots at wanted sizes, the tree above the blocks."""
        for problem in block.tile_problems:
            self.report(*problem)
        for level, first, hashes in block.edge:
            self.tiles.add(level, first, hashes)
        for size, inside in block.within.items():
            self.result.roots[size] = fold([*self.blocks, fold(inside)])
        if block.root is not None:
            block_index = block.start >> self.block_level
            for level, idx, digest in frontier_append(self.blocks, block_index, block.root):
                self.tiles.add(self.block_level + level, idx, [digest])
            if block.stop in self.wanted:
                self.result.roots[block.stop] = fold(self.blocks)
            self.tail = []
        else:
            self.tail = block.tail


class _Helper:
    """The second process (:mod:`hub.ledger.verify_worker`) and the thread that feeds it.

    Blocks are taken under a lock: by the feeding thread from the front of ``todo`` (one
    at a time: measured, two in flight saved the helper no waiting but left this process
    waiting longer at the end), by the verifying thread from the back (:meth:`take`),
    until none is left. Whatever the
    helper was sent but did not answer — it failed to start, or died — is in
    :attr:`lost` afterwards, for the verifying thread to scan.
    """

    IN_FLIGHT = 1
    COMMAND = (sys.executable, "-m", "hub.ledger.verify_worker")

    def __init__(self, todo: deque[tuple[int, int]], path: str, level: int, wanted: set[int]):
        self._todo = todo
        self._lock = threading.Lock()
        self._results: dict[int, BlockResult] = {}
        self.lost: list[tuple[int, int]] = []
        self._thread = threading.Thread(
            target=self._feed, args=(path, level, sorted(wanted)), daemon=True
        )
        self._thread.start()

    def take(self) -> tuple[int, int] | None:
        with self._lock:
            return self._todo.pop() if self._todo else None

    def _take_front(self) -> tuple[int, int] | None:
        with self._lock:
            return self._todo.popleft() if self._todo else None

    def _feed(self, path: str, level: int, wanted: list[int]) -> None:
        sent: deque[tuple[int, int]] = deque()
        process = None
        try:
            process = subprocess.Popen(
                self.COMMAND,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert process.stdin is not None and process.stdout is not None
            pickle.dump((path, level, wanted), process.stdin)
            while True:
                while len(sent) < self.IN_FLIGHT and (block := self._take_front()) is not None:
                    pickle.dump(block, process.stdin)
                    sent.append(block)
                process.stdin.flush()
                if not sent:
                    break
                # Our own child process, answering over its own pipe: trusted.
                result = pickle.load(process.stdout)  # noqa: S301
                if not isinstance(result, BlockResult) or result.start != sent[0][0]:
                    raise RuntimeError("the verify helper answered out of turn")
                self._results[sent.popleft()[0]] = result
            pickle.dump(None, process.stdin)
            process.stdin.close()
            process.wait(timeout=60)
        except Exception:  # the verifying thread scans what is left
            self.lost = list(sent)
            if process is not None:
                process.kill()
                process.wait()
            with self._lock:  # and nothing more goes to the helper
                self.lost += list(self._todo)
                self._todo.clear()

    def finish(self) -> dict[int, BlockResult]:
        self._thread.join()
        return self._results
