"""Sync benchmark: EVI hub's nightly sync vs dlt, on the same four APIs over loopback HTTP.

Run (needs the bench extra: ``.venv/bin/pip install -e '.[bench]'``)::

    .venv/bin/python bench/sync.py [--sizes 10000,100000,1000000] [--latency-ms 3]
                                   [--population 5000] [--seed 1]
                                   [--work DIR] [--keep] [--profile]

For each size, in one process tree: the four sandbox authorities (kommun, af, fk,
region) are served by uvicorn (`evi sandbox serve … --all-subscribed`) on 127.0.0.1, fk and
region over HTTPS with a required client certificate, every API page ``--latency-ms`` late.
Records = 4 authorities x population x rounds (one record per person per round); the
population is at most ``--population`` (Skatteverket's test numbers, 23,966 distinct ones at most).

Setup (timed, reported apart): a fresh ``$EVI_HOME`` with SQLite, the connectors configured
for the sandboxes (`evi sandbox connect`, `evi connectors enable`), a covering consent for
every person (`evi consent import`, one JSON Lines file), and a first `evi sync` that
registers everyone with the authorities (no records yet, no latency). Then the sandboxes
get their latency and ``rounds`` rounds of records, and the night is measured:

* EVI hub: ``evi sync``, exactly as the nightly job runs it (pull, map, gate, store,
  route, queue, then gate again and push every queued transfer with its idempotency key,
  every decision and delivery in the ledger), with the helper processes it forks.
  records/s = records pulled / its wall time.
* dlt: ``bench/_sync_dlt.py`` in a child: the same pages with the same authentication
  (bearer token, OAuth 2.0 client credentials, mTLS) into SQLite, ``write_disposition=
  "merge"`` on the primary key ``(source, source_id)`` (created as a PRIMARY KEY, the
  index the hub's ``UNIQUE (source, source_id)`` gives it).

Memory is reported twice for each side: the largest resident set of any one process of
the child's tree (``ru_maxrss`` from ``wait4``) and the largest sum over the whole tree
at one moment (sampled every 50 ms). The script prints a table side by side with the
machine and the issue's targets (EVI >= 2x dlt's records/s; EVI's peak RSS at 1M <= 1.2x
its peak at 100k); it never asserts. ``--profile`` runs `evi sync` under cProfile (its
own process; the helpers it forks are not profiled) and prints its top functions. Work
files go to a temporary directory, removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import cProfile  # noqa: F401 - fail early if the profiler is missing, not after setup
import hashlib
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _machine import machine
from _sync_sandboxes import (
    Measured,
    Sandboxes,
    bench_env,
    evi,
    evi_env,
    run_measured,
    tls_files,
    write_json,
)

from hub.model.vocab import BUILTIN_PARTIES, Category

MAX_POPULATION = 23_968  # Skatteverket's test personnummer and samordningsnummer
CHILD_TIMEOUT = 6 * 3600
DLT_SCRIPT = Path(__file__).parent / "_sync_dlt.py"
PARTIES = list(BUILTIN_PARTIES)
CATEGORIES = [c.value for c in Category]


@dataclass
class Plan:
    size: int
    population: int
    rounds: int

    @property
    def records(self) -> int:
        return 4 * self.population * self.rounds


@dataclass
class Result:
    plan: Plan
    setup: dict[str, float] = field(default_factory=dict)
    evi: Measured | None = None
    dlt: Measured | None = None
    evi_pulled: int = 0
    evi_stored: int = 0
    evi_queued: int = 0
    evi_delivered: int = 0
    received: int = 0
    dlt_pulled: int = 0
    dlt_rows: int = 0
    problems: list[str] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # 1-minute load average, before and after

    @property
    def evi_rate(self) -> float | None:
        return self.evi_pulled / self.evi.seconds if self.evi else None

    @property
    def dlt_rate(self) -> float | None:
        return self.dlt_pulled / self.dlt.seconds if self.dlt else None


def plan_for(size: int, population: int) -> Plan:
    people = max(1, min(population, MAX_POPULATION, size // 4))
    rounds = max(1, round(size / (4 * people)))
    return Plan(size, people, rounds)


# -- one size ------------------------------------------------------------------------------


def consent_line(person: dict[str, Any]) -> str:
    form = hashlib.sha256(f"evi bench consent form {person['index']}".encode()).hexdigest()
    return json.dumps(
        {
            "pnr": person["number"],
            "parties": PARTIES,
            "categories": CATEGORIES,
            "purposes": ["coordination", "evaluation"],
            "valid_from": "2024-01-01T00:00:00Z",
            "valid_until": "2099-01-01T00:00:00Z",
            "informed_by": "bench",
            "informed_at": "2024-01-01T00:00:00Z",
            "evidence": {"kind": "paper", "document_sha256": form, "witnessed_by": "bench"},
        }
    )


def evi_child(profile: Path | None, *args: str) -> list[str]:
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    return [*prefix, "-m", "hub", *args]


def run_size(plan: Plan, args: argparse.Namespace, work: Path) -> Result:
    result = Result(plan)
    home = work / "home"
    home.mkdir(parents=True)
    say(f"\n== {plan.records:,} records: {plan.population:,} people x {plan.rounds} rounds x 4")
    started = time.perf_counter()
    with Sandboxes(
        home,
        seed=args.seed,
        population=plan.population,
        records_per_person=0,
        latency_ms=0,
        logs=work,
    ) as sandboxes:
        evi(home, "db", "upgrade")
        for name, url in sandboxes.urls.items():
            evi(home, "sandbox", "connect", name, "--url", url)
            evi(home, "connectors", "enable", name)
        people = sandboxes.people()
        consents = work / "consents.jsonl"
        consents.write_text("".join(consent_line(p) + "\n" for p in people), encoding="utf-8")
        mark = time.perf_counter()
        evi(home, "consent", "import", str(consents))
        result.setup["consent import"] = time.perf_counter() - mark
        mark = time.perf_counter()
        evi(home, "sync", timeout=CHILD_TIMEOUT)  # registers everyone; nothing to pull yet
        result.setup["registration sync"] = time.perf_counter() - mark
        sandboxes.knobs(latency_ms=args.latency_ms)
        sandboxes.advance(plan.rounds)
        for name in sandboxes.urls:  # every sandbox builds its people before the clock runs
            sandboxes.people(name)
        result.setup["total"] = time.perf_counter() - started
        result.load.append(os.getloadavg()[0])
        say(
            f"setup: consents for {len(people):,} people imported in "
            f"{result.setup['consent import']:.1f} s, registered with the authorities in "
            f"{result.setup['registration sync']:.1f} s"
        )
        env = evi_env(home)
        profile = work / "evi.prof" if args.profile else None
        result.evi = run_measured(
            evi_child(profile, "sync", "--json"),
            env,
            timeout=CHILD_TIMEOUT,
            log=work / "evi.log",
        )
        read_evi_report(result)
        result.received = sandboxes.received()
        say(
            f"EVI: {result.evi_pulled:,} records pulled and {result.evi_delivered:,} transfers "
            f"delivered in {result.evi.seconds:.1f} s"
        )
        numbers = [
            f"{p['number'][:8]}-{p['number'][8:]}" for p in people if not p["protected"]
        ]  # the people the hub registered, in the form its region search sends
        config = {
            "urls": sandboxes.urls,
            "tls": tls_files(home),
            "numbers_file": str(write_json(work / "numbers.json", numbers)),
            "database": str(work / "dlt.db"),
            "pipelines_dir": str(work / "dlt-pipelines"),
        }
        dlt_config = write_json(work / "dlt.json", config)
        result.dlt = run_measured(
            [sys.executable, str(DLT_SCRIPT), "--config", str(dlt_config)],
            {**bench_env(), "RUNTIME__DLTHUB_TELEMETRY": "false"},
            timeout=CHILD_TIMEOUT,
            log=work / "dlt.log",
        )
        read_dlt_report(result, work)
        result.load.append(os.getloadavg()[0])
        say(f"dlt: {result.dlt_pulled:,} records in {result.dlt.seconds:.1f} s")
    for what, pulled in (("EVI", result.evi_pulled), ("dlt", result.dlt_pulled)):
        if pulled != plan.records:
            result.problems.append(f"{what} pulled {pulled:,} of {plan.records:,} records")
    if result.received != result.evi_delivered:
        result.problems.append(
            f"the authorities hold {result.received:,} pushes, EVI reports "
            f"{result.evi_delivered:,} delivered"
        )
    if args.profile and (work / "evi.prof").exists():
        print_profile("evi sync (its own process; helpers are not profiled)", work / "evi.prof")
    return result


def read_evi_report(result: Result) -> None:
    assert result.evi is not None
    if result.evi.returncode != 0:
        result.problems.append(f"evi sync exited {result.evi.returncode}")
    try:
        report = json.loads(result.evi.stdout)
    except ValueError:
        result.problems.append("evi sync printed no JSON report (see evi.log)")
        return
    for entry in report["connectors"]:
        result.evi_pulled += entry["pulled"]
        result.evi_stored += entry["stored"]
        result.evi_queued += entry["queued"]
        result.evi_delivered += entry["delivered"]
        if entry["status"] != "ok":
            result.problems.append(f"{entry['connector']}: {entry['status']} {entry['error']}")


def read_dlt_report(result: Result, work: Path) -> None:
    assert result.dlt is not None
    if result.dlt.returncode != 0:
        result.problems.append(f"dlt exited {result.dlt.returncode} (see {work / 'dlt.log'})")
        return
    report = json.loads(result.dlt.stdout.strip().splitlines()[-1])
    result.dlt_pulled, result.dlt_rows = report["pulled"], report["rows"]


def print_profile(name: str, path: Path) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(20)
    say(f"\n-- profile of {name}: top 40 by cumulative time, top 20 by own time --")
    say(out.getvalue())


# -- output --------------------------------------------------------------------------------


def say(line: str) -> None:
    print(line, flush=True)


def rate(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "-"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def mb(value: float | None) -> str:
    return f"{value:,.0f} MB" if value is not None else "-"


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    header = (
        "records",
        "EVI rec/s",
        "dlt rec/s",
        "EVI/dlt",
        "EVI peak RSS (process, tree)",
        "dlt peak RSS (process, tree)",
    )
    rows = [header]
    for r in results:
        rows.append(
            (
                f"{r.plan.records:,}",
                rate(r.evi_rate),
                rate(r.dlt_rate),
                ratio(r.evi_rate, r.dlt_rate),
                peaks(r.evi),
                peaks(r.dlt),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    say("")
    say(f"machine: {machine('dlt', 'evi-hub')}")
    say(
        f"sandboxes: uvicorn on 127.0.0.1, {args.latency_ms} ms per API answer, seed "
        f"{args.seed}; EVI on SQLite (fresh $EVI_HOME per size), dlt on SQLite"
    )
    say("")
    for row in rows:
        say("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    say("")
    for r in results:
        timings = ", ".join(
            f"{name} {m.seconds:.1f} s" for name, m in (("EVI", r.evi), ("dlt", r.dlt)) if m
        )
        say(
            f"{r.plan.records:,}: {r.plan.population:,} people x {r.plan.rounds} rounds; "
            f"{timings}; EVI stored {r.evi_stored:,}, queued {r.evi_queued:,}, delivered "
            f"{r.evi_delivered:,}; dlt rows {r.dlt_rows:,}; setup {r.setup.get('total', 0):.0f} s; "
            f"load average {' -> '.join(f'{x:.1f}' for x in r.load)}"
        )
        for problem in r.problems:
            say(f"  PROBLEM: {problem}")
    say("")
    say("targets (issue 6):")
    for r in results:
        say(
            f"  EVI >= 2x dlt records/s at {r.plan.records:,}: {ratio(r.evi_rate, r.dlt_rate)} "
            f"-> {verdict(r.evi_rate, r.dlt_rate, 2.0, at_least=True)}"
        )
    by_size = {r.plan.size: r for r in results}
    if 100_000 in by_size and 1_000_000 in by_size:
        for label, pick in (
            ("process", lambda m: m.peak_rss_mb),
            ("tree", lambda m: m.peak_tree_mb),
        ):
            small_m, large_m = by_size[100_000].evi, by_size[1_000_000].evi
            small = pick(small_m) if small_m else None
            large = pick(large_m) if large_m else None
            say(
                f"  EVI peak RSS ({label}) at 1M <= 1.2x at 100k: {mb(large)} vs {mb(small)} = "
                f"{ratio(large, small)} -> {verdict(large, small, 1.2, at_least=False)}"
            )
    else:
        say("  EVI peak RSS at 1M <= 1.2x at 100k: not measured (run both sizes)")


def peaks(measured: Measured | None) -> str:
    if measured is None:
        return "-"
    return f"{mb(measured.peak_rss_mb)}, {mb(measured.peak_tree_mb)}"


def verdict(a: float | None, b: float | None, bound: float, *, at_least: bool) -> str:
    if a is None or not b:
        return "not measured"
    met = a / b >= bound if at_least else a / b <= bound
    return "met" if met else "NOT met"


# -- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="records, comma-separated")
    parser.add_argument("--latency-ms", type=int, default=3, help="delay of every API answer")
    parser.add_argument("--population", type=int, default=5_000, help="people (at most)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the `evi sync` process (not its helpers)"
    )
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes record counts separated by commas, e.g. 10000,100000")
    if not sizes or min(sizes) < 4:
        parser.error("--sizes: each size must be at least 4 records")
    root = args.work or Path(tempfile.mkdtemp(prefix="evi-bench-sync-"))
    root.mkdir(parents=True, exist_ok=True)
    say(f"machine: {machine('dlt', 'evi-hub')}")
    say(f"work directory: {root}")
    results = []
    try:
        for size in sizes:
            work = root / f"size-{size}"
            if work.exists():
                shutil.rmtree(work)
            work.mkdir()
            results.append(run_size(plan_for(size, args.population), args, work))
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if results:
            print_table(results, args)
        if not args.keep and args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
