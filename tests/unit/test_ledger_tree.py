"""The Merkle tree: published RFC 6962/9162 vectors, every proof up to size 64, large trees."""

from __future__ import annotations

import json
import random
from collections.abc import Collection

import pytest
from test_ledger_reference import (
    ref_check_consistency,
    ref_consistency,
    ref_leaf,
    ref_mth,
    ref_path,
    ref_root_from_path,
)

from hub.errors import InputError
from hub.ledger import proofs
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.hashing import (
    EMPTY_ROOT,
    frontier_append,
    frontier_extend,
    leaf_hash,
    root_from_frontier,
)
from hub.ledger.proofs import NodeKey, ProofError
from hub.ledger.tree import StoredTree
from hub.ledger.writer import append_many
from hub.store.db import Database
from tests.conftest import DATA

VECTORS = json.loads((DATA / "ledger" / "rfc6962_vectors.json").read_text())
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves_hex"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]


class MemoryTree:
    """The hub's append path run in memory: frontier plus every completed subtree."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.nodes: dict[NodeKey, bytes] = {}
        frontier: list[bytes] = []
        for index, digest in enumerate(leaf_hashes):
            self.nodes[(0, index)] = digest
            for level, idx, value in frontier_append(frontier, index, digest):
                self.nodes[(level, idx)] = value
        self.frontier = frontier

    def fetch(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        return {key: self.nodes[key] for key in keys if key in self.nodes}


def h(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# -- published vectors ---------------------------------------------------------------


def test_roots_match_the_published_vectors() -> None:
    hashes = [leaf_hash(data) for data in LEAVES]
    assert proofs.fold([]) == EMPTY_ROOT == bytes.fromhex(VECTORS["empty_root"])
    for size in range(1, 9):
        tree = MemoryTree(hashes[:size])
        assert root_from_frontier(tree.frontier) == ROOTS[size - 1]
        assert proofs.tree_root(size, MemoryTree(hashes).fetch) == ROOTS[size - 1]


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion"], ids=lambda v: f"{v['leaf_index']}@{v['tree_size']}"
)
def test_inclusion_proofs_match_the_published_vectors(vector: dict) -> None:
    hashes = [leaf_hash(data) for data in LEAVES]
    index, size, expected = vector["leaf_index"], vector["tree_size"], h(vector["proof"])
    assert proofs.inclusion_proof(index, size, MemoryTree(hashes).fetch) == expected
    proofs.verify_inclusion(index, size, hashes[index], expected, ROOTS[size - 1])


@pytest.mark.parametrize(
    "vector", VECTORS["consistency"], ids=lambda v: f"{v['first']}-{v['second']}"
)
def test_consistency_proofs_match_the_published_vectors(vector: dict) -> None:
    hashes = [leaf_hash(data) for data in LEAVES]
    first, second, expected = vector["first"], vector["second"], h(vector["proof"])
    assert proofs.consistency_proof(first, second, MemoryTree(hashes).fetch) == expected
    proofs.verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], expected)


# -- every index and size up to 64, against the independent reference ---------------


def test_every_proof_up_to_64_matches_the_reference_and_verifies() -> None:
    leaves = [ref_leaf(i.to_bytes(2, "big")) for i in range(64)]
    tree = MemoryTree(leaves)
    for size in range(1, 65):
        root = ref_mth(leaves[:size])
        assert proofs.tree_root(size, tree.fetch) == root
        for index in range(size):
            path = proofs.inclusion_proof(index, size, tree.fetch)
            assert path == ref_path(index, leaves[:size])
            proofs.verify_inclusion(index, size, leaves[index], path, root)
            assert ref_root_from_path(index, size, leaves[index], path) == root
        for first in range(0, size + 1):
            old = ref_mth(leaves[:first])
            proof = proofs.consistency_proof(first, size, tree.fetch)
            assert proof == ref_consistency(first, leaves[:size])
            proofs.verify_consistency(first, size, old, root, proof)
            assert ref_check_consistency(first, size, old, root, proof)


def test_random_large_trees_prove_and_verify() -> None:
    rng = random.Random(9162)
    leaves = [ref_leaf(rng.randbytes(8)) for _ in range(3000)]
    tree = MemoryTree(leaves)
    for _ in range(40):
        size = rng.randint(1, len(leaves))
        root = ref_mth(leaves[:size])
        assert proofs.tree_root(size, tree.fetch) == root
        index = rng.randrange(size)
        path = proofs.inclusion_proof(index, size, tree.fetch)
        proofs.verify_inclusion(index, size, leaves[index], path, root)
        assert ref_root_from_path(index, size, leaves[index], path) == root
        first = rng.randint(1, size)
        old = ref_mth(leaves[:first])
        proof = proofs.consistency_proof(first, size, tree.fetch)
        proofs.verify_consistency(first, size, old, root, proof)
        assert ref_check_consistency(first, size, old, root, proof)


# -- verification refuses what it must --------------------------------------------


def test_verifiers_refuse_corrupted_proofs() -> None:
    hashes = [leaf_hash(data) for data in LEAVES]
    tree = MemoryTree(hashes)
    path = proofs.inclusion_proof(5, 8, tree.fetch)
    bad_paths = [
        path[:-1],
        [*path, path[0]],
        [path[0], *path],
        [bytes([path[0][0] ^ 8]) + path[0][1:], *path[1:]],
    ]
    for bad in bad_paths:
        with pytest.raises(ProofError):
            proofs.verify_inclusion(5, 8, hashes[5], bad, ROOTS[7])
    for index, size in [(4, 8), (6, 8), (7, 8), (5, 4), (5, 16)]:
        with pytest.raises(ProofError):
            proofs.verify_inclusion(index, size, hashes[5], path, ROOTS[7])
    proof = proofs.consistency_proof(6, 8, tree.fetch)
    for bad in [proof[:-1], [*proof, ROOTS[7]], [ROOTS[5], *proof], []]:
        with pytest.raises(ProofError):
            proofs.verify_consistency(6, 8, ROOTS[5], ROOTS[7], bad)
    with pytest.raises(ProofError):
        proofs.verify_consistency(6, 8, ROOTS[4], ROOTS[7], proof)
    with pytest.raises(ProofError):
        proofs.verify_consistency(6, 8, ROOTS[7], ROOTS[5], proof)


# -- the same, read from the database ---------------------------------------------


def test_stored_tree_gives_every_proof_up_to_33(database: Database) -> None:
    events = [LedgerEvent(action=Action.VIEW, actor=f"user:{i}") for i in range(33)]
    with database.session() as session:
        append_many(session, events[:20])
    with database.session() as session:
        append_many(session, events[20:])
    with database.session() as session:
        tree = StoredTree(session)
        assert tree.size() == 33
        leaves = [tree.fetch([(0, i)])[(0, i)] for i in range(33)]
        for size in range(0, 34):
            root = ref_mth(leaves[:size])
            assert tree.root(size) == root
            for index in range(size):
                assert tree.inclusion_proof(index, size) == ref_path(index, leaves[:size])
            for first in range(size + 1):
                assert tree.consistency_proof(first, size) == ref_consistency(first, leaves[:size])
        assert tree.root() == ref_mth(leaves)


def test_stored_tree_refuses_what_does_not_exist(database: Database) -> None:
    with database.session() as session:
        append_many(session, [LedgerEvent(action=Action.VIEW, actor="u")] * 3)
    with database.session() as session:
        tree = StoredTree(session)
        with pytest.raises(InputError, match="not in the tree of size 3"):
            tree.inclusion_proof(3)
        with pytest.raises(InputError, match="does not exist yet"):
            tree.root(4)
        with pytest.raises(InputError, match="--from <= --to"):
            tree.consistency_proof(3, 2)


def test_extending_the_edge_by_many_leaves_equals_adding_them_one_by_one() -> None:
    rng = random.Random(7)
    for _ in range(200):
        one: list[bytes] = []
        many: list[bytes] = []
        size = 0
        for _ in range(rng.randrange(1, 6)):
            count = rng.choice([1, 2, 3, 15, 16, 17, 255, 256, 257, rng.randrange(1, 1500)])
            leaves = [rng.randbytes(32) for _ in range(count)]
            expected: dict[int, list[bytes]] = {0: list(leaves)}
            for i, leaf in enumerate(leaves):
                for level, index, digest in frontier_append(one, size + i, leaf):
                    assert index == (size >> level) + len(expected.setdefault(level, []))
                    expected[level].append(digest)
            completed = frontier_extend(many, size, leaves)
            assert many == one
            assert dict(enumerate(completed)) == {k: v for k, v in expected.items() if v}
            size += count
