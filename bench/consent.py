"""Gate decisions per second: the hub's gate vs the same decisions made by Cedar (cedarpy).

    .venv/bin/python bench/consent.py [--participants 100000] [--decisions 1000000]
                                      [--cedar-decisions 100000] [--seed 1]

Builds a population with mixed consents (none, one, amended, partly or wholly withdrawn,
blocked, expired, pending, protected identity), draws random disclosures around a fixed
"now", and times:

* the hot path: ``hub.consent.gate.decide`` over per-participant snapshots built once
  (the snapshot build is timed separately);
* Cedar: the same rule written as Cedar policies per participant (one permit per consent
  version, withdrawals folded into its condition, a forbid per block, global forbids for
  restricted origin and protected identity), policy sets and entities parsed once per
  participant, then ``cedarpy.is_authorized`` per decision.

Both decide the first ``--cedar-decisions`` disclosures; every permit/deny must agree or
the script exits 1. Figures are printed side by side with the machine they ran on.
Requires the bench extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # also when a test loads this file

from _machine import machine

from hub.consent.gate import BlockFacts, ConsentFacts, Snapshot, WithdrawalFacts, decide
from hub.model.vocab import BUILTIN_PARTIES, Category

PARTIES = BUILTIN_PARTIES
CATEGORIES = tuple(c.value for c in Category)
PURPOSES = ("coordination", "evaluation")
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Person:
    pseudonym: str
    consents: list[ConsentFacts]
    withdrawals: list[WithdrawalFacts]
    blocks: list[BlockFacts]
    protected: bool


# -- population -------------------------------------------------------------------------------


def _version(rng: random.Random, consent_id: str, number: int, recorded: datetime) -> ConsentFacts:
    start = NOW + rng.randint(-400, 30) * DAY
    return ConsentFacts(
        consent_id=consent_id,
        version=number,
        parties=frozenset(rng.sample(PARTIES, rng.randint(2, len(PARTIES)))),
        categories=frozenset(rng.sample(CATEGORIES, rng.randint(2, len(CATEGORIES)))),
        purposes=frozenset(rng.sample(PURPOSES, rng.randint(1, 2))),
        valid_from=start,
        valid_until=start + rng.randint(60, 730) * DAY,
        recorded_at=min(recorded, NOW),
    )


def make_person(rng: random.Random, index: int) -> Person:
    """One person; the mix roughly follows a joint team's caseload."""
    pseudonym = f"p-{index:032x}"
    consents: list[ConsentFacts] = []
    withdrawals: list[WithdrawalFacts] = []
    blocks: list[BlockFacts] = []
    roll = rng.random()
    if roll >= 0.08:  # 8% have no consent at all
        for c in range(2 if rng.random() < 0.1 else 1):
            consent_id = f"{pseudonym}-c{c}"
            recorded = NOW - rng.randint(1, 400) * DAY
            v1 = _version(rng, consent_id, 1, recorded)
            consents.append(v1)
            if rng.random() < 0.2:  # amended
                consents.append(_version(rng, consent_id, 2, recorded + rng.randint(1, 200) * DAY))
            latest = consents[-1].version
            if rng.random() < 0.05:  # wholly withdrawn
                withdrawals.append(
                    WithdrawalFacts(consent_id, latest, NOW - rng.randint(0, 60) * DAY)
                )
            elif rng.random() < 0.1:  # partly withdrawn
                withdrawals.append(
                    WithdrawalFacts(
                        consent_id,
                        latest,
                        NOW - rng.randint(0, 60) * DAY,
                        party=rng.choice((None, *PARTIES)),
                        category=rng.choice(CATEGORIES),
                    )
                )
    if rng.random() < 0.08:
        start = NOW - rng.randint(0, 90) * DAY
        blocks.append(
            BlockFacts(
                f"{pseudonym}-b",
                start,
                None if rng.random() < 0.5 else start + rng.randint(10, 200) * DAY,
                party=rng.choice((None, *PARTIES)),
                category=rng.choice((None, *CATEGORIES)),
            )
        )
    return Person(pseudonym, consents, withdrawals, blocks, rng.random() < 0.03)


Query = tuple[int, str, str, str, str, datetime, bool]


def make_queries(rng: random.Random, people: int, count: int) -> list[Query]:
    """``count`` disclosures in per-person runs of 1 to 20 (mean about 10).

    That is how the sync asks: a batch of one authority's records, several per person,
    each person's snapshot loaded once (``hub.consent.snapshots.load_snapshots``).
    """
    out: list[Query] = []
    while len(out) < count:
        person = rng.randrange(people)
        for _ in range(min(rng.randint(1, 20), count - len(out))):
            origin, recipient = rng.sample(PARTIES, 2)
            out.append(
                (
                    person,
                    origin,
                    recipient,
                    rng.choice(CATEGORIES),
                    rng.choice(PURPOSES),
                    NOW + timedelta(minutes=rng.randint(-60 * 24 * 90, 60 * 24 * 30)),
                    rng.random() < 0.02,
                )
            )
    return out


# -- the hub's gate ---------------------------------------------------------------------------


def build_snapshots(population: Sequence[Person]) -> list[Snapshot]:
    return [
        Snapshot.build(p.consents, p.withdrawals, p.blocks, protected_identity=p.protected)
        for p in population
    ]


def run_gate(snapshots: Sequence[Snapshot], queries: Sequence[Query]) -> list[bool]:
    return [
        decide(snapshots[i], o, r, c, p, at, restricted_origin=x).permitted
        for i, o, r, c, p, at, x in queries
    ]


# -- Cedar ------------------------------------------------------------------------------------


def _micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _set(values: frozenset[str]) -> str:
    return "[" + ",".join(json.dumps(v) for v in sorted(values)) + "]"


def _touches(party: str | None, category: str | None) -> str:
    terms = []
    if party is not None:
        terms.append(
            f"(context.origin == {json.dumps(party)} || context.recipient == {json.dumps(party)})"
        )
    if category is not None:
        terms.append(f"context.category == {json.dumps(category)}")
    return " && ".join(terms) or "true"


GLOBAL_POLICIES = """
forbid(principal, action, resource) when { context.restricted };
forbid(principal, action, resource) when { resource.protected && context.category == "identity" };
"""


def cedar_policies(person: Person) -> str:
    """The gate's rule for one person, in Cedar. Forbid beats permit, as a block beats consent."""
    resource = f'Participant::"{person.pseudonym}"'
    policies = [GLOBAL_POLICIES]
    for v in person.consents:
        takeovers = [
            max(w.recorded_at, w.valid_from)
            for w in person.consents
            if w.consent_id == v.consent_id and w.version > v.version
        ]
        start = max(v.valid_from, v.recorded_at)
        stop = min([v.valid_until, *takeovers])
        if start >= stop:
            continue
        conditions = [
            f"{_set(v.parties)}.contains(context.origin)",
            f"{_set(v.parties)}.contains(context.recipient)",
            f"{_set(v.categories)}.contains(context.category)",
            f"{_set(v.purposes)}.contains(context.purpose)",
            f"context.at >= {_micros(start)}",
            f"context.at < {_micros(stop)}",
        ]
        for w in person.withdrawals:
            if w.consent_id == v.consent_id and v.version <= w.up_to_version:
                conditions.append(
                    f"!(context.at >= {_micros(w.at)} && {_touches(w.party, w.category)})"
                )
        policies.append(
            f'permit(principal, action == Action::"disclose", resource == {resource})\n'
            f"when {{ {' && '.join(conditions)} }};"
        )
    for b in person.blocks:
        until = f" && context.at < {_micros(b.valid_until)}" if b.valid_until else ""
        policies.append(
            f"forbid(principal, action, resource == {resource})\n"
            f"when {{ context.at >= {_micros(b.valid_from)}{until} && "
            f"{_touches(b.party, b.category)} }};"
        )
    return "\n".join(policies)


def run_cedar(
    population: Sequence[Person], queries: Sequence[Query]
) -> tuple[list[bool], float, float]:
    import cedarpy

    wanted = sorted({q[0] for q in queries})
    started = time.perf_counter()
    compiled = {}
    for i in wanted:
        person = population[i]
        entities = [
            {
                "uid": {"type": "Participant", "id": person.pseudonym},
                "attrs": {"protected": person.protected},
                "parents": [],
            }
        ]
        compiled[i] = (
            cedarpy.PolicySet.from_str(cedar_policies(person)),
            cedarpy.Entities.from_json_str(json.dumps(entities)),
        )
    compile_seconds = time.perf_counter() - started
    requests = [
        (
            i,
            {
                "principal": {"type": "Party", "id": r},
                "action": {"type": "Action", "id": "disclose"},
                "resource": {"type": "Participant", "id": population[i].pseudonym},
                "context": {
                    "origin": o,
                    "recipient": r,
                    "category": c,
                    "purpose": p,
                    "at": _micros(at),
                    "restricted": x,
                },
            },
        )
        for i, o, r, c, p, at, x in queries
    ]
    started = time.perf_counter()
    allowed = []
    for i, request in requests:
        policies, entities = compiled[i]
        allowed.append(cedarpy.is_authorized(request, policies, entities).allowed)
    return allowed, time.perf_counter() - started, compile_seconds


# -- report -----------------------------------------------------------------------------------


def best_of(runs: int, fn, *args):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - started)
    return result, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--cedar-decisions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    print(f"machine: {machine('cedarpy')}")
    started = time.perf_counter()
    population = [make_person(rng, i) for i in range(args.participants)]
    queries = make_queries(rng, args.participants, args.decisions)
    print(
        f"population: {args.participants:,} participants, "
        f"{sum(len(p.consents) for p in population):,} consent versions, "
        f"{sum(len(p.withdrawals) for p in population):,} withdrawals, "
        f"{sum(len(p.blocks) for p in population):,} blocks, "
        f"{sum(p.protected for p in population):,} protected; "
        f"{args.decisions:,} disclosures drawn ({time.perf_counter() - started:.1f} s)"
    )

    snapshots, build_seconds = best_of(1, build_snapshots, population)
    gate_all, gate_seconds = best_of(3, run_gate, snapshots, queries)
    shuffled = queries[:]
    random.Random(args.seed).shuffle(shuffled)
    _, shuffled_seconds = best_of(3, run_gate, snapshots, shuffled)
    subset = queries[: args.cedar_decisions]
    gate_sub, gate_sub_seconds = best_of(3, run_gate, snapshots, subset)
    cedar_sub, cedar_seconds, cedar_compile = run_cedar(population, subset)

    disagreements = sum(a != b for a, b in zip(gate_sub, cedar_sub, strict=True))
    permits = sum(gate_all)
    gate_rate = len(queries) / gate_seconds
    gate_sub_rate = len(subset) / gate_sub_seconds
    cedar_rate = len(subset) / cedar_seconds
    shuffled_rate = len(queries) / shuffled_seconds
    rows = [
        ("", "hub gate (hot path)", "cedarpy (Cedar)"),
        ("decisions/s, per-person batches", f"{gate_rate:,.0f}", ""),
        ("decisions/s, random order", f"{shuffled_rate:,.0f}", ""),
        (
            f"decisions/s, first {len(subset):,}",
            f"{gate_sub_rate:,.0f}",
            f"{cedar_rate:,.0f}",
        ),
        (
            "one-off build",
            f"{args.participants:,} snapshots in {build_seconds:.2f} s",
            f"{len({q[0] for q in subset}):,} policy sets in {cedar_compile:.2f} s",
        ),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)))
    print()
    print(f"permits: {permits:,} of {len(queries):,} ({permits / len(queries):.1%})")
    print(f"gate vs Cedar on the same {len(subset):,} decisions: {disagreements} disagreements")
    print(f"speed-up over cedarpy (same decisions): {gate_sub_rate / cedar_rate:,.1f}x")
    print(
        "random order touches a different person's snapshot on almost every decision, so "
        "it mostly measures memory latency; the sync decides per-person batches"
    )
    print(
        "targets (per-person batches): >= 1,000,000 decisions/s -> "
        f"{'met' if gate_rate >= 1_000_000 else 'NOT met'}; >= 10x cedarpy -> "
        f"{'met' if gate_sub_rate >= 10 * cedar_rate else 'NOT met'}"
    )
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
