"""The stored Merkle tree: size, roots and proofs read from ``ledger_head`` and
``ledger_node``.

Every question costs two indexed queries for at most ~2·log2(n) rows, whatever the size.
Purged entries keep their leaf hash, so roots and proofs are unaffected by retention.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from typing import TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from hub.errors import InputError, StorageError
from hub.ledger import proofs
from hub.ledger.hashing import split_frontier
from hub.ledger.proofs import NodeKey
from hub.ledger.writer import HEAD_ID
from hub.store.tables.ledger import LedgerHeadRow, LedgerNodeRow

T = TypeVar("T")


class StoredTree:
    """Read-only view of the ledger's tree inside the caller's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def head(self) -> tuple[int, list[bytes]]:
        """(size, frontier) as last committed; (0, []) for an empty ledger."""
        row = self.session.get(LedgerHeadRow, HEAD_ID)
        if row is None:
            return 0, []
        return row.size, split_frontier(row.frontier)

    def size(self) -> int:
        return self.head()[0]

    def fetch(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        """Stored hashes of the requested complete subtrees (missing ones left out)."""
        by_level: dict[int, list[int]] = defaultdict(list)
        for level, index in keys:
            by_level[level].append(index)
        found: dict[NodeKey, bytes] = {}
        if by_level:
            condition = or_(
                *(
                    and_(LedgerNodeRow.level == level, LedgerNodeRow.idx.in_(indexes))
                    for level, indexes in by_level.items()
                )
            )
            rows = self.session.execute(
                select(LedgerNodeRow.level, LedgerNodeRow.idx, LedgerNodeRow.hash).where(condition)
            )
            found.update(((level, idx), bytes(digest)) for level, idx, digest in rows)
        return found

    def _size_or_current(self, size: int | None) -> int:
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(
                f"tree size {size} does not exist yet; the ledger has {current} entries"
            )
        return size

    def root(self, size: int | None = None) -> bytes:
        """The tree head at ``size`` (default: now)."""
        size = self._size_or_current(size)
        return self._checked(lambda: proofs.tree_root(size, self.fetch))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]); raises :class:`InputError` for an index not in the tree."""
        size = self._size_or_current(size)
        if not 0 <= index < size:
            raise InputError(
                f"sequence number {index} is not in the tree of size {size}; use 0 to {size - 1}"
                if size
                else "the ledger is empty; there is nothing to prove"
            )
        return self._checked(lambda: proofs.inclusion_proof(index, size, self.fetch))

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """PROOF(first, D[0:second]); raises :class:`InputError` unless first <= second."""
        second = self._size_or_current(second)
        if not 0 <= first <= second:
            raise InputError(
                f"cannot prove size {first} grew into size {second}; give --from <= --to"
            )
        return self._checked(lambda: proofs.consistency_proof(first, second, self.fetch))

    @staticmethod
    def _checked(compute: Callable[[], T]) -> T:
        try:
            return compute()
        except LookupError:
            raise StorageError(
                "the ledger's stored subtrees are incomplete; run `evi log verify` to find "
                "the damage"
            ) from None
