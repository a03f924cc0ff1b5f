"""How long does `evi db upgrade` lock the `record` table on PostgreSQL, and what waits?

Run::

    .venv/bin/python bench/sync.py --sizes 1000000 --keep --work /tmp/u/sync   # a 1M home
    .venv/bin/python bench/upgrade.py --home /tmp/u/sync/size-1000000/home \\
        --records 0,4000000,10000000             # as copied, then grown to 4M and 10M

Revision 0009 adds ``record.walk`` as a STORED generated column on PostgreSQL: one
``ALTER TABLE`` that rewrites the whole table (and rebuilds its indexes) under an ACCESS
EXCLUSIVE lock, then the partial index ``ix_record_walk``, in the one transaction of `evi
db upgrade`, so the lock is held until it commits. This measures that on a scratch
database (``--database``, dropped at the end unless ``--keep``) on the server of
``--server``:

1. `evi db copy` of ``--home`` (a SQLite home at the newest revision, e.g. one that
   bench/sync.py kept) into it, then Alembic's downgrade to ``--from`` (0008); for each
   size of ``--records`` (``0``: as copied) the records are grown to it by copies of the
   copied ones (same people, bodies and kinds; ``source_id`` suffixed), then ``VACUUM FULL``
   (no dead rows or dropped column left from the downgrade), ``ANALYZE`` and ``CHECKPOINT``;
2. `evi db upgrade` in a process of its own (``application_name=evi-bench-upgrade``),
   timed, while a second connection samples ``pg_locks`` and ``pg_stat_activity`` every
   0.1 s: which statement the upgrade runs (a timeline), how long it holds ACCESS
   EXCLUSIVE on ``record``, the server process's CPU, and the most sessions waiting for
   ``record`` at once;
3. meanwhile, every ``--probe-every`` seconds from the start, a reader such as a
   caseworker's page (a new connection with the hub's ``lock_timeout`` of 60 s, one
   record by id): how long it waited, and whether it got its row or a lock timeout;
4. after it: ``evi db status``, the new column's filled rows against the referrals and
   closures, ``ix_record_walk`` valid, sizes before and after, the WAL written.

The figures are printed with the machine and load average. It never asserts timings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine

LOCK_TIMEOUT = "60s"  # the hub's own (hub.store.db.LOCK_TIMEOUT_SECONDS)
APP = "evi-bench-upgrade"
EVI = [sys.executable, "-m", "hub"]
# every column of record but id and walk, for the grown copies
COLUMNS = (
    "source, participant_id, kind, category, updated_at, body, payload_sha256, restricted, "
    "unmapped, mapping_version, stored_at, referring_party"
)


def say(line: str = "") -> None:
    print(line, flush=True)


def pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def connect(url: str, **kwargs: Any) -> Any:
    import psycopg

    return psycopg.connect(pg(url), autocommit=True, **kwargs)


def evi(
    home: Path, url: str | None, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``evi ARGS`` on ``home``, on the database ``url`` (``None``: the home's own)."""
    env = {k: v for k, v in os.environ.items() if k != "EVI_DATABASE_URL"}
    env["EVI_HOME"] = str(home)
    if url is not None:
        env["EVI_DATABASE_URL"] = url
    done = subprocess.run([*EVI, *args], env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"evi {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def mb(n: float) -> str:
    return f"{n / 1024 / 1024:,.0f} MB"


# -- preparing the database -------------------------------------------------------------------


def create_database(server: str, name: str, *, drop_only: bool = False) -> str:
    with connect(f"{server}/postgres") as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            con.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    from hub.store.db import Database
    from hub.store.migrate import alembic_config

    db = Database(url)
    try:
        with db.engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
    finally:
        db.dispose()


def grow(url: str, copied: int, target: int) -> int:
    """Add copies of the first ``copied`` records until there are ``target``."""
    with connect(url) as con:
        have = con.execute("SELECT count(*) FROM record").fetchone()[0]
        k = 1 + (have - copied) // copied if copied else 1
        while have < target:
            k += 1
            n = min(copied, target - have)
            con.execute(
                f"INSERT INTO record (source_id, {COLUMNS}) "
                f"SELECT source_id || '~{k}', {COLUMNS} FROM record ORDER BY id LIMIT {n}"
            )
            have += n
            say(f"  grown to {have:,} records")
        return int(have)


def settle(url: str) -> None:
    with connect(url) as con:
        con.execute("VACUUM FULL record")
        con.execute("VACUUM ANALYZE")
        con.execute("CHECKPOINT")


def sizes(url: str) -> dict[str, int]:
    with connect(url) as con:
        row = con.execute(
            "SELECT pg_relation_size('record'), pg_indexes_size('record'), "
            "pg_total_relation_size('record'), pg_database_size(current_database()), "
            "(SELECT count(*) FROM record), "
            "(SELECT count(*) FROM record WHERE kind IN ('referral', 'closure'))"
        ).fetchone()
    keys = ("table", "indexes", "total", "database", "records", "walked")
    return dict(zip(keys, (int(v) for v in row), strict=True))


# -- the measured upgrade ---------------------------------------------------------------------


@dataclass
class Probe:
    at: float
    waited: float = 0.0
    outcome: str = "?"


@dataclass
class Watch:
    timeline: list[tuple[float, str]] = field(default_factory=list)
    exclusive: list[float] = field(default_factory=list)  # sample times it was held
    most_waiting: int = 0
    cpu: float = 0.0  # the upgrade's server process, seconds
    probes: list[Probe] = field(default_factory=list)


def cpu_of(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None  # another host's server, or gone
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch(url: str, oid: int, start: float, done: threading.Event, out: Watch) -> None:
    with connect(url) as con:
        last = ""
        while not done.is_set():
            rows = con.execute(
                "SELECT a.pid, a.application_name, a.query, l.mode, l.granted "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'relation' AND l.relation = %s",
                (oid,),
            ).fetchall()
            t = time.monotonic() - start
            mine = con.execute(
                "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = %s",
                (APP,),
            ).fetchall()
            for pid, state, query in mine:
                now = f"{state}: {' '.join(query.split())[:70]}"
                if now != last:
                    out.timeline.append((t, now))
                    last = now
                out.cpu = cpu_of(pid) or out.cpu
            if any(
                app == APP and mode == "AccessExclusiveLock" and ok for _, app, _, mode, ok in rows
            ):
                out.exclusive.append(t)
            out.most_waiting = max(out.most_waiting, sum(1 for *_, ok in rows if not ok))
            time.sleep(0.1)


def probe(url: str, record_id: int, start: float, out: Probe) -> None:
    import psycopg

    began = time.monotonic()
    try:
        with connect(url, options=f"-c lock_timeout={LOCK_TIMEOUT}") as con:
            con.execute("SELECT body FROM record WHERE id = %s", (record_id,)).fetchone()
        out.outcome = "its row"
    except psycopg.errors.LockNotAvailable:
        out.outcome = "lock timeout"
    except psycopg.Error as exc:
        out.outcome = type(exc).__name__
    out.waited = time.monotonic() - began


def measure(
    home: Path, url: str, every: float
) -> tuple[subprocess.CompletedProcess[str], float, Watch]:
    with connect(url) as con:
        oid = con.execute("SELECT 'record'::regclass::oid").fetchone()[0]
        first = con.execute("SELECT min(id) FROM record").fetchone()[0]
    out = Watch()
    done = threading.Event()
    start = time.monotonic()
    watcher = threading.Thread(target=watch, args=(url, oid, start, done, out), daemon=True)
    watcher.start()
    sep = "&" if "?" in url else "?"
    env = {
        **os.environ,
        "EVI_HOME": str(home),
        "EVI_DATABASE_URL": f"{url}{sep}application_name={APP}",
    }
    child = subprocess.Popen(
        [*EVI, "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    probers: list[threading.Thread] = []
    next_probe = 1.0
    while child.poll() is None:
        if every and time.monotonic() - start >= next_probe:
            p = Probe(at=time.monotonic() - start)
            out.probes.append(p)
            thread = threading.Thread(target=probe, args=(url, first, start, p), daemon=True)
            thread.start()
            probers.append(thread)
            next_probe += every
        time.sleep(0.05)
    wall = time.monotonic() - start
    stdout, stderr = child.communicate()
    for thread in probers:
        thread.join()
    done.set()
    watcher.join()
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr), wall, out


def wal_lsn(url: str) -> int:
    with connect(url) as con:
        return int(con.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])


def check_after(home: Path, url: str) -> str:
    status = evi(home, url, "db", "status", check=False)
    with connect(url) as con:
        filled = con.execute("SELECT count(*) FROM record WHERE walk IS NOT NULL").fetchone()[0]
        valid = con.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_record_walk'::regclass"
        ).fetchone()[0]
    return (
        f"evi db status exit {status.returncode}; walk filled {filled:,}; "
        f"ix_record_walk valid {valid}"
    )


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, required=True, help="a SQLite EVI_HOME at the newest revision"
    )
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--database", default="evi_bench_upgrade", help="scratch database (dropped)"
    )
    parser.add_argument("--records", default="0", help="sizes, comma-separated; 0 = as copied")
    parser.add_argument("--from", dest="revision", default="0008", help="revision to upgrade from")
    parser.add_argument("--probe-every", type=float, default=10.0, help="seconds; 0: no readers")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--reuse", action="store_true", help="the scratch database a --keep run left: no copy"
    )
    args = parser.parse_args()
    targets = sorted(int(part) for part in args.records.split(",") if part.strip())

    say(f"machine: {machine('psycopg', 'alembic')}")
    server = args.server.rstrip("/")
    url = f"{server}/{args.database}" if args.reuse else create_database(server, args.database)
    with connect(url) as con:
        say(f"server: {con.execute('SELECT version()').fetchone()[0].split(' on ')[0]}")
        settings = con.execute(
            "SELECT string_agg(name || '=' || current_setting(name), ', ') FROM pg_settings "
            "WHERE name IN ('shared_buffers', 'maintenance_work_mem', 'max_wal_size', "
            "'synchronous_commit', 'fsync')"
        ).fetchone()[0]
        say(f"settings: {settings}")
    try:
        began = time.monotonic()
        if not args.reuse:
            evi(Path(args.home), None, "db", "copy", "--to", url)
        with connect(url) as con:  # the grown copies' source_id end in ~N
            copied = con.execute(
                "SELECT count(*) FROM record WHERE source_id NOT LIKE '%~%'"
            ).fetchone()[0]
        if args.reuse:
            say(f"reused: {copied:,} records copied by an earlier run")
        else:
            say(f"evi db copy: {copied:,} records in {time.monotonic() - began:.0f} s")
        for target in targets:
            downgrade(url, args.revision)
            have = grow(url, copied, target) if target > copied else copied
            settle(url)
            before = sizes(url)
            free = (
                shutil.disk_usage("/var/lib/postgresql").free
                if Path("/var/lib/postgresql").exists()
                else 0
            )
            load = os.getloadavg()
            say(
                f"\n== {have:,} records at {args.revision}; "
                f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            )
            say(
                f"record: table {mb(before['table'])}, indexes {mb(before['indexes'])}, total "
                f"{mb(before['total'])}; database {mb(before['database'])}; free disk {mb(free)}"
            )
            lsn = wal_lsn(url)
            done, wall, out = measure(Path(args.home), url, args.probe_every)
            wal = wal_lsn(url) - lsn
            after = sizes(url)
            say(
                f"evi db upgrade: exit {done.returncode}, {wall:.1f} s wall; "
                f"its server process {out.cpu:.1f} s CPU"
            )
            for line in (done.stdout + done.stderr).strip().splitlines():
                say(f"  | {line}")
            first, last = (out.exclusive[0], out.exclusive[-1]) if out.exclusive else (0.0, 0.0)
            say(
                f"ACCESS EXCLUSIVE on record: seen from {first:.1f} s to {last:.1f} s "
                f"({last - first:.1f} s); "
                f"most sessions waiting for record at once: {out.most_waiting}"
            )
            say("timeline of the upgrade's statements (s from start):")
            for t, what in out.timeline:
                say(f"  {t:7.1f}  {what}")
            for p in out.probes:
                say(f"reader started at {p.at:5.1f} s: waited {p.waited:5.1f} s, got {p.outcome}")
            say(
                f"after: table {mb(after['table'])}, indexes {mb(after['indexes'])}, total "
                f"{mb(after['total'])}; WAL written {mb(wal)}; {check_after(Path(args.home), url)} "
                f"(referrals and closures {after['walked']:,})"
            )
    finally:
        if not args.keep:
            create_database(server, args.database, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
