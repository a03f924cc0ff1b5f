"""An independent, deliberately naive RFC 9162 reference used to check the hub's ledger.

Written straight from the recursive definitions in RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1
(MTH, PATH, SUBPROOF) and the verifiers as recursions over the same definitions, so it
shares no code or structure with ``hub.ledger`` (which stores subtrees and verifies with
the iterative algorithms of §2.1.3.2 and §2.1.4.2). Other ledger tests import it.
"""

from __future__ import annotations

import hashlib


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return ref_node(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_consistency(m: int, leaves: list[bytes]) -> list[bytes]:
    if m == 0 or m == len(leaves):
        return []
    return _subproof(m, leaves, True)


def ref_root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """Recompute the root from an inclusion path by walking the same recursion; None if
    the path has the wrong length."""
    path = list(path)

    def walk(m: int, n: int) -> bytes | None:
        if n == 1:
            return leaf
        k = _split(n)
        if not path:
            return None
        sibling = path.pop()  # the outermost level is the last element
        if m < k:
            inner = walk(m, k)
            return None if inner is None else ref_node(inner, sibling)
        inner = walk(m - k, n - k)
        return None if inner is None else ref_node(sibling, inner)

    root = walk(index, size)
    return None if path else root


def ref_check_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """Check a consistency proof by recomputing both roots along the SUBPROOF recursion."""
    if m == n:
        return not proof and old_root == new_root
    if m == 0:
        return not proof
    proof = list(proof)

    def walk(m: int, n: int, whole: bool) -> tuple[bytes, bytes] | None:
        # returns (hash of the old subtree part, hash of the new subtree part)
        if m == n:
            if whole:
                return old_root, old_root
            if not proof:
                return None
            h = proof.pop(0)
            return h, h
        k = _split(n)
        if m <= k:
            inner = walk(m, k, whole)
            if inner is None or not proof:
                return None
            right = proof.pop(0)
            old, new = inner
            return old, ref_node(new, right)
        # the left k leaves are complete in both trees
        inner = walk(m - k, n - k, False)
        if inner is None or not proof:
            return None
        left = proof.pop(0)
        old, new = inner
        return ref_node(left, old), ref_node(left, new)

    # The recursion consumes the proof from the innermost level outwards, which is the
    # order SUBPROOF emits it in.
    result = walk(m, n, True)
    return result is not None and not proof and result == (old_root, new_root)


def test_reference_agrees_with_itself_on_small_trees() -> None:
    leaves = [ref_leaf(bytes([i])) for i in range(20)]
    for n in range(1, 21):
        root = ref_mth(leaves[:n])
        for m in range(n):
            assert ref_root_from_path(m, n, leaves[m], ref_path(m, leaves[:n])) == root
        for m in range(1, n + 1):
            old = ref_mth(leaves[:m])
            assert ref_check_consistency(m, n, old, root, ref_consistency(m, leaves[:n]))
            wrong = ref_leaf(b"not the old root")
            assert not ref_check_consistency(m, n, wrong, root, ref_consistency(m, leaves[:n]))
