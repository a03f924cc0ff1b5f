"""The stored Merkle tree: size, roots and proofs read from ``ledger_head`` and
``ledger_tile``.

Every question costs two indexed queries for a few tiles (at most ~2·log2(n)/4 of
them, each at most 16 hashes), whatever the size.
Purged entries keep their leaf hash, so roots and proofs are unaffected by retention.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from typing import TypeVar, cast

from sqlalchemy.orm import Session

from hub.errors import InputError, StorageError
from hub.ledger import proofs
from hub.ledger.hashing import HASH_SIZE, root_from_frontier, split_frontier
from hub.ledger.proofs import NodeKey
from hub.ledger.tiles import TILE_HEIGHT, TILE_WIDTH, perfect_root, slots
from hub.ledger.writer import HEAD_ID

T = TypeVar("T")


class StoredTree:
    """Read-only view of the ledger's tree inside the caller's session.

    Reads go through the driver's cursor with hand-written SQL (plain placeholders, no
    input in the text): building an SQLAlchemy statement per proof would cost more than
    the proof itself, and proofs must stay well under a millisecond at millions of entries.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        connection = session.connection()
        self._mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        self._cursor = connection.connection.cursor()

    def head(self) -> tuple[int, list[bytes]]:
        """(size, frontier) as committed (plus this transaction's appends); (0, []) when empty."""
        self._cursor.execute(
            f"SELECT size, frontier FROM ledger_head WHERE id = {self._mark}",  # noqa: S608
            (HEAD_ID,),
        )
        row = self._cursor.fetchone()
        if row is None:
            return 0, []
        return int(row[0]), split_frontier(bytes(row[1]))

    def size(self) -> int:
        return self.head()[0]

    def fetch(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        """Hashes of the requested complete subtrees (missing ones left out).

        Each is folded from at most 2^(TILE_HEIGHT-1) hashes of the stored level at or
        below it; all the tiles they lie in are read in one query.
        """
        wanted: dict[NodeKey, tuple[int, int, int]] = {}
        tiles: set[tuple[int, int]] = set()
        for level, index in keys:
            tile_level, rest = divmod(level, TILE_HEIGHT)
            first = index << rest
            wanted[(level, index)] = (tile_level, first, 1 << rest)
            tiles.add((tile_level, first >> TILE_HEIGHT))
        if not tiles:
            return {}
        mark = self._mark
        terms: list[str] = []
        params: list[int] = []
        for tile_level, tile in sorted(tiles):
            terms.append(f"(level = {mark} AND start >= {mark} AND start < {mark})")
            params += [tile_level, tile * TILE_WIDTH, (tile + 1) * TILE_WIDTH]
        self._cursor.execute(
            "SELECT level, start, hashes FROM ledger_tile WHERE " + " OR ".join(terms),  # noqa: S608
            params,
        )
        by_level: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for tile_level, start, blob in self._cursor.fetchall():
            by_level[tile_level].append((start, blob))
        found = {level: slots(stored) for level, stored in by_level.items()}
        result: dict[NodeKey, bytes] = {}
        for key, (tile_level, first, count) in wanted.items():
            stored = found.get(tile_level, {})
            hashes = [stored.get(i) for i in range(first, first + count)]
            if all(h is not None and len(h) == HASH_SIZE for h in hashes):
                result[key] = perfect_root(cast(list[bytes], hashes))
        return result

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
        """The tree head at ``size`` (default: now, straight from the stored right edge)."""
        current, frontier = self.head()
        if size is None or size == current:
            return root_from_frontier(frontier)
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
