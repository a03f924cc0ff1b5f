"""A year of nights: what the embedded default looks like after N nightly jobs.

Run::

    .venv/bin/python bench/year.py                       # 500 people, 365 nights
    .venv/bin/python bench/year.py --nights 60 --people 200
    .venv/bin/python bench/year.py --work /tmp/year --keep --csv /tmp/year/nights.csv

The embedded default as `evi demo --setup-only` sets it up (SQLite, keys and the four
sandbox authorities in-process under a fresh ``$EVI_HOME``, the demo's caseload), then,
for every night:

* during the day before it, a trickle of consent changes through the hub's own consent
  service (:class:`hub.consent.service.ConsentService`, as `evi consent` uses it): new
  consents (valid 6 to 18 months, so some expire within the year), renewals of consents
  about to end, withdrawals (whole, or of one party), a block now and then; the others
  expire on their own;
* at night each sandbox advances one round (``POST /_sandbox/advance``: every person
  gets a new record at every authority), then ``evi sync --sandbox --json``;
* weekly ``evi log verify``; on the first night of each month
  ``evi participants purge --consent-ended-before <6 months ago> --yes`` and
  ``evi log purge --before <13 months ago> --yes`` (``--records-months``,
  ``--log-months``).

**Time is simulated, and everything runs in this one process.** The hub has no clock
setting a subprocess would obey (no ``EVI_*`` clock, no faketime on the machine): it reads
``datetime.now(UTC)`` in some forty places, and only the consent service and the
caseworker look-up take a ``clock``. So the bench replaces the ``datetime`` name of every
``hub.*`` module by a subclass whose ``now()`` gives the simulated time (the night's 02:00
in Sweden plus the wall time since), and runs each command through ``hub.cli.run(argv)``,
the same code `evi` runs (argument parsing, opening the hub, the checks, the report, the
checkpoint) without the interpreter's start. Connectors and sandboxes keep the real
clock (their client certificates are made now, valid a year): the simulated year ends
today, so every simulated instant lies before now. The in-process sandboxes answer in
this process, so a night's CPU includes theirs, and `evi sync` forks no helpers with
in-process sandboxes (as `evi sync --sandbox` does from cron). A CLI process per night
would add about 1.5-2 s of interpreter start and imports to each night (measured once at
the end: the same night as a subprocess at the real clock).

For nights 1, 7, 30, 90, 180 and 365 (those reached, and the last) it prints: the night's
wall and CPU time, records pulled, transfers delivered, the database file's size (with
its WAL), ledger entries (all, and those with content), outbox rows by status, stored
records, participants, `evi log verify`'s time, one caseworker look-up
(:func:`hub.casework.status.consolidated_status`) and `evi stats` for the year so far.
It never asserts. ``--csv`` writes one line per night.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _machine import machine

from hub.model.vocab import BUILTIN_PARTIES, Category

_REAL = dt.datetime
SWEDEN = ZoneInfo("Europe/Stockholm")
UTC = dt.UTC
MILESTONES = (1, 7, 30, 90, 180, 365)
ACTOR = "bench-year"
YEAR = dt.timedelta(days=365)
PARTIES = list(BUILTIN_PARTIES)


# -- the simulated clock ---------------------------------------------------------------------


class _SimMeta(type):
    """``isinstance(x, datetime)`` stays true for real datetimes where a module's name
    ``datetime`` is the simulated class."""

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _REAL)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _REAL)


class SimDatetime(_REAL, metaclass=_SimMeta):
    """``datetime`` whose ``now()`` is the simulated time; everything it makes is a real
    ``datetime`` (the C type's alternative constructors call ``cls(...)``, which lands in
    ``__new__`` here)."""

    _base: dt.datetime = _REAL.now(UTC)
    _since: float = time.monotonic()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _REAL(*args, **kwargs)

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> Any:
        at = cls._base + dt.timedelta(seconds=time.monotonic() - cls._since)
        return at.astimezone(tz) if tz is not None else at.astimezone().replace(tzinfo=None)

    @classmethod
    def utcnow(cls) -> Any:
        return cls.now(UTC).replace(tzinfo=None)


class SimClock:
    """Set the hub's time. :meth:`install` imports every ``hub`` module first, so a command
    area imported later (`hub.commands.lazy`) cannot bring an unpatched one."""

    def __init__(self) -> None:
        self.patched: list[str] = []

    def install(self) -> None:
        import importlib
        import pkgutil

        import hub

        for info in pkgutil.walk_packages(hub.__path__, "hub."):
            if ".migrations." in info.name or info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
        for name, module in list(sys.modules.items()):
            if (name == "hub" or name.startswith("hub.")) and getattr(
                module, "datetime", None
            ) is _REAL:
                module.datetime = SimDatetime  # type: ignore[attr-defined]
                self.patched.append(name)

    @staticmethod
    def set(at: dt.datetime) -> None:
        SimDatetime._base = at.astimezone(UTC)
        SimDatetime._since = time.monotonic()

    @staticmethod
    def now() -> dt.datetime:
        return SimDatetime.now(UTC)  # type: ignore[no-any-return]


def swedish(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return _REAL(day.year, day.month, day.day, hour, minute, tzinfo=SWEDEN).astimezone(UTC)


def months_before(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(y, m + 1, min(day.day, 28))


# -- running `evi` in this process -----------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str
    seconds: float
    cpu: float


def evi(*argv: str) -> Ran:
    """One `evi` command through :func:`hub.cli.run`, its output captured and timed."""
    from hub.cli import run

    out, err = io.StringIO(), io.StringIO()
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(argv))
    return Ran(
        code,
        out.getvalue(),
        err.getvalue(),
        time.perf_counter() - wall,
        time.process_time() - cpu,
    )


def evi_or_stop(*argv: str) -> Ran:
    ran = evi(*argv)
    if ran.code not in (0, 1):
        raise SystemExit(f"`evi {' '.join(argv)}` exited {ran.code}: {ran.err.strip()[-2000:]}")
    return ran


# -- the caseload's life -----------------------------------------------------------------------


@dataclass
class Person:
    number: str
    protected: bool
    until: dt.datetime | None = None  # end of the consent in force, None: none in force
    keep: bool = False  # the look-up's person: never withdrawn or blocked
    withdrawn: dt.datetime | None = None  # when they withdrew the whole consent


@dataclass
class Trickle:
    """The day's consent changes, counted over the run."""

    counts: Counter[str] = field(default_factory=Counter)


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def submission(person: Person, at: dt.datetime, months: int, partial: bool, tag: str) -> Any:
    from hub.model.consent import ConsentSubmission

    parties = ["kommun", "af", "team"] if partial else PARTIES
    categories = [c.value for c in Category if not partial or c != Category.HEALTH]
    form = hashlib.sha256(f"evi bench year form {tag} {person.number[-4:]}".encode()).hexdigest()
    informed = at - dt.timedelta(minutes=20)
    return ConsentSubmission.model_validate(
        {
            "pnr": person.number,
            "parties": parties,
            "categories": categories,
            "purposes": ["coordination"] if partial else ["coordination", "evaluation"],
            "valid_from": informed,
            "valid_until": informed + dt.timedelta(days=round(30.4 * months)),
            "informed_by": "bench-handläggare",
            "informed_at": informed,
            "evidence": {"kind": "paper", "document_sha256": form, "witnessed_by": "bench"},
        }
    )


def day_of_consents(
    people: list[Person], rng: random.Random, day: dt.date, counts: Counter[str]
) -> None:
    """One working day of consent changes, through the consent service, at 09:00-15:00."""
    from hub.consent.service import ConsentService
    from hub.context import open_hub
    from hub.errors import InputError
    from hub.model.identity import parse_identity
    from hub.model.vocab import Category

    scale = len(people) / 500
    hub = open_hub()
    service = ConsentService(hub, clock=SimClock.now)
    try:
        at = swedish(day, 9)
        SimClock.set(at)
        in_force = [p for p in people if p.until is not None and p.until > at]
        for p in people:  # ended on their own since yesterday
            if p.until is not None and p.until <= at:
                p.until = None
                counts["expired"] += 1
        # renewals: of a consent ending within 30 days, one in 30 a day is signed again
        for p in in_force:
            ending = p.until is not None and p.until - at < dt.timedelta(days=30)
            if ending and rng.random() < 1 / 30:
                SimClock.set(at + dt.timedelta(minutes=rng.randrange(360)))
                renewal = submission(p, SimClock.now(), 12, False, f"renew {day}")
                service.register(renewal, actor=ACTOR)
                p.until = renewal.valid_until
                counts["renewed"] += 1
        # new consents: people with none in force sign one (not who withdrew this year)
        free = [
            p
            for p in people
            if p.until is None and (p.withdrawn is None or at - p.withdrawn > YEAR)
        ]
        for p in rng.sample(free, min(len(free), poisson(rng, 1.0 * scale))):
            SimClock.set(at + dt.timedelta(minutes=rng.randrange(360)))
            months = rng.randint(6, 18)
            partial = rng.random() < 0.15
            new = submission(p, SimClock.now(), months, partial, f"new {day}")
            service.register(new, actor=ACTOR)
            p.until = new.valid_until
            counts["new"] += 1
        # withdrawals: whole (the consent ends) or one party
        running = [p for p in people if p.until is not None and not p.keep]
        for p in rng.sample(running, min(len(running), poisson(rng, 0.4 * scale))):
            SimClock.set(at + dt.timedelta(minutes=rng.randrange(360)))
            try:
                if rng.random() < 0.7:
                    service.withdraw(parse_identity(p.number), actor=ACTOR)
                    p.until, p.withdrawn = None, SimClock.now()
                    counts["withdrawn"] += 1
                else:
                    party = rng.choice(["fk", "region", "af"])
                    service.withdraw(parse_identity(p.number), actor=ACTOR, party=party)
                    counts["withdrawn_party"] += 1
            except InputError:
                counts["withdraw_refused"] += 1
        # a block now and then (about one a week for 500 people)
        for p in rng.sample(running, min(len(running), poisson(rng, 0.15 * scale))):
            SimClock.set(at + dt.timedelta(minutes=rng.randrange(360)))
            if rng.random() < 0.5:
                service.block(parse_identity(p.number), actor=ACTOR, category=Category.HEALTH)
            else:
                service.block(parse_identity(p.number), actor=ACTOR, party="af")
            counts["blocked"] += 1
    finally:
        hub.close()


def initial_people(seed: int) -> list[Person]:
    """The demo's people and what its caseload gave each (hub.demo.caseload)."""
    from hub.context import open_hub
    from hub.demo.caseload import DemoPerson, assign_profiles
    from hub.demo.run import demo_sandboxes
    from hub.demo.sandboxes import sandbox_client

    hub = open_hub()
    try:
        target = next(iter(demo_sandboxes(hub).values()))
        with sandbox_client(target) as client:
            answer = client.get("/_sandbox/people", params={"offset": 0, "limit": 10_000})
            answer.raise_for_status()
        demo_people = [
            DemoPerson(number=i["number"], protected=bool(i["protected"]))
            for i in answer.json()["items"]
        ]
    finally:
        hub.close()
    profiles = assign_profiles(demo_people, seed)
    setup = SimClock.now()
    people: list[Person] = []
    by_number = {}
    for profile, members in profiles.items():
        for m in members:
            running = profile in ("full", "partial", "withdrawn_fk", "blocked_health")
            person = Person(
                m.number, m.protected, setup + dt.timedelta(days=365) if running else None
            )
            by_number[m.number] = (profile, person)
    for m in demo_people:
        people.append(by_number[m.number][1])
    for profile, person in by_number.values():
        if profile == "full" and not person.protected:
            person.keep = True
            break
    return people


# -- the night and what is measured ------------------------------------------------------------


@dataclass
class Night:
    n: int
    day: dt.date
    wall: float = 0.0
    cpu: float = 0.0
    pulled: int = 0
    stored: int = 0
    queued: int = 0
    delivered: int = 0
    exit_code: int = 0
    verify_s: float | None = None
    rss: float = 0.0
    snapshot: dict[str, Any] = field(default_factory=dict)
    purge: dict[str, Any] = field(default_factory=dict)


def advance_sandboxes() -> None:
    from hub.context import open_hub
    from hub.demo.run import demo_sandboxes
    from hub.demo.sandboxes import sandbox_client

    hub = open_hub()
    try:
        for target in demo_sandboxes(hub).values():
            with sandbox_client(target) as client:
                client.post("/_sandbox/advance", json={"rounds": 1}).raise_for_status()
    finally:
        hub.close()


def db_counts(db: Path) -> dict[str, Any]:
    """What the database holds, read on a connection of our own (read-only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        outbox = dict(con.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
        pages = one("PRAGMA page_count") * one("PRAGMA page_size")
        free = one("PRAGMA freelist_count") * one("PRAGMA page_size")
        return {
            "ledger": one("SELECT COUNT(*) FROM ledger_entry"),
            "ledger_content": one("SELECT COUNT(*) FROM ledger_entry WHERE canonical IS NOT NULL"),
            "outbox": outbox,
            "records": one("SELECT COUNT(*) FROM record"),
            "participants": one("SELECT COUNT(*) FROM participant"),
            "checkpoints": one("SELECT COUNT(*) FROM ledger_checkpoint"),
            "sync_runs": one("SELECT COUNT(*) FROM sync_run"),
            "db_bytes": pages,
            "free_bytes": free,
        }
    finally:
        con.close()


def file_sizes(home: Path) -> int:
    return sum(
        (home / name).stat().st_size for name in ("evi.db", "evi.db-wal") if (home / name).exists()
    )


def table_sizes(db: Path) -> dict[str, tuple[int, int]]:
    """Bytes per table and index, and how many of them are unused space in its pages
    (SQLite's dbstat, when the library has it)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT name, SUM(pgsize), SUM(unused) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()
    return {name: (size, unused) for name, size, unused in rows}


def rss_mb() -> float:
    """This process's resident set now (it runs every night: a leak would show here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def look_up(person: Person) -> float:
    """One caseworker look-up of ``person`` as the joint team, timed."""
    from hub.casework.status import NothingToShow, Viewer, consolidated_status
    from hub.context import open_hub
    from hub.model.identity import parse_identity

    hub = open_hub()
    try:
        hub.require_schema()
        hub.keys  # noqa: B018 - loaded before the clock starts, as a running web app has them
        started = time.perf_counter()
        with contextlib.suppress(NothingToShow):
            consolidated_status(
                hub,
                parse_identity(person.number),
                Viewer(actor="bench caseworker", party="team"),
                clock=SimClock.now,
            )
        return time.perf_counter() - started
    finally:
        hub.close()


def run_night(night: Night, timings: list[float]) -> dict[str, Any]:
    """Advance the sandboxes and run `evi sync --sandbox --json` as at 02:00."""
    SimClock.set(swedish(night.day, 1, 55))
    advance_sandboxes()
    SimClock.set(swedish(night.day, 2))
    ran = evi("sync", "--sandbox", "--json")
    night.wall, night.cpu, night.exit_code = ran.seconds, ran.cpu, ran.code
    try:
        report = json.loads(ran.out)
    except json.JSONDecodeError:
        raise SystemExit(
            f"night {night.n}: no report (exit {ran.code}): {ran.err[-2000:]}"
        ) from None
    for line in report.get("connectors", []):
        night.pulled += line.get("pulled", 0)
        night.stored += line.get("stored", 0)
        night.queued += line.get("queued", 0)
        night.delivered += line.get("delivered", 0)
        if line.get("status") != "ok":
            print(
                f"  night {night.n}: {line['connector']} {line.get('status')}: {line.get('error')}",
                flush=True,
            )
    timings.append(ran.seconds)
    night.rss = rss_mb()
    return report


def monthly_purges(night: Night, args: argparse.Namespace) -> None:
    records_cut = months_before(night.day, args.records_months)
    log_cut = months_before(night.day, args.log_months)
    SimClock.set(swedish(night.day, 3))
    people = evi_or_stop(
        "participants",
        "purge",
        "--consent-ended-before",
        records_cut.isoformat(),
        "--yes",
        "--actor",
        ACTOR,
    )
    SimClock.set(swedish(night.day, 3, 30))
    log = evi("log", "purge", "--before", log_cut.isoformat(), "--yes")
    night.purge = {
        "records_cut": records_cut.isoformat(),
        "participants_s": people.seconds,
        "participants_out": (people.out + people.err).strip().splitlines()[-1:] or [""],
        "log_cut": log_cut.isoformat(),
        "log_s": log.seconds,
        "log_code": log.code,
        "log_out": (log.out + log.err).strip().splitlines()[-1:] or [""],
        "log_text": (log.out + log.err).strip(),
    }


def verify_log(night: Night) -> None:
    SimClock.set(swedish(night.day, 4))
    ran = evi("log", "verify", "--json")
    night.verify_s = ran.seconds
    if ran.code != 0:
        print(f"  night {night.n}: evi log verify exited {ran.code}: {ran.err.strip()}")


def snapshot(night: Night, home: Path, keep: Person, start: dt.date, tables: bool = False) -> None:
    SimClock.set(swedish(night.day, 10))
    counts = db_counts(home / "evi.db")
    counts["file_bytes"] = file_sizes(home)
    counts["look_up_s"] = look_up(keep)
    SimClock.set(swedish(night.day, 11))
    stats = evi("stats", "--from", start.isoformat(), "--to", night.day.isoformat(), "--json")
    counts["stats_s"] = stats.seconds
    counts["stats_code"] = stats.code
    counts["rss_mb"] = rss_mb()
    counts["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts["load"] = os.getloadavg()[0]
    if tables:
        counts["tables"] = table_sizes(home / "evi.db")
    night.snapshot = counts


# -- reporting ---------------------------------------------------------------------------------


def say(line: str = "") -> None:
    print(line, flush=True)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def print_table(nights: list[Night]) -> None:
    shown = [n for n in nights if n.snapshot]
    statuses = sorted({s for n in shown for s in n.snapshot["outbox"]})
    head = [
        "night",
        "date",
        "wall s",
        "CPU s",
        "pulled",
        "delivered",
        "CPU µs/rec",
        "db file",
        "ledger",
        "with content",
        *[f"outbox {s}" for s in statuses],
        "records",
        "participants",
        "verify s",
        "look-up ms",
        "stats s",
        "load",
        "RSS MB",
    ]
    say("| " + " | ".join(head) + " |")
    say("|" + " --- |" * len(head))
    for n in shown:
        s = n.snapshot
        per = f"{n.cpu / n.pulled * 1e6:,.0f}" if n.pulled else "-"
        row = [
            str(n.n),
            n.day.isoformat(),
            f"{n.wall:.2f}",
            f"{n.cpu:.2f}",
            f"{n.pulled:,}",
            f"{n.delivered:,}",
            per,
            mb(s["file_bytes"]),
            f"{s['ledger']:,}",
            f"{s['ledger_content']:,}",
            *[f"{s['outbox'].get(st, 0):,}" for st in statuses],
            f"{s['records']:,}",
            f"{s['participants']:,}",
            "-" if n.verify_s is None else f"{n.verify_s:.1f}",
            f"{s['look_up_s'] * 1000:.0f}",
            f"{s['stats_s']:.2f}",
            f"{s['load']:.1f}",
            f"{s['rss_mb']:.0f}",
        ]
        say("| " + " | ".join(row) + " |")


def write_csv(path: Path, nights: list[Night]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "night",
                "date",
                "wall_s",
                "cpu_s",
                "pulled",
                "stored",
                "queued",
                "delivered",
                "exit",
                "verify_s",
                "participants_purge_s",
                "log_purge_s",
                "rss_mb",
            ]
        )
        for n in nights:
            out.writerow(
                [
                    n.n,
                    n.day.isoformat(),
                    f"{n.wall:.3f}",
                    f"{n.cpu:.3f}",
                    n.pulled,
                    n.stored,
                    n.queued,
                    n.delivered,
                    n.exit_code,
                    "" if n.verify_s is None else f"{n.verify_s:.3f}",
                    f"{n.purge['participants_s']:.3f}" if n.purge else "",
                    f"{n.purge['log_s']:.3f}" if n.purge else "",
                    f"{n.rss:.0f}",
                ]
            )


def subprocess_night(home: Path) -> float | None:
    """The same nightly command as cron runs it, in its own process at the real clock (after
    the simulated year, which ends before now): what a process start adds to a night."""
    exe = Path(sys.executable).with_name("evi")
    if not exe.exists():
        return None
    advance_sandboxes()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    subprocess.run(
        [str(exe), "sync", "--sandbox", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=500, help="sandbox population (demo: 500)")
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--records-months",
        type=int,
        default=6,
        help="participants purge: consent ended this many months ago",
    )
    parser.add_argument(
        "--log-months", type=int, default=13, help="log purge: entries older than this many months"
    )
    parser.add_argument(
        "--milestones",
        default=",".join(map(str, MILESTONES)),
        help="nights to measure in full (comma-separated; the last is added)",
    )
    parser.add_argument("--csv", type=Path, help="write one line per night to this file")
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if not 10 <= args.people <= 20_000:
        parser.error("--people: 10 to 20000 (the demo's population)")
    if args.nights < 1:
        parser.error("--nights: at least 1")
    milestones = {int(m) for m in args.milestones.split(",") if m.strip()} | {args.nights}

    root = args.work or Path(tempfile.mkdtemp(prefix="evi-bench-year-"))
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    if home.exists():
        shutil.rmtree(home)
    for name in [k for k in os.environ if k.startswith("EVI_")]:
        del os.environ[name]
    os.environ["EVI_HOME"] = str(home)
    home.mkdir(parents=True)
    floor = int(args.log_months * 30.4) - 31
    if floor < 365:  # the shipped [ledger] minimum_retention_days would refuse the log purge
        (home / "evi.toml").write_text(f"[ledger]\nminimum_retention_days = {max(floor, 0)}\n")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    say(f"machine: {machine('evi-hub')}")
    say(f"work directory: {root}")
    clock = SimClock()
    clock.install()
    say(f"simulated clock in {len(clock.patched)} hub modules")

    today = _REAL.now(SWEDEN).date()
    start = today - dt.timedelta(days=args.nights + 1)
    SimClock.set(swedish(start, 14))
    started = time.perf_counter()
    setup = evi_or_stop(
        "demo", "--setup-only", "--population", str(args.people), "--seed", str(args.seed)
    )
    say(f"setup ({setup.seconds:.1f} s): " + " / ".join(setup.out.strip().splitlines()[1:3]))
    people = initial_people(args.seed)
    rng = random.Random(f"evi-bench-year:{args.seed}")
    counts: Counter[str] = Counter()
    nights: list[Night] = []
    timings: list[float] = []
    try:
        for n in range(1, args.nights + 1):
            day = start + dt.timedelta(days=n)
            day_of_consents(people, rng, day - dt.timedelta(days=1), counts)
            night = Night(n, day)
            run_night(night, timings)
            if day.day == 1 and n > 1:
                monthly_purges(night, args)
            if n % 7 == 0 or n in milestones:
                verify_log(night)
            if n in milestones:
                snapshot(
                    night,
                    home,
                    people[[p.keep for p in people].index(True)],
                    start,
                    tables=n == args.nights,
                )
            nights.append(night)
            if n in milestones or night.purge or n % 30 == 0:
                extra = ""
                if night.purge:
                    extra = (
                        f"; purges {night.purge['participants_s']:.2f} s "
                        f"{night.purge['participants_out'][0][:90]!r}, log "
                        f"{night.purge['log_s']:.2f} s (exit {night.purge['log_code']}: "
                        f"{night.purge['log_text'][:90]!r})"
                    )
                say(
                    f"night {n:3} {day}: {night.wall:5.2f} s wall, {night.cpu:5.2f} s CPU, "
                    f"{night.pulled} pulled, {night.delivered} delivered"
                    + ("" if night.verify_s is None else f", verify {night.verify_s:.1f} s")
                    + extra
                )
    finally:
        total = time.perf_counter() - started
        say()
        say(f"consent changes over the run: {dict(sorted(counts.items()))}")
        say(f"whole run: {total / 60:.1f} min for {len(nights)} nights")
        if nights:
            say()
            print_table(nights)
            last = [n for n in nights if n.snapshot][-1:]
            if last:
                s = last[0].snapshot
                say()
                say(
                    f"night {last[0].n}: {s['checkpoints']} checkpoints, {s['sync_runs']} sync "
                    f"runs, {mb(s['free_bytes'])} free pages; bench process peak RSS "
                    f"{s['rss_mb']:.0f} MB"
                )
                for name, (size, unused) in list(s.get("tables", {}).items())[:16]:
                    say(f"  {name:40} {mb(size):>10}  ({mb(unused)} unused in its pages)")
            if args.csv:
                write_csv(args.csv, nights)
        if nights and len(nights) == args.nights:
            cli = subprocess_night(home)
            if cli is not None:
                say(
                    f"one more night as a subprocess (`evi sync --sandbox`, real clock): "
                    f"{cli:.2f} s"
                )
        if not args.keep and args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
