"""Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4) over stored subtrees.

Proof *generation* follows the recursive definitions (PATH and SUBPROOF) but first
plans which complete subtrees it needs, so a caller can fetch them all in one query;
every range a proof names splits into at most log2(n) complete subtrees (read from the
stored tiles, :mod:`hub.ledger.tiles`).
Proof *verification* is the iterative algorithm of §2.1.3.2 and §2.1.4.2, which needs
nothing but the proof, the sizes and the hashes being checked.

Written by hand for the same reason as :mod:`hub.ledger.hashing`; tested against the
published vectors and against an independent recursive implementation in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from hub.ledger.hashing import EMPTY_ROOT, HASH_SIZE, node_hash

NodeKey = tuple[int, int]
"""(level, index): the complete subtree over leaves ``[index * 2**level, (index+1) * 2**level)``."""

NodeFetcher = Callable[[Collection[NodeKey]], dict[NodeKey, bytes]]
"""Returns the stored hash of each requested complete subtree."""


class ProofError(ValueError):
    """A proof does not check out; the message says which check failed."""


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeKey]:
    """The complete subtrees, left to right, whose fold is MTH of leaves ``[start, end)``.

    ``start`` must be a multiple of a power of two at least ``end - start`` (true of every
    range the RFC 9162 recursion produces).
    """
    nodes: list[NodeKey] = []
    offset = start
    remaining = end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            nodes.append((level, offset >> level))
            offset += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees, left to right."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[0:size]), in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()  # the recursion emits the innermost sibling first
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(first, D[0:second]), in proof order."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, second, first, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def hashes_for(ranges: Sequence[tuple[int, int]], fetch: NodeFetcher) -> list[bytes]:
    """Fetch every subtree the ranges need in one call and fold each range's hash."""
    plans = [range_nodes(start, end) for start, end in ranges]
    wanted = {key for plan in plans for key in plan}
    found = fetch(wanted)
    missing = wanted - found.keys()
    if missing:
        raise LookupError(f"{len(missing)} subtree hash(es) are missing from storage")
    return [fold([found[key] for key in plan]) for plan in plans]


def inclusion_proof(index: int, size: int, fetch: NodeFetcher) -> list[bytes]:
    return hashes_for(inclusion_ranges(index, size), fetch)


def consistency_proof(first: int, second: int, fetch: NodeFetcher) -> list[bytes]:
    return hashes_for(consistency_ranges(first, second), fetch)


def tree_root(size: int, fetch: NodeFetcher) -> bytes:
    return hashes_for([(0, size)], fetch)[0]


# -- verification (RFC 9162 §2.1.3.2, §2.1.4.2) -------------------------------------


def _check_hashes(hashes: Sequence[bytes]) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ProofError("a proof hash is not 32 bytes")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to; raises :class:`ProofError` if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_hashes([leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is tall")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is tall")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf ``index`` is in the tree ``root``."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(f"the inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless the tree ``second_root`` extends ``first_root``."""
    if not 0 <= first <= second:
        raise ProofError(f"size {first} cannot grow into size {second}")
    _check_hashes([first_root, second_root, *proof])
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different roots for the same size {first}")
        return
    if first == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the old root is a stored subtree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is tall")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is tall")
    if fr != first_root:
        raise ProofError(f"the consistency proof does not lead to the root of size {first}")
    if sr != second_root:
        raise ProofError(f"the consistency proof does not lead to the root of size {second}")
