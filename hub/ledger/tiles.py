"""How the stored tree is laid out: hashes of complete subtrees in tiles of 16.

Like C2SP tlog-tiles, only every fourth level of the tree is stored: tile level ``L``
holds the hashes of the complete subtrees at tree level ``4·L`` (level 0: the leaf
hashes; level 1: every complete 16-leaf subtree; level 2: every 256-leaf one; …), in
tiles of ``TILE_WIDTH`` = 16 consecutive hashes. Any other complete subtree is the fold
of at most 8 hashes of the tile level below it, so a root or proof still reads only a
handful of rows, while an append stores ~1/15 of a row per entry instead of the ~2 rows
one row per subtree would take.

Rows are never changed: an append stores the hashes it adds as *runs* (table
``ledger_tile``: ``level``, ``start`` = index of the run's first hash at that level,
``hashes`` = the 32-byte hashes concatenated), and a run never crosses a tile boundary.
A tile that is filled by several transactions is therefore several runs; reading a tile
concatenates its runs in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.ledger.hashing import HASH_SIZE, node_hash

TILE_HEIGHT = 4
TILE_WIDTH = 1 << TILE_HEIGHT

Run = tuple[int, int, bytes]
"""(tile level, index of the first hash at that level, the hashes concatenated)."""


def stored_level(tree_level: int) -> bool:
    return tree_level % TILE_HEIGHT == 0


def runs(level: int, start: int, hashes: list[bytes]) -> Iterable[Run]:
    """Consecutive hashes from ``start`` at tile level ``level``, cut at tile boundaries."""
    i = 0
    while i < len(hashes):
        room = TILE_WIDTH - (start + i) % TILE_WIDTH
        yield level, start + i, b"".join(hashes[i : i + room])
        i += room


def slots(stored: Iterable[tuple[int, bytes]]) -> dict[int, bytes]:
    """Every hash of some runs ``(start, hashes)`` by its index (later runs win)."""
    found: dict[int, bytes] = {}
    for start, blob in stored:
        blob = bytes(blob)
        for k in range(len(blob) // HASH_SIZE):
            found[start + k] = blob[k * HASH_SIZE : (k + 1) * HASH_SIZE]
    return found


def perfect_root(hashes: list[bytes]) -> bytes:
    """The hash of a complete subtree from its 2^k hashes at some level below it."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]
