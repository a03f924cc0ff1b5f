"""A big city: does every user's daily task stay fast as the number of PEOPLE grows?

Run::

    .venv/bin/python bench/city.py                              # 1,000, 5,000 and every test number
    .venv/bin/python bench/city.py --people 1000,5000           # a subset
    .venv/bin/python bench/city.py --people 2000 --database-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/evi_city   # PostgreSQL (created, dropped)

bench/sync.py measures one night's records at a fixed 5,000 people, bench/year.py a year of
nights at 500; this one holds the work of a night and of a day fixed per person and grows
the people: a joint reception following up to 20,000 people at a time, with about five
consents each over the years (100,000 at 20,000 people). People are Skatteverket's test
personnummer and samordningsnummer, the only numbers the hub's sandboxes know
(`connectors/sandbox_kit/data`: 21,728 + 2,240 lines, 23,966 distinct numbers), so the
largest size is 23,966 (``max``).

For each size, in a child process of its own, a fresh ``$EVI_HOME`` (SQLite, or a new
PostgreSQL database made from ``--database-url`` and dropped afterwards):

1. **Setup** (timed, in the setup figures): `evi db upgrade`; the four sandbox authorities
   served by `evi sandbox serve` (uvicorn on 127.0.0.1, fk and region over HTTPS with a
   client certificate, no records yet, keeping the list of people the hub registers, as a
   real authority does); the consents as staff register them in bulk, `evi consent import`
   of JSON Lines files of 10,000 (each person 1 to 9 consents over the years, 5 on average:
   the older ones expired, the newest in force, 15 % of them for kommun, af and the team
   only); then, one at a time through the consent service (as `evi consent withdraw` and
   `block`), 5 % whole withdrawals, 3 % withdrawals of one party, 2 % blocks; 200 web users;
   a first `evi sync` that registers everyone with the authorities.
2. **Measured**, each `evi` command in a process of its own (its wall time, and its peak
   resident set, ``VmHWM``), run through this script as a thin wrapper around
   ``hub.cli.run`` that counts the SQL statements the command sent (SQLAlchemy's cursor
   events; their number, time, the slowest), the HTTP requests it made, by host, and
   after it asks the database for the plan of each distinct statement (SQLite ``EXPLAIN
   QUERY PLAN``, PostgreSQL ``EXPLAIN``) to name those that read a whole table of people.
   `evi sync` runs with ``EVI_SYNC__HELPERS=0`` (everything in its one process, so every
   statement and request is counted; bench/sync.py measures the helpers):

   * nightly job: a night with one new record per person at every authority; then (after
     a night that settles what those records changed: people an authority marked as
     protected are cancelled there) the subscription reconciliation alone
     (``hub.sync.subscriptions.reconcile`` for the four authorities, in a rolled-back
     transaction) and a night where nothing changed (`evi sync` again);
   * consent staff: `evi consent import` of 1,000 more (new consents of people already
     followed), `evi consent show --pnr`, `evi consent list`, `list --json`,
     `evi consent withdraw --pnr`;
   * caseworker: the casework page for one person (``POST /participants``), its JSON API,
     the register-extract page and the statistics page, through the app (FastAPI's
     TestClient, in one process; each request's statements counted), and
     `evi participants status`;
   * privacy officer: `evi log search --pnr`, `evi participants extract`,
     `evi participants purge` (a dry run: it counts and exits 2);
   * steering group: `evi stats` for the last year.

The figures are printed per task and size side by side (time, statements, peak RSS), so
growth with the people is visible, with the statements that read whole tables. It never
asserts. ``--keep`` keeps the work directory (``--work DIR``), with each size's results as
JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import machine

from hub.model.vocab import BUILTIN_PARTIES, Category

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

UTC = dt.UTC
MAX_PEOPLE = 23_966  # distinct Skatteverket test numbers (two personnummer are listed twice)
PARTIES = list(BUILTIN_PARTIES)
PARTIAL = ["kommun", "af", "team"]
CATEGORIES = [c.value for c in Category]
ACTOR = "bench-city"
IMPORT_FILE_LINES = 10_000
PEOPLE_TABLES = frozenset(
    {
        "participant",
        "consent",
        "consent_version",
        "consent_party",
        "consent_withdrawal",
        "consent_block",
        "subscription",
        "record",
        "outbox",
        "ledger_entry",
        "web_user",
    }
)
"""Tables that grow with the people (or their records): a statement that reads one whole
is named in the figures."""


def say(line: str = "") -> None:
    print(line, flush=True)


# -- the measuring wrapper (a child process) --------------------------------------------------


class Counter:
    """SQL statements (SQLAlchemy cursor events) and HTTP requests of this process,
    by section."""

    def __init__(self) -> None:
        self.section = "all"
        self.sections: dict[str, dict[str, Any]] = {}
        self.statements: dict[str, dict[str, Any]] = {}  # text -> count, seconds, params
        self.http: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._start: dict[int, float] = {}

    def install(self) -> None:
        import httpx
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        @event.listens_for(Engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            self._start[id(cursor)] = time.perf_counter()

        @event.listens_for(Engine, "after_cursor_execute")
        def _after(
            conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
        ) -> None:
            took = time.perf_counter() - self._start.pop(id(cursor), time.perf_counter())
            key = f"{self.section}\x00{statement}"
            seen = self.statements.get(key)
            batch = many and isinstance(params, (list, tuple))  # insertmanyvalues: a dict
            if seen is None:
                first = params[0] if batch and params else params
                seen = self.statements[key] = {"n": 0, "s": 0.0, "params": first, "rows": 0}
            seen["n"] += 1
            seen["s"] += took
            seen["rows"] += len(params) if batch and params else 1

        original = httpx.Client.send
        counter = self

        def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            counter.http[counter.section][request.url.host] += 1
            return original(client, request, *args, **kwargs)

        httpx.Client.send = send  # type: ignore[method-assign]

    @contextlib.contextmanager
    def measure(self, name: str) -> Any:
        self.section = name
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.sections[name] = {
                "seconds": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
            }
            self.section = "all"

    def report(self, url: str) -> dict[str, Any]:
        plans = Plans(url)
        out: dict[str, Any] = {}
        try:
            for name, timing in self.sections.items():
                mine = [
                    (k.split("\x00", 1)[1], v)
                    for k, v in self.statements.items()
                    if k.split("\x00", 1)[0] == name
                ]
                scans = []
                for text, seen in mine:
                    for table, detail in plans.whole_tables(text, seen["params"]):
                        scans.append(
                            {
                                "table": table,
                                "plan": detail,
                                "n": seen["n"],
                                "seconds": round(seen["s"], 4),
                                "sql": shorten(text),
                            }
                        )
                slowest = sorted(mine, key=lambda kv: -kv[1]["s"])[:5]
                out[name] = {
                    **timing,
                    "statements": sum(v["rows"] for _, v in mine),
                    "round_trips": sum(v["n"] for _, v in mine),
                    "distinct": len(mine),
                    "sql_seconds": sum(v["s"] for _, v in mine),
                    "slowest": [
                        {"sql": shorten(t), "n": v["n"], "seconds": round(v["s"], 4)}
                        for t, v in slowest
                    ],
                    "scans": scans,
                    "http": dict(self.http.get(name, {})),
                }
        finally:
            plans.close()
        return out


def shorten(sql: str, width: int = 160) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    text = re.sub(r"(\?, ){3,}\?", "?, …", text)
    text = re.sub(r"(%\(\w+\)s(::\w+)?, ){3,}%\(\w+\)s(::\w+)?", "%s, …", text)
    return text if len(text) <= width else text[: width - 1] + "…"


class Plans:
    """The database's plan of a statement: which tables it reads whole."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            import psycopg

            self.con: Any = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        else:
            self.con = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)

    def close(self) -> None:
        self.con.close()

    def whole_tables(self, sql: str, params: Any) -> list[tuple[str, str]]:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head not in ("SELECT", "UPDATE", "DELETE", "WITH", "INSERT"):
            return []
        if head == "INSERT" and "SELECT" not in sql.upper():
            return []
        try:
            if self.postgres:
                with self.con.cursor() as cur:
                    cur.execute("EXPLAIN " + sql, params or None)
                    lines = [row[0] for row in cur.fetchall()]
                self.con.rollback()
                found = []
                for line in lines:
                    m = re.search(r"Seq Scan on (\w+)", line)
                    if m and m.group(1) in PEOPLE_TABLES:
                        found.append((m.group(1), line.strip()))
                return found
            rows = self.con.execute("EXPLAIN QUERY PLAN " + sql, params or ()).fetchall()
        except Exception as exc:  # a statement that cannot be explained alone
            return [("?", f"not explained: {type(exc).__name__}")]
        found = []
        for row in rows:
            detail = str(row[-1])
            m = re.match(r"SCAN (\w+)", detail)
            if m and m.group(1) in PEOPLE_TABLES:
                found.append((m.group(1), detail))
        return found


def child_main(args: argparse.Namespace) -> int:
    """``--measure OUT [--task T] -- evi args``: run and count, write OUT (JSON)."""
    counter = Counter()
    counter.install()
    from hub.settings import get_settings

    url = get_settings().effective_database_url()
    code = 0
    if args.task == "reconcile":
        reconcile_task(counter)
    elif args.task == "web":
        web_task(counter, json.loads(args.task_input))
    else:
        from hub.cli import run

        with counter.measure("command"):
            code = run(list(args.argv))
    result = {"exit": code, "sections": counter.report(url), "peak_mb": peak_mb()}
    Path(args.measure).write_text(json.dumps(result, default=str), encoding="utf-8")
    sys.stdout.flush()
    os._exit(code)  # as `evi` ends: no collection of everything at exit


def peak_mb() -> float:
    """This process's largest resident set (``VmHWM``: of this program alone; ``wait4``'s
    ``ru_maxrss`` keeps the parent's from before the ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reconcile_task(counter: Counter) -> None:
    """The night's subscription step alone, for every connector, in a rolled-back
    transaction (as job.py runs it: one write transaction per connector)."""
    from hub.connector.registry import load_connectors
    from hub.connector.service import build_connector
    from hub.consent.snapshots import SnapshotCache
    from hub.context import open_hub
    from hub.sync.subscriptions import reconcile

    hub = open_hub()
    hub.require_schema()
    hub.keys  # noqa: B018
    cache = SnapshotCache()
    with counter.measure("reconcile"):
        for name in sorted(load_connectors(hub.plugins)):
            with (
                build_connector(hub, name) as connector,
                hub.db.session(write_lock=True, dry_run=True) as session,
            ):
                changes = reconcile(
                    session, hub.keys, connector, dt.datetime.now(UTC), actor=ACTOR, cache=cache
                )
                print(f"{name}: +{changes.added} -{changes.cancelled}", file=sys.stderr)
    hub.close()


def web_task(counter: Counter, given: dict[str, Any]) -> None:
    """The caseworker's, privacy officer's and steering group's pages through the app."""
    from fastapi.testclient import TestClient

    from hub.context import open_hub
    from hub.web.app import create_app

    hub = open_hub()
    app = create_app(hub)
    own = {"sec-fetch-site": "same-origin", "accept-language": "sv"}
    pnr = given["pnr"]
    today = dt.date.today()
    year_ago = today - dt.timedelta(days=365)

    def signed_in(token: str) -> TestClient:
        client = TestClient(app, base_url="https://testserver", headers=own)
        answer = client.post("/login", data={"token": token})
        if answer.status_code >= 400:
            raise SystemExit(f"sign-in refused: {answer.status_code}")
        return client

    pages: list[tuple[str, str, Any]] = [
        ("caseworker", "GET /participants", lambda c: c.get("/participants")),
        ("caseworker", "POST /participants", lambda c: c.post("/participants", data={"pnr": pnr})),
        (
            "caseworker",
            "POST /api/participants/status",
            lambda c: c.post("/api/participants/status", json={"pnr": pnr}),
        ),
        ("privacy_officer", "POST /extract", lambda c: c.post("/extract", data={"pnr": pnr})),
        (
            "steering_group",
            "GET /stats",
            lambda c: c.get(f"/stats?from={year_ago.isoformat()}&to={today.isoformat()}"),
        ),
        ("administrator", "GET /admin", lambda c: c.get("/admin")),
    ]
    clients: dict[str, TestClient] = {}
    for role, label, ask in pages:
        if role not in clients:
            clients[role] = signed_in(given["tokens"][role])
        ask(clients[role])  # a first request warms the templates and the connection pool
        with counter.measure(label):
            answer = ask(clients[role])
        print(f"{label}: {answer.status_code} {len(answer.content)} bytes", file=sys.stderr)
    for client in clients.values():
        client.close()
    hub.close()


# -- running the wrapper and measuring it -----------------------------------------------------


@dataclass
class Ran:
    code: int
    seconds: float
    peak_mb: float
    out_bytes: int
    stderr: str
    sections: dict[str, Any]


def measured(
    env: dict[str, str], work: Path, label: str, *argv: str, task: str = "", given: Any = None
) -> Ran:
    """One wrapped `evi` command (or task) in its own process; wall, peak RSS, counts."""
    tag = re.sub(r"\W+", "-", label).strip("-")
    result = work / f"{tag}.json"
    cmd = [sys.executable, str(HERE), "--measure", str(result)]
    if task:
        cmd += ["--task", task, "--task-input", json.dumps(given or {})]
    cmd += ["--", *argv]
    out_path, err_path = work / f"{tag}.out", work / f"{tag}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status = os.waitpid(child.pid, 0)
        seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    sections: dict[str, Any] = {}
    peak = 0.0
    if result.exists():
        written = json.loads(result.read_text(encoding="utf-8"))
        sections, peak = written["sections"], written["peak_mb"]
    elif code:
        raise SystemExit(f"{label}: exited {code}: {stderr[-2000:]}")
    return Ran(code, seconds, peak, out_path.stat().st_size, stderr, sections)


# -- one size ---------------------------------------------------------------------------------


def consent_line(number: str, index: int, j: int, start: dt.datetime, years: int) -> str:
    """Consent ``j`` of a person: ``years`` long from ``start``, all parties or a few."""
    rng = random.Random(f"city:{index}:{j}")
    partial = rng.random() < 0.15
    form = hashlib.sha256(f"evi bench city form {index} {j}".encode()).hexdigest()
    informed = start - dt.timedelta(minutes=20)
    return json.dumps(
        {
            "pnr": number,
            "parties": PARTIAL if partial else PARTIES,
            "categories": CATEGORIES if not partial else [*CATEGORIES[:6], "outcome"],
            "purposes": ["coordination"] if partial else ["coordination", "evaluation"],
            "valid_from": start.isoformat(),
            "valid_until": (start + dt.timedelta(days=365 * years)).isoformat(),
            "informed_by": "bench-handläggare",
            "informed_at": informed.isoformat(),
            "evidence": {"kind": "paper", "document_sha256": form, "witnessed_by": "bench"},
        }
    )


def consent_lines(people: list[str], now: dt.datetime, extra: int = 0) -> list[str]:
    """1 to 9 consents per person (5 on average): the older ones ended a year after they
    began, the newest began within the last 300 days and runs two years. ``extra``: the
    newest consent of that many people again, signed today (a renewal, for the import
    of 1,000 more)."""
    lines: list[str] = []
    if extra:
        for index, number in enumerate(people[:extra]):
            start = now - dt.timedelta(hours=2, minutes=index % 60)
            lines.append(consent_line(number, index, 99, start, 2))
        return lines
    for index, number in enumerate(people):
        count = 1 + (index * 7) % 9
        newest = now - dt.timedelta(days=random.Random(f"city:{index}").randrange(1, 300))
        for j in range(count - 1):
            start = newest - dt.timedelta(days=400 * (count - 1 - j))
            lines.append(consent_line(number, index, j, start, 1))
        lines.append(consent_line(number, index, count - 1, newest, 2))
    return lines


def in_process(*argv: str) -> tuple[int, str, str, float]:
    from hub.cli import run

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(argv))
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - started


def must(*argv: str) -> tuple[str, float]:
    code, out, err, seconds = in_process(*argv)
    if code != 0:
        raise SystemExit(f"`evi {' '.join(argv[:3])}` exited {code}: {err[-2000:]}")
    return out, seconds


def db_counts(url: str) -> dict[str, int]:
    tables = (
        "participant",
        "consent",
        "consent_withdrawal",
        "consent_block",
        "subscription",
        "record",
        "outbox",
        "ledger_entry",
        "web_user",
    )
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
            return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    con = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def one_size(args: argparse.Namespace) -> int:
    """``--one N``: set up a hub with N people, measure every task, write ``--out``."""
    n = args.one
    work = Path(args.work)
    home = work / "home"
    home.mkdir(parents=True)
    for name in [k for k in os.environ if k.startswith("EVI_")]:
        del os.environ[name]
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["EVI_HOME"] = str(home)
    if args.database_url:
        os.environ["EVI_DATABASE_URL"] = args.database_url
    url = args.database_url or f"sqlite:///{home / 'evi.db'}"
    env = {**os.environ, "EVI_SYNC__HELPERS": "0"}
    setup: dict[str, Any] = {}
    results: dict[str, Any] = {"people": n, "setup": setup, "tasks": {}, "counts": {}}

    def task(label: str, ran: Ran) -> Ran:
        results["tasks"][label] = {
            "exit": ran.code,
            "seconds": ran.seconds,
            "peak_mb": ran.peak_mb,
            "out_bytes": ran.out_bytes,
            "sections": ran.sections,
        }
        main_section = next(iter(ran.sections.values()), {})
        say(
            f"  {label:34} {ran.seconds:7.2f} s  {ran.peak_mb:6.0f} MB  exit {ran.code}  "
            f"{main_section.get('round_trips', 0):>7} statements  "
            f"{sum(main_section.get('http', {}).values()):>6} requests"
        )
        return ran

    started = time.perf_counter()
    must("db", "upgrade")
    from _sync_sandboxes import Sandboxes

    # no records yet, each keeping the hub's list of registered people (not --all-subscribed)
    sandboxes = Sandboxes(
        home,
        seed=args.seed,
        population=n,
        records_per_person=0,
        latency_ms=0,
        logs=work,
        all_subscribed=False,
    )
    try:
        for name, sandbox_url in sandboxes.urls.items():
            must("sandbox", "connect", name, "--url", sandbox_url)
            must("connectors", "enable", name)
        population = sandboxes.people()
        seen: set[str] = set()
        people: list[str] = []
        for p in population:
            if p["number"] not in seen:
                seen.add(p["number"])
                people.append(p["number"])
        setup["distinct_people"] = len(people)
        now = dt.datetime.now(UTC).replace(microsecond=0)

        # consents as staff import them, 10,000 lines a file
        lines = consent_lines(people, now)
        setup["consents"] = len(lines)
        mark = time.perf_counter()
        for start in range(0, len(lines), IMPORT_FILE_LINES):
            file = work / f"consents-{start // IMPORT_FILE_LINES:03}.jsonl"
            file.write_text("\n".join(lines[start : start + IMPORT_FILE_LINES]) + "\n")
            must("consent", "import", str(file), "--actor", ACTOR)
        setup["import_s"] = time.perf_counter() - mark
        say(
            f"  setup: {len(lines):,} consents of {len(people):,} people imported in "
            f"{setup['import_s']:.1f} s"
        )

        # withdrawals and blocks, one at a time as staff record them
        from hub.consent.service import ConsentService
        from hub.context import open_hub
        from hub.model.identity import parse_identity
        from hub.model.vocab import Category
        from hub.web.users import Role, add_user

        rng = random.Random(f"city:{args.seed}")
        order = list(range(1, len(people)))  # person 0 is the one looked up: kept whole
        rng.shuffle(order)
        whole = order[: len(people) * 5 // 100]
        party = order[len(whole) : len(whole) + len(people) * 3 // 100]
        blocked = order[len(whole) + len(party) : len(whole) + len(party) + len(people) // 50]
        hub = open_hub()
        service = ConsentService(hub)
        mark = time.perf_counter()
        for i in whole:
            service.withdraw(parse_identity(people[i]), actor=ACTOR)
        for i in party:
            with contextlib.suppress(Exception):  # a partial consent may not name fk
                service.withdraw(parse_identity(people[i]), actor=ACTOR, party="fk")
        for k, i in enumerate(blocked):
            if k % 2:
                service.block(parse_identity(people[i]), actor=ACTOR, party="af")
            else:
                service.block(parse_identity(people[i]), actor=ACTOR, category=Category.HEALTH)
        setup["withdraw_block_s"] = time.perf_counter() - mark
        setup["withdrawn"], setup["withdrawn_party"], setup["blocked"] = (
            len(whole),
            len(party),
            len(blocked),
        )
        tokens: dict[str, str] = {}
        for k in range(200):
            role = list(Role)[k % 4]
            user_party = "team" if role is not Role.CASEWORKER else PARTIES[k % 5]
            issued = add_user(hub, f"user{k:03}", user_party, role, actor=ACTOR)
            if role.value not in tokens and user_party == "team":
                tokens[role.value] = issued.token
        hub.close()
        say(
            f"  setup: {len(whole)} withdrawn, {len(party)} withdrawn for fk, {len(blocked)} "
            f"blocked in {setup['withdraw_block_s']:.1f} s; 200 web users"
        )

        # the first night registers everyone with the authorities
        first = measured(env, work, "first night", "sync", "--json")
        setup["first_night_s"] = first.seconds
        say(f"  setup: first night (everyone registered) {first.seconds:.1f} s")
        setup["total_s"] = time.perf_counter() - started
        results["counts"]["after_setup"] = db_counts(url)

        # what any `evi` command costs to start (imports, settings, the schema check)
        task("process start (evi db status)", measured(env, work, "start", "db", "status"))

        # -- nightly job: a night with records, a night that settles what they changed
        # (people an authority marked protected are cancelled there), then nights where
        # nothing changed: the steady state
        sandboxes.advance(1)
        task("night: 1 record/person/authority", measured(env, work, "night", "sync", "--json"))
        settle = measured(env, work, "night settles", "sync", "--json")
        results["settling_night_s"] = settle.seconds
        task("night: reconcile alone", measured(env, work, "reconcile", task="reconcile"))
        before = db_counts(url)
        task("night: nothing changed", measured(env, work, "night unchanged", "sync", "--json"))
        after = db_counts(url)
        results["unchanged_ledger_entries"] = after["ledger_entry"] - before["ledger_entry"]
        results["counts"]["after_nights"] = after

        # -- consent staff
        more = work / "more.jsonl"
        more.write_text("\n".join(consent_lines(people, now, extra=1000)) + "\n")
        task("consent import 1,000", measured(env, work, "import", "consent", "import", str(more)))
        who = people[0]
        task("consent show --pnr", measured(env, work, "show", "consent", "show", "--pnr", who))
        task("consent list", measured(env, work, "list", "consent", "list"))
        task("consent list --json", measured(env, work, "list json", "consent", "list", "--json"))
        task(
            "consent withdraw --pnr",
            measured(env, work, "withdraw", "consent", "withdraw", "--pnr", people[-1]),
        )

        # -- caseworker
        web = measured(env, work, "web", task="web", given={"pnr": who, "tokens": tokens})
        for label, section in web.sections.items():
            results["tasks"][f"web {label}"] = {
                "exit": 0,
                "seconds": section["seconds"],
                "peak_mb": web.peak_mb,
                "out_bytes": 0,
                "sections": {label: section},
            }
            say(
                f"  web {label:30} {section['seconds']:7.3f} s  {section['round_trips']:>7} "
                "statements"
            )
        task(
            "participants status",
            measured(env, work, "status", "participants", "status", "--pnr", who, "--as", "team"),
        )

        # -- privacy officer
        task(
            "log search --pnr",
            measured(env, work, "log search", "log", "search", "--pnr", who),
        )
        task(
            "participants extract",
            measured(env, work, "extract", "participants", "extract", "--pnr", who),
        )
        today = dt.date.today()
        task(
            "participants purge (dry run)",
            measured(
                env,
                work,
                "purge",
                "participants",
                "purge",
                "--consent-ended-before",
                today.isoformat(),
            ),
        )

        # -- steering group
        task(
            "stats for a year",
            measured(
                env,
                work,
                "stats",
                "stats",
                "--from",
                (today - dt.timedelta(days=365)).isoformat(),
                "--to",
                today.isoformat(),
                "--json",
            ),
        )
    finally:
        sandboxes.stop()
    results["counts"]["end"] = db_counts(url)
    Path(args.out).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


# -- the whole run ----------------------------------------------------------------------------


def postgres_database(base: str, name: str, create: bool) -> str:
    """Create (or drop) database ``name`` on the server of ``base``; its URL."""
    import psycopg

    server = base.rsplit("/", 1)[0]
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            con.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def sizes_from(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            out.append(MAX_PEOPLE if part == "max" else int(part))
    return out


def print_table(results: list[dict[str, Any]]) -> None:
    sizes = [r["people"] for r in results]
    labels: list[str] = []
    for r in results:
        for label in r["tasks"]:
            if label not in labels:
                labels.append(label)
    say("| task | " + " | ".join(f"{n:,} people" for n in sizes) + " |")
    say("| --- |" + " --- |" * len(sizes))
    for label in labels:
        cells = []
        for r in results:
            t = r["tasks"].get(label)
            if t is None:
                cells.append("-")
                continue
            section = next(iter(t["sections"].values()), {})
            http = sum(section.get("http", {}).values())
            seconds = t["seconds"]
            text = f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"
            text += f", {section.get('round_trips', 0):,} st"
            if http:
                text += f", {http:,} req"
            if not label.startswith("web "):
                text += f", {t['peak_mb']:.0f} MB"
            if t["exit"] not in (0,):
                text += f" (exit {t['exit']})"
            cells.append(text)
        say(f"| {label} | " + " | ".join(cells) + " |")


def print_scans(results: list[dict[str, Any]]) -> None:
    say()
    say("Statements that read a whole table of people (largest size; plan, times run, seconds):")
    last = results[-1]
    for label, t in last["tasks"].items():
        for section in t["sections"].values():
            for scan in section.get("scans", []):
                say(
                    f"  {label}: {scan['table']}: {scan['plan']} x{scan['n']} "
                    f"{scan['seconds']:.3f} s: {scan['sql']}"
                )
    say()
    say("Slowest statements per task (largest size):")
    for label, t in last["tasks"].items():
        for section in t["sections"].values():
            for s in section.get("slowest", [])[:2]:
                if s["seconds"] >= 0.05:
                    say(f"  {label}: {s['seconds']:.3f} s x{s['n']}: {s['sql']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--people",
        default="1000,5000,max",
        help=f"sizes, comma-separated; max = {MAX_PEOPLE:,} (every distinct test number)",
    )
    parser.add_argument("--database-url", help="PostgreSQL base URL (a database per size)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="", help=argparse.SUPPRESS)
    parser.add_argument("--task-input", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("argv", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return child_main(args)
    if args.one:
        return one_size(args)

    sizes = sizes_from(args.people)
    if not sizes or any(not 10 <= n <= MAX_PEOPLE for n in sizes):
        parser.error(f"--people: sizes from 10 to {MAX_PEOPLE} (or max)")
    if args.database_url and not args.database_url.startswith("postgresql+psycopg://"):
        parser.error("--database-url: postgresql+psycopg://USER@HOST:PORT/NAME")
    root = args.work or Path(tempfile.mkdtemp(prefix="evi-bench-city-"))
    root.mkdir(parents=True, exist_ok=True)
    say(f"machine: {machine('evi-hub')}")
    say(f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; work directory: {root}")
    results = []
    stop = threading.Event()
    try:
        for n in sizes:
            say(f"\n== {n:,} people")
            work = root / f"people-{n}"
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            cmd = [sys.executable, str(HERE), "--one", str(n), "--work", str(work)]
            cmd += ["--out", str(work / "results.json"), "--seed", str(args.seed)]
            name = ""
            if args.database_url:
                name = f"{args.database_url.rsplit('/', 1)[1]}_{n}"
                cmd += ["--database-url", postgres_database(args.database_url, name, True)]
            started = time.perf_counter()
            child = subprocess.Popen(cmd)
            try:
                code = child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
                child.wait()
                raise
            finally:
                if name:
                    postgres_database(args.database_url, name, False)
            if code != 0:
                say(f"size {n} failed (exit {code}); see {work}")
                continue
            result = json.loads((work / "results.json").read_text(encoding="utf-8"))
            result["wall_s"] = time.perf_counter() - started
            results.append(result)
            say(f"  whole size: {result['wall_s'] / 60:.1f} min")
    finally:
        stop.set()
        if results:
            say()
            print_table(results)
            say()
            for r in results:
                s, c = r["setup"], r["counts"]["end"]
                say(
                    f"{r['people']:,} people: {s['consents']:,} consents imported in "
                    f"{s['import_s']:.1f} s, first night {s['first_night_s']:.1f} s; a night "
                    f"with nothing changed appended {r['unchanged_ledger_entries']:,} log "
                    f"entries; at the end {c['participant']:,} participants, "
                    f"{c['consent']:,} consents, {c['record']:,} records, "
                    f"{c['ledger_entry']:,} log entries"
                )
            print_scans(results)
        if not args.keep and args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
