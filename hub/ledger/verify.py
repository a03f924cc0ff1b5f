"""Full verification of the stored ledger: what ``evi log verify`` runs.

One pass over every entry in sequence order recomputes each leaf hash from the stored
bytes, checks the search columns against those bytes, rebuilds the tree from the stored
leaf hashes comparing every stored tile of subtree hashes, and records the root at every
signed size. Then every checkpoint signature, the consistency of successive checkpoints,
the head, and any copies in the witness directory are checked against the rebuilt tree.

How exactly a change is named depends on how much was rewritten: an entry changed on its
own is named exactly (its bytes no longer give its leaf hash; or, rewritten with its
leaf hash, shifted or swapped, its leaf no longer matches the level-0 tile); an entry
rewritten together with every hash above it is caught by the first signed checkpoint
whose root no longer matches, and named as the range since the last checkpoint that
still matches. Removing the newest entries together with their checkpoints is caught by
the witness directory's copies. A problem is not reported again for a larger range that
contains one already reported.

Memory stays small: O(log n) for the tree and one batch of rows at a time.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.errors import EviError
from hub.ledger.checkpoint import open_checkpoint
from hub.ledger.hashing import EMPTY_ROOT, HASH_SIZE
from hub.ledger.proofs import ProofError, verify_consistency
from hub.ledger.signing import NoteError, NoteVerifier
from hub.ledger.tiles import TILE_HEIGHT
from hub.ledger.tree import StoredTree
from hub.ledger.verify_history import check_purges, check_signed_before
from hub.ledger.verify_scan import BLOCK_LEVEL, EntryScan
from hub.ledger.writer import HEAD_ID
from hub.store.tables.ledger import LedgerCheckpointRow, LedgerHeadRow, LedgerTileRow


class LedgerIntegrityError(EviError):
    """The stored ledger does not verify; the message names the first bad entry."""

    exit_code = 4
    http_status = 500


@dataclass(frozen=True)
class Problem:
    """One thing that does not fit: entries ``seq``..``last`` when it concerns entries."""

    seq: int | None
    what: str
    last: int | None = None

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.what}" if self.seq is not None else self.what


@dataclass
class VerifyReport:
    size: int = 0
    purged: list[tuple[int, int]] = field(default_factory=list)
    checkpoints: int = 0
    witness_copies: int = 0
    superseded: list[tuple[str, int]] = field(default_factory=list)
    """Witness copies a recorded restore superseded: (name, its ``log_restored`` entry)."""
    problems: list[Problem] = field(default_factory=list)
    unlisted: int = 0  # problems found beyond the ones listed (the list is capped)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        """The problem at the lowest sequence number; else the first one found."""
        with_seq = [p for p in self.problems if p.seq is not None]
        if with_seq:
            return min(with_seq, key=lambda p: p.seq or 0)
        return self.problems[0] if self.problems else None

    def as_json(self) -> dict[str, Any]:
        """The report as `evi log verify --json` prints it (a contract, see ledger.md)."""
        first = self.first_problem
        return {
            "ok": self.ok,
            "size": self.size,
            "checkpoints": self.checkpoints,
            "witness_copies": self.witness_copies,
            "superseded_witness_copies": [
                {"name": name, "restore_seq": seq} for name, seq in self.superseded
            ],
            "purged": [list(r) for r in self.purged],
            "first_bad_seq": first.seq if first else None,
            "problems": [{"seq": p.seq, "what": p.what} for p in self.problems],
            "unlisted_problems": self.unlisted,
        }


@dataclass(frozen=True)
class _Signed:
    label: str
    size: int
    root: bytes


class _Verifier:
    def __init__(self, session: Session, verifier: NoteVerifier | None, limit: int) -> None:
        self.session = session
        self.verifier = verifier
        self.limit = limit
        self.report = VerifyReport()
        self.reported: list[int] = []  # sequence numbers already named, sorted
        self.roots: dict[int, bytes] = {0: EMPTY_ROOT}
        self.tree_intact = True

    def problem(self, seq: int | None, what: str, last: int | None = None) -> None:
        if seq is not None:
            end = seq if last is None else last
            i = bisect.bisect_left(self.reported, seq)
            if last is not None and i < len(self.reported) and self.reported[i] <= end:
                return  # a narrower problem inside this range is already named
            bisect.insort(self.reported, seq)
        if len(self.report.problems) < self.limit:
            self.report.problems.append(Problem(seq, what, last))
        else:
            self.report.unlisted += 1

    def signed(self, label: str, note: str, columns: tuple[int, bytes] | None) -> _Signed | None:
        if self.verifier is None:
            self.problem(None, f"{label}: no public key given, its signature cannot be checked")
            return None
        try:
            _, size, root = open_checkpoint(note, self.verifier)
        except NoteError as exc:
            self.problem(None, f"{label}: {exc}")
            return None
        if columns is not None and columns != (size, root):
            self.problem(None, f"{label}: its size or root columns differ from its signed note")
            return None
        return _Signed(label, size, root)

    def against_signed(self, size: int, items: list[_Signed], *, witness: bool) -> None:
        matched = [0]
        for item in sorted(items, key=lambda s: s.size):
            if item.size > size:
                cause = "the ledger was truncated" if witness else "entries were removed"
                self.problem(
                    size,
                    f"{item.label} covers {item.size} entries but only {size} are stored ({cause})",
                    item.size - 1,
                )
            elif item.size in self.roots and self.roots[item.size] != item.root:
                start = max(m for m in matched if m < item.size)
                self.problem(
                    start,
                    f"entries {start} to {item.size - 1} no longer give the root signed in "
                    f"{item.label}; an entry in this range was altered",
                    item.size - 1,
                )
            else:
                matched.append(item.size)

    def consistency(self, signed: list[_Signed], size: int) -> None:
        tree = StoredTree(self.session)
        for earlier, later in itertools.pairwise(signed):
            if later.size < earlier.size:
                self.problem(None, f"{later.label} is smaller than the earlier {earlier.label}")
            elif later.size <= size and self.tree_intact:
                try:
                    proof = tree.consistency_proof(earlier.size, later.size)
                    verify_consistency(earlier.size, later.size, earlier.root, later.root, proof)
                except (ProofError, EviError) as exc:
                    self.problem(
                        None, f"{later.label} is not consistent with {earlier.label}: {exc}"
                    )


def verify_ledger(
    session: Session,
    verifier: NoteVerifier | None,
    witness_notes: Mapping[str, str] | None = None,
    *,
    superseded: Mapping[str, int] | None = None,
    max_problems: int = 50,
    block_level: int = BLOCK_LEVEL,
) -> VerifyReport:
    """Check everything stored; never writes. ``witness_notes`` maps a name to a note;
    ``superseded`` names the copies a recorded restore superseded (:mod:`hub.ledger.restore`),
    which are listed in the report and not compared.

    Without ``verifier`` no signature can be checked, and every checkpoint is a problem.
    """
    check = _Verifier(session, verifier, max_problems)
    head = session.get(LedgerHeadRow, HEAD_ID)
    head_size = head.size if head is not None else 0
    rows = session.scalars(select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.id)).all()
    signed = [
        item
        for row in rows
        if (
            item := check.signed(
                f"checkpoint #{row.id} (size {row.tree_size})",
                row.note,
                (row.tree_size, bytes(row.root_hash)),
            )
        )
    ]
    notes = dict(witness_notes or {})
    gone = dict(superseded or {})
    witnessed = [
        item
        for name, note in sorted(notes.items())
        if name not in gone and (item := check.signed(f"witness copy {name}", note, None))
    ]
    check.report.superseded = sorted((n, seq) for n, seq in gone.items() if n in notes)
    wanted = {s.size for s in signed} | {s.size for s in witnessed}
    scan = EntryScan(session, check.problem, head_size, wanted, block_level).run()
    size = scan.size
    check.roots = scan.roots
    check.tree_intact = scan.tree_intact
    check.report.purged = scan.purged
    if size < head_size:
        check.problem(
            size,
            f"entries {size} to {head_size - 1} are missing (the ledger head says {head_size})",
            head_size - 1,
        )
    elif scan.tree_intact and head is not None and head.frontier != b"".join(scan.frontier):
        check.problem(None, "the ledger head's tree edge does not match the entries")
    for tile_level, stored_bytes in session.execute(
        select(LedgerTileRow.level, func.sum(func.length(LedgerTileRow.hashes))).group_by(
            LedgerTileRow.level
        )
    ):
        level = int(tile_level) * TILE_HEIGHT
        extra = int(stored_bytes or 0) // HASH_SIZE - (size >> level)
        if extra > 0:
            check.problem(None, f"{extra} stored tree hash(es) at level {level} belong to no entry")
    check.against_signed(size, signed, witness=False)
    check.consistency(signed, size)
    check.against_signed(size, witnessed, witness=True)
    known = {(s.size, s.root) for s in signed}
    for item in witnessed:
        if item.size <= size and (item.size, item.root) not in known:
            check.problem(None, f"{item.label} (size {item.size}) is missing from the database")
    check_signed_before(session, len(rows), check.problem)
    check_purges(session, check.problem)
    report = check.report
    report.size = size
    report.checkpoints = len(rows)
    report.witness_copies = len(notes)
    return report
