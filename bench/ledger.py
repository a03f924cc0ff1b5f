"""Ledger benchmark: appends, verification, roots, proofs and checkpoint signing at 1M entries.

Run:  .venv/bin/python bench/ledger.py [--entries 1000000] [--db PATH] [--engine-url URL]

Builds a fresh ledger of ``--entries`` entries on SQLite (default) in batches of 10,000
per transaction, then measures on the full ledger, and prints every figure next to the
machine it ran on, the issue's targets and the published anchors. Takes a few minutes
at 1M entries. Tests never assert timings; this script is where speed is reported.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import pluggy
from _machine import machine

from hub import hookspecs
from hub.ledger.checkpoint import checkpoint_body, write_checkpoint
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.records import LedgerQuery, find_entries
from hub.ledger.signing import NoteSigner
from hub.ledger.tree import StoredTree
from hub.ledger.verify import verify_ledger
from hub.ledger.writer import append, append_many
from hub.settings import Settings
from hub.store.base import Base
from hub.store.db import Database

BATCH = 10_000
ANCHORS = [
    ("Crosby & Wallach 2009 (history tree, Java)", "10,500 events/s appended"),
    ("Tessera on local disk (Go, POSIX driver)", "about 2,900 writes/s"),
]
TARGETS = {
    "batched": 100_000,
    "verify": 500_000,
    "proof_ms": 1.0,
}


def load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def events(rng: random.Random) -> list[LedgerEvent]:
    parties = ["kommun", "af", "fk", "region", "team"]
    people = [f"p-{rng.getrandbits(128):032x}" for _ in range(5_000)]
    return [
        LedgerEvent(
            action=Action.DECISION if i % 4 else Action.DELIVERY,
            decision=("permit" if i % 7 else "deny") if i % 4 else None,
            actor="job:sync",
            role="system",
            origin=rng.choice(parties),
            recipient=rng.choice(parties),
            categories=("identity", "plan"),
            purpose="coordination",
            consent_id=f"c-{i % 997}",
            consent_version=1 + i % 3,
            payload_sha256=f"{rng.getrandbits(256):064x}",
            participant=people[i % len(people)],
            correlation_id=f"run-{i // 1000}",
            reason="consent covers origin, recipient, category and purpose",
        )
        for i in range(BATCH)
    ]


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(samples) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--engine-url", help="any database URL instead of --db")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="evi-bench-"))
    url = args.engine_url or f"sqlite:///{args.db or work / 'ledger.db'}"
    db = Database(url)
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    rng = random.Random(1)
    pool = events(rng)
    rows: list[tuple[str, str, str]] = []
    print(f"machine: {machine('SQLAlchemy')}")
    print(f"database: {db.dialect} ({'temporary file' if not args.engine_url else 'given URL'})")
    print(f"load average at start: {load()}")

    # 1. batched appends, 10,000 per transaction
    n = args.entries
    start = time.perf_counter()
    last_100k = start
    done = 0
    in_commit = 0.0  # wall time from append_many's return to the end of the COMMIT
    while done < n:
        size = min(BATCH, n - done)
        with db.session() as session:
            append_many(session, pool[:size])
            appended = time.perf_counter()
        in_commit += time.perf_counter() - appended
        done += size
        if done == n - min(n, 100_000):
            last_100k = time.perf_counter()
    elapsed = time.perf_counter() - start
    tail = time.perf_counter() - last_100k
    batched = n / elapsed
    rows.append(
        (
            "batched appends (10,000 per commit)",
            f"{batched:,.0f} entries/s",
            f"target >= {TARGETS['batched']:,}/s",
        )
    )
    rows.append(("  of which the last 100,000", f"{min(n, 100_000) / tail:,.0f} entries/s", ""))
    rows.append(
        (
            "  time per entry: append_many / COMMIT",
            f"{(elapsed - in_commit) / n * 1e6:.1f} / {in_commit / n * 1e6:.1f} µs",
            "",
        )
    )

    # 2. one commit per entry, on the full ledger
    single = 2_000
    start = time.perf_counter()
    for i in range(single):
        with db.session() as session:
            append(session, pool[i])
    per_commit = single / (time.perf_counter() - start)
    rows.append(("appends, one commit each", f"{per_commit:,.0f} entries/s", ""))
    total = n + single

    # 3. roots and proofs at this size
    with db.session() as session:
        tree = StoredTree(session)
        root_samples = timed(tree.root, 500)
        sizes = [rng.randrange(1, total) for _ in range(500)]
        root_at = timed(lambda: tree.root(sizes.pop()), 500)
        picks = [rng.randrange(total) for _ in range(1000)]
        proof_samples = timed(lambda: tree.inclusion_proof(picks.pop(), total), 1000)
        pairs = [rng.randrange(1, total) for _ in range(500)]
        cons_samples = timed(lambda: tree.consistency_proof(pairs.pop(), total), 500)
    rows.append((f"root at {total:,} (current size)", ms(root_samples), ""))
    rows.append(("root at a random earlier size", ms(root_at), ""))
    rows.append(
        ("inclusion proof, random entry", ms(proof_samples), f"target < {TARGETS['proof_ms']} ms")
    )
    rows.append(("consistency proof, random old size", ms(cons_samples), ""))

    # 3b. searches (what `evi log search` and `extract` run), first page of 100
    who = pool[1].participant
    searches = [
        ("search: one participant (all entries)", LedgerQuery(participant=who)),
        (
            "search: time window, first 100",
            LedgerQuery(since=pool[0].time, until=pool[200].time, limit=100),
        ),
        ("search: party, first 100", LedgerQuery(party="af", limit=100)),
        ("search: decision=deny, first 100", LedgerQuery(decision="deny", limit=100)),
        ("search: rare action (none stored)", LedgerQuery(action=Action.VIEW, limit=100)),
        ("search: rare party (none stored)", LedgerQuery(party="nobody", limit=100)),
    ]
    with db.session() as session:
        for label, query in searches:
            found = sum(1 for _ in find_entries(session, query))
            samples = timed(lambda q=query: list(find_entries(session, q)), 5)
            rows.append((label, ms(samples), f"{found:,} found"))

    # 4. checkpoint signing
    signer = NoteSigner("bench.example/ledger", os.urandom(32))
    body = checkpoint_body(signer.name, total, os.urandom(32))
    sign_samples = timed(lambda: signer.sign(body), 2000)
    rows.append(("checkpoint signing (Ed25519 note only)", ms(sign_samples), ""))
    settings = Settings(home=work / "home")
    pm = pluggy.PluginManager("evi")
    pm.add_hookspecs(hookspecs)

    def checkpoint() -> None:
        with db.session() as session:
            append(session, pool[0])
            write_checkpoint(session, settings, pm)

    rows.append(("append + signed checkpoint, one commit", ms(timed(checkpoint, 50)), ""))
    total += 50

    # 5. full verification
    with db.session() as session:
        from hub.ledger.signing import load_signer

        verifier = load_signer(session, settings).verifier
    start = time.perf_counter()
    with db.session() as session:
        report = verify_ledger(session, verifier)
    verify_rate = report.size / (time.perf_counter() - start)
    assert report.ok, report.problems[:3]
    rows.append(
        (
            f"full verify of {report.size:,} entries",
            f"{verify_rate:,.0f} entries/s",
            f"target >= {TARGETS['verify']:,}/s",
        )
    )

    width = max(len(r[0]) for r in rows)
    print()
    for name, figure, note in rows:
        print(f"{name:<{width}}  {figure:<34} {note}")
    print()
    print(f"load average at end: {load()}")
    print("published anchors (other systems, other machines):")
    for name, figure in ANCHORS:
        print(f"  {name}: {figure}")
    if db.dialect == "sqlite":
        size_mb = sum(p.stat().st_size for p in work.glob("ledger.db*")) / 1e6 if not args.db else 0
        if size_mb:
            print(f"\nledger file: {size_mb:,.0f} MB for {total:,} entries")
    db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
