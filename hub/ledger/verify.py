"""Full verification of the stored ledger: what ``evi log verify`` runs.

One pass over every entry in sequence order recomputes each leaf hash from the stored
bytes, checks the search columns against those bytes, rebuilds the tree and compares
every stored complete subtree, the head and the root at every checkpointed size. Then
every checkpoint signature, the consistency of successive checkpoints, and any copies
in the witness directory are checked against the rebuilt tree.

What the report can name depends on how much an attacker rewrote: an entry changed on
its own is named exactly (its bytes no longer give its leaf hash, or its leaf hash no
longer matches the level-0 node); an entry rewritten together with every hash above it
is caught by the first signed checkpoint whose root no longer matches, and named as the
range since the last checkpoint that still matches. Deleting the newest entries together
with their checkpoints is caught by the witness directory's copies.

Memory stays small (O(log n) for the tree, one batch of rows at a time).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.errors import EviError
from hub.ledger.canonical import format_time
from hub.ledger.checkpoint import open_checkpoint
from hub.ledger.hashing import EMPTY_ROOT, frontier_append, leaf_hash, root_from_frontier
from hub.ledger.proofs import ProofError, verify_consistency
from hub.ledger.signing import NoteError, NoteVerifier
from hub.ledger.tree import StoredTree
from hub.ledger.writer import HEAD_ID
from hub.store.tables.ledger import (
    LedgerCheckpointRow,
    LedgerEntryRow,
    LedgerHeadRow,
    LedgerNodeRow,
)

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
KEPT_WHEN_PURGED = ("action",)


class LedgerIntegrityError(EviError):
    """The stored ledger does not verify; the message names the first bad entry."""

    exit_code = 4
    http_status = 500


@dataclass(frozen=True)
class Problem:
    """One thing that does not fit. ``seq`` is the first entry concerned, when there is one."""

    seq: int | None
    what: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.what}" if self.seq is not None else self.what


@dataclass
class VerifyReport:
    size: int = 0
    entries_checked: int = 0
    purged: list[tuple[int, int]] = field(default_factory=list)
    checkpoints: int = 0
    witness_copies: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        """The problem with the lowest sequence number (entry problems before others)."""
        if not self.problems:
            return None
        with_seq = [p for p in self.problems if p.seq is not None]
        if with_seq:
            return min(with_seq, key=lambda p: p.seq if p.seq is not None else -1)
        return self.problems[0]

    def add_purged(self, seq: int) -> None:
        if self.purged and self.purged[-1][1] == seq - 1:
            self.purged[-1] = (self.purged[-1][0], seq)
        else:
            self.purged.append((seq, seq))


@dataclass(frozen=True)
class _Signed:
    label: str
    size: int
    root: bytes


class _LevelCursor:
    """Stored node hashes of one level, read in index order in batches."""

    def __init__(self, session: Session, level: int) -> None:
        self.session = session
        self.level = level
        self.rows: list[tuple[int, bytes]] = []
        self.pos = 0
        self.next_idx = 0
        self.exhausted = False

    def take(self, idx: int) -> bytes | None:
        """The stored hash at ``idx`` (called with increasing ``idx``); None if absent."""
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
            .limit(BATCH)
        ).all()
        self.rows = [(int(idx), bytes(digest)) for idx, digest in rows]
        self.pos = 0
        self.exhausted = len(rows) < BATCH


def _entry_batches(session: Session) -> Iterator[list[Any]]:
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
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield list(rows)
        start = rows[-1].seq + 1


def _column_problems(row: Any) -> str | None:
    if row.canonical is None:
        filled = [
            name
            for name in SEARCH_COLUMNS
            if name not in KEPT_WHEN_PURGED and getattr(row, name) is not None
        ]
        return f"purged but still holds {', '.join(filled)}" if filled else None
    try:
        doc = json.loads(row.canonical)
    except (ValueError, UnicodeDecodeError):
        return "stored bytes are not JSON"
    if not isinstance(doc, dict):
        return "stored bytes are not a JSON object"
    wrong = [name for name in SEARCH_COLUMNS if doc.get(name) != getattr(row, name)]
    if doc.get("time") != format_time(row.time):
        wrong.insert(0, "time")
    if wrong:
        return f"search column(s) {', '.join(wrong)} do not match the stored bytes"
    return None


def verify_ledger(
    session: Session,
    verifier: NoteVerifier | None,
    witness_notes: Mapping[str, str] | None = None,
    *,
    max_problems: int = 50,
) -> VerifyReport:
    """Check everything stored; never writes. ``witness_notes`` maps a name to a note text.

    Without ``verifier`` checkpoint signatures cannot be checked and each checkpoint is
    reported as a problem.
    """
    report = VerifyReport()
    head = session.get(LedgerHeadRow, HEAD_ID)
    head_size = head.size if head is not None else 0

    def problem(seq: int | None, what: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(Problem(seq, what))

    # Signed sizes to recompute roots for: the database's checkpoints and witness copies.
    stored_checkpoints = session.scalars(
        select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.id)
    ).all()
    signed: list[_Signed] = []
    for row in stored_checkpoints:
        label = f"checkpoint #{row.id} (size {row.tree_size})"
        if verifier is None:
            problem(None, f"{label}: no public key given, its signature cannot be checked")
            continue
        try:
            _, size, root = open_checkpoint(row.note, verifier)
        except NoteError as exc:
            problem(None, f"{label}: {exc}")
            continue
        if size != row.tree_size or root != bytes(row.root_hash):
            problem(None, f"{label}: its size or root columns differ from its signed note")
            continue
        signed.append(_Signed(label, size, root))
    report.checkpoints = len(stored_checkpoints)
    witnessed: list[_Signed] = []
    for name, note in sorted((witness_notes or {}).items()):
        label = f"witness copy {name}"
        if verifier is None:
            problem(None, f"{label}: no public key given, its signature cannot be checked")
            continue
        try:
            _, size, root = open_checkpoint(note, verifier)
        except NoteError as exc:
            problem(None, f"{label}: {exc}")
            continue
        witnessed.append(_Signed(label, size, root))
    report.witness_copies = len(witness_notes or {})
    wanted = {s.size for s in signed} | {s.size for s in witnessed}
    roots_at: dict[int, bytes] = {0: EMPTY_ROOT}

    # One pass over the entries, rebuilding the tree.
    frontier: list[bytes] = []
    levels: dict[int, _LevelCursor] = {}
    expected = 0
    tree_intact = True
    for batch in _entry_batches(session):
        for row in batch:
            seq = int(row.seq)
            if seq != expected:
                problem(expected, f"entries {expected} to {seq - 1} are missing")
                tree_intact = False
                expected = seq
            if seq == head_size:
                problem(
                    seq,
                    f"entries from {seq} on were added outside the writer "
                    f"(the ledger head says {head_size} entries)",
                )
            report.entries_checked += 1
            stored_leaf = bytes(row.leaf_hash)
            entry_bad = False
            if row.canonical is None:
                if row.purged_at is None:
                    problem(seq, "its stored bytes are gone but it was never purged")
                    entry_bad = True
                else:
                    report.add_purged(seq)
                leaf = stored_leaf
            else:
                leaf = leaf_hash(bytes(row.canonical))
                if leaf != stored_leaf:
                    problem(seq, "its stored bytes do not give its leaf hash (entry altered)")
                    entry_bad = True
                elif row.purged_at is not None:
                    problem(seq, "it is marked purged but still holds its bytes")
                    entry_bad = True
            if not entry_bad:
                columns = _column_problems(row)
                if columns:
                    problem(seq, columns)
                    entry_bad = True
            if tree_intact:
                completed = [(0, seq, leaf), *frontier_append(frontier, seq, leaf)]
                for level, idx, digest in completed:
                    cursor = levels.get(level)
                    if cursor is None:
                        cursor = levels[level] = _LevelCursor(session, level)
                    if cursor.take(idx) != digest and not (entry_bad and level == 0):
                        first, last = idx << level, ((idx + 1) << level) - 1
                        where = f"entry {first}" if level == 0 else f"entries {first} to {last}"
                        problem(
                            first,
                            f"the stored tree hash over {where} does not match "
                            "(an entry, its place or a tree hash was altered)",
                        )
                if seq + 1 in wanted:
                    roots_at[seq + 1] = root_from_frontier(frontier)
            expected = seq + 1
    size = expected
    report.size = size
    if size < head_size:
        problem(
            size,
            f"entries {size} to {head_size - 1} are missing (the ledger head says {head_size})",
        )
    if (
        tree_intact
        and head is not None
        and size == head_size
        and (head.frontier != b"".join(frontier))
    ):
        problem(None, "the ledger head's tree edge does not match the entries")

    # Stored nodes beyond what the entries make complete.
    for level, count in session.execute(
        select(LedgerNodeRow.level, func.count()).group_by(LedgerNodeRow.level)
    ):
        if count > size >> int(level):
            problem(
                None,
                f"{count - (size >> int(level))} stored tree hash(es) at level {level} "
                "belong to no entries",
            )

    # Checkpoints and witness copies against the rebuilt tree.
    matched: list[int] = [0]
    for item in sorted(signed, key=lambda s: s.size):
        if item.size > size:
            problem(
                size,
                f"{item.label} covers {item.size} entries but only {size} are stored "
                "(entries were removed)",
            )
        elif item.size in roots_at and roots_at[item.size] != item.root:
            start = max(m for m in matched if m < item.size) if item.size else 0
            problem(
                start,
                f"entries {start} to {item.size - 1} no longer give the root signed "
                f"in {item.label}; an entry in this range was altered",
            )
        else:
            matched.append(item.size)
    tree = StoredTree(session)
    for earlier, later in itertools.pairwise(signed):
        if later.size < earlier.size:
            problem(None, f"{later.label} is smaller than the earlier {earlier.label}")
            continue
        if later.size > size or not tree_intact:
            continue
        try:
            proof = tree.consistency_proof(earlier.size, later.size)
            verify_consistency(earlier.size, later.size, earlier.root, later.root, proof)
        except (ProofError, EviError) as exc:
            problem(None, f"{later.label} is not consistent with {earlier.label}: {exc}")
    known = {(s.size, s.root) for s in signed}
    for item in witnessed:
        if item.size > size:
            problem(
                size,
                f"{item.label} covers {item.size} entries but only {size} are stored "
                "(the ledger was truncated)",
            )
        elif item.size in roots_at and roots_at[item.size] != item.root:
            problem(
                None,
                f"{item.label} of size {item.size} does not match the ledger; "
                "the ledger was rewritten",
            )
        elif (item.size, item.root) not in known:
            problem(
                None, f"{item.label} (size {item.size}) is missing from the database's checkpoints"
            )
    return report
