"""The gate and the Cedar policies of bench/consent.py encode the same rule.

An independent engine as a second reference: the same generated population and
disclosures, decided by the gate and by Cedar, must agree on every permit and deny.
(Speed is measured by running bench/consent.py, never here.)
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

pytest.importorskip("cedarpy", reason="cedarpy comes with the bench extra")

BENCH = Path(__file__).parents[2] / "bench" / "consent.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_consent", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def test_gate_and_cedar_agree_on_every_decision() -> None:
    bench = _bench_module()
    rng = random.Random(7)
    population = [bench.make_person(rng, i) for i in range(400)]
    queries = bench.make_queries(rng, len(population), 4000)
    gate = bench.run_gate(bench.build_snapshots(population), queries)
    cedar, _seconds, _compile = bench.run_cedar(population, queries)
    assert gate == cedar
    assert 0 < sum(gate) < len(gate)  # both permits and denies were compared
