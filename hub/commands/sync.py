"""`evi sync`, `evi sync history` and `evi worker`: the nightly job and its workers."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TaskID, TextColumn

from hub.commands.common import area_app, hub_from, info, print_json
from hub.connector.base import Connector
from hub.connector.errors import ConnectorConfigError
from hub.connector.registry import load_connectors
from hub.connector.service import (
    build_connector,
    certificate_warnings,
    connector_setup,
    enabled_but_not_loaded,
    runnable_connectors,
)
from hub.context import Hub
from hub.errors import ConfigError, InputError, StorageError
from hub.ledger.service import check_signing, new_checkpoint
from hub.store.db import database_away
from hub.store.meta import require_current_keys
from hub.sync.delivery import DEFAULT_LEASE, Deliverer, DeliveryCounts
from hub.sync.history import history
from hub.sync.job import run_sync
from hub.sync.options import Progress, SyncOptions

EXIT_CODES = (
    "Exit codes: 0 ok, 1 partial failure, 2 configuration error, 3 another sync holds the lock."
)

sync_app = area_app(
    help="Run the nightly synchronisation, or show its history.",
    epilog=EXIT_CODES,
    invoke_without_command=True,
)


def _sandbox_transports(hub: Hub) -> dict[str, Any]:
    """In-process sandboxes for ``--sandbox``; the demo code (and its consent caseload) is
    imported only then, not at every nightly run."""
    from hub.demo.run import demo_sandboxes
    from hub.demo.sandboxes import transports

    return transports(demo_sandboxes(hub))


@contextmanager
def _progress() -> Iterator[Progress]:
    """Progress bars on a terminal; plain lines (on stderr) in cron logs and pipes."""
    if not sys.stderr.isatty():
        last: dict[str, int] = {}

        def line(name: str, pulled: int) -> None:
            if pulled - last.get(name, 0) >= 1000 or name not in last:
                info(f"{name}: {pulled} record{'' if pulled == 1 else 's'} pulled")
                last[name] = pulled

        yield line
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} pulled"),
    )
    with RichProgress(*columns, console=Console(stderr=True), transient=True) as bars:
        tasks: dict[str, TaskID] = {}

        def bar(name: str, pulled: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=None)
            bars.update(tasks[name], completed=pulled)

        yield bar


@sync_app.callback()
def sync(
    ctx: typer.Context,
    connector: list[str] = typer.Option(
        [],
        "--connector",
        "-c",
        help="Only this connector (repeatable). Default: every enabled one.",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Pull and decide, show what would be stored and sent; change nothing.",
    ),
    since: str | None = typer.Option(
        None, "--since", help="Start from this cursor instead of the stored one."
    ),
    from_start: bool = typer.Option(
        False,
        "--from-start",
        help="Ignore the stored cursor and read everything again (harmless: records are "
        "upserted, unchanged ones are not sent again).",
    ),
    queue_only: bool = typer.Option(
        False, "--queue-only", help="Pull and queue only; leave delivery to `evi worker`."
    ),
    sandbox: bool = typer.Option(
        False, "--sandbox", help="Reach the connectors' in-process sandboxes (demo, testing)."
    ),
    lease: float = typer.Option(
        DEFAULT_LEASE.total_seconds(),
        "--lease",
        min=1,
        help="Seconds a claimed transfer stays claimed; a run that dies mid-push leaves its "
        "transfers to be retried (with the same idempotency key) after this.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Pull from every enabled authority, store what consent allows, deliver what is due
    (exit codes: :data:`EXIT_CODES`)."""
    if ctx.invoked_subcommand is not None:
        return
    if since is not None:
        _check_since(since, connector, from_start)
    hub = hub_from(ctx)
    hub.require_schema()
    options = SyncOptions(
        connectors=connector or None,
        dry_run=dry_run,
        since=since,
        from_start=from_start,
        deliver=not queue_only,
        transports=_sandbox_transports(hub) if sandbox else {},
        lease=timedelta(seconds=lease),
    )
    if not connector:  # an enabled connector the plugins leave out is not synced: say so
        skipped = enabled_but_not_loaded(hub)
        if skipped:
            info(
                f"enabled but not loaded, so not synced: {', '.join(skipped)} (left out by "
                "EVI_PLUGINS, or not installed)"
            )
    _warn_certificates(hub, connector or None)
    started = _utc_now()
    with _progress() as progress:
        options.progress = progress
        try:
            report = run_sync(hub, options)
        except StorageError as exc:
            if dry_run:
                raise
            raise StorageError(_stopped(exc.message)) from None
    finished = _utc_now()
    if as_json:
        print_json(
            {
                "started_at": started,
                "finished_at": finished,
                "dry_run": report.dry_run,
                "connectors": [r.as_dict() for r in report.connectors],
            }
        )
    else:
        # A line a log file of nightly runs (`evi sync >> sync.log`) can be read by.
        typer.echo(f"sync {'dry run ' if dry_run else ''}started {started}, finished {finished}")
        if not report.connectors:
            info(
                "no connector is enabled; see `evi connectors list`, then "
                "`evi connectors enable NAME`"
            )
        typer.echo(report.table())
        for entry in report.connectors if not dry_run else ():
            if entry.subscribed or entry.cancelled:
                typer.echo(
                    f"{entry.connector}: registered {entry.subscribed} and cancelled "
                    f"{entry.cancelled} people at the authority"
                )
        if dry_run:
            for entry in report.connectors:
                typer.echo(
                    f"{entry.connector}: would register {entry.subscribed} and cancel "
                    f"{entry.cancelled} people at the authority"
                )
                for key, n in sorted(entry.decisions.items()):
                    typer.echo(f"{entry.connector}: gate {key.replace(':', ' ')}: {n}")
            typer.echo("dry run: nothing was stored, queued, sent or logged")
    raise typer.Exit(report.exit_code)


def _stopped(problem: str) -> str:
    """A run the database stopped half-way, in words true of a run: the one-shot
    command's "nothing of this one was kept" is not (every batch, push and log entry is
    its own transaction, and those done stay)."""
    first = problem.split("; ")[0]
    return (
        f"{first}; the run stopped there: what it had stored, delivered and logged stays, "
        "and the next `evi sync` goes on from there (`evi sync history` shows each "
        "connector's line once the database answers)"
    )


def _check_since(since: str, connectors: list[str], from_start: bool) -> None:
    """``--since`` as a run can use it, or an error saying what to give: a cursor is one
    connector's (each authority writes its own kind), and it replaces the stored one."""
    if not since.strip():
        raise InputError(
            "--since: give the cursor to start from, or leave --since out to go on from the "
            "stored one"
        )
    if from_start:
        raise InputError("give --since CURSOR or --from-start, not both")
    if len(set(connectors)) != 1:
        raise InputError(
            "--since: a cursor is one connector's; name that connector: "
            "`evi sync --connector NAME --since CURSOR`"
        )


@sync_app.command("history")
def show_history(
    ctx: typer.Context,
    limit: int = typer.Option(
        20,
        "--limit",
        min=1,
        max=10_000,
        help="How many of the latest rows to show (a row is one connector in one run).",
    ),
    connector: str | None = typer.Option(
        None, "--connector", "-c", help="Only this connector's runs. Default: every connector."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as a JSON array."),
) -> None:
    """The latest runs, newest first: a row per connector and run, with its counts."""
    hub = hub_from(ctx)
    if connector is not None:
        installed = sorted(load_connectors(hub.plugins))
        if connector not in installed and not (connector and history(hub, 1, connector)):
            raise InputError(
                f"--connector {connector!r}: no connector of that name is installed or has "
                f"run (installed: {', '.join(installed)}); see `evi connectors list`"
            )
    rows = history(hub, limit, connector)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        counts = " ".join(f"{k}={v}" for k, v in row["counts"].items())
        started = row["started_at"][:19] + "Z"  # stored in UTC
        line = f"{started}  {row['connector']:<8} {row['status']:<22} {counts}"
        typer.echo(line + (f"  ({row['error']})" if row["error"] else ""))


def _utc_now() -> str:
    """Now in UTC, ISO 8601 to the second with its ``Z``: for logs kept on any host."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def worker(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Deliver what is due, then exit."),
    poll: float = typer.Option(
        5.0, "--poll", min=0.1, help="Seconds between looks at an empty outbox."
    ),
    lease: float = typer.Option(
        DEFAULT_LEASE.total_seconds(),
        "--lease",
        min=1,
        help="Seconds a claimed transfer stays claimed.",
    ),
) -> None:
    """Deliver queued transfers; run any number of these against PostgreSQL.

    Workers claim transfers with FOR UPDATE SKIP LOCKED, so they never take the same one.
    SIGTERM (or Ctrl-C) finishes the current transfer and exits.
    """
    hub = hub_from(ctx)
    hub.require_schema()
    check_signing(hub)  # before delivering what its checkpoints could not sign
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    info("worker ready: SIGTERM or Ctrl-C stops it after the current transfer")
    if hub.db.dialect == "sqlite" and not once:
        info("note: on SQLite run a single worker; PostgreSQL lets any number share the outbox")
    delivered = serve(hub, stop, once=once, poll=poll, lease=timedelta(seconds=lease))
    info(f"worker stopped; {delivered} transfers delivered")
    sys.stdout.flush()


def serve(hub: Hub, stop: threading.Event, *, once: bool, poll: float, lease: timedelta) -> int:
    """The worker's loop until ``stop`` is set (or one round with ``once``); returns how
    many transfers it delivered. Each round serves the connectors as set up at that moment,
    and a database that is away is waited for, not a reason to exit; a schema upgraded or
    a key rotated since the worker started is (:func:`_require_current`)."""
    setup = connector_setup(hub)
    connectors = _worker_connectors(hub)
    info(f"worker serves: {', '.join(sorted(connectors)) or 'no connector'}")
    delivered = 0
    away = 0  # rounds in a row the database could not be used
    logged = 0  # the transfer log's size at the last round
    try:
        while not stop.is_set():
            try:
                logged = _require_current(hub, logged)
                if (now := connector_setup(hub)) != setup:
                    # An administrator enabled, disabled, resumed or reconfigured a
                    # connector (or a sync paused one): serve what is set up now.
                    setup = now
                    _close(connectors)
                    connectors = _worker_connectors(hub, at_start=False)
                    served = ", ".join(sorted(connectors)) or "no connector"
                    info(f"connectors changed; worker serves: {served}")
                deliverer = Deliverer(
                    hub,
                    connectors,
                    actor="evi-worker",
                    max_attempts=hub.settings.sync.max_attempts,
                    lease=lease,
                    stop=stop,
                    batch=WORKER_BATCH,
                )
                counts = deliverer.run()
                done = sum(c.delivered for c in counts.values())
                delivered += done
                if done:
                    new_checkpoint(hub)
                if away:
                    info("the database answers again; the worker goes on")
                away = 0
                _say_round(counts)
            except Exception as exc:
                problem = exc.message if isinstance(exc, StorageError) else database_away(exc)
                if once or problem is None:
                    raise
                # The database is away (restarting, failing over): wait and try again;
                # claimed transfers are claimed again when their lease ends.
                away += 1
                wait = min(poll * 2**away, _MAX_AWAY_WAIT)
                why = problem.split("; ")[0]  # not the one-shot command's advice
                info(f"warning: {why}; the worker tries again in {wait:.0f} s")
                stop.wait(wait)
                continue
            if once:
                break
            stop.wait(poll)
    finally:
        _close(connectors)
    return delivered


def _require_current(hub: Hub, logged: int) -> int:
    """Stop the worker (exit 2) when the database moved on since it started: an upgraded
    schema, a key rotated (``evi keys rotate``), which leaves it unable to open the
    secrets and numbers the rotation re-encrypted, or a transfer log shorter than at the
    last round (the database restored from a backup under it: its start checks that
    restore, :func:`hub.ledger.service.check_signing`). A worker runs for weeks; exiting
    lets its service manager (``Restart=always``) start it afresh with what is current.
    Returns the log's size now."""
    from hub.ledger.tree import StoredTree
    from hub.store.migrate import revision_problem, stored_revision

    with hub.db.session() as session:
        size = StoredTree(session).size()
        problem = revision_problem(stored_revision(session.connection()))
        if problem is None:
            try:
                require_current_keys(session, hub.keys)
            except ConfigError as exc:
                problem = exc.message.split("; ")[0]
    if problem is None and size < logged:
        problem = (
            f"the transfer log went from {logged} to {size} entries while the worker ran "
            "(the database was restored or replaced)"
        )
    if problem is not None:
        raise ConfigError(f"{problem}; the worker stops: start it again")
    return size


def _say_round(counts: dict[str, DeliveryCounts]) -> None:
    """One line for a round that did something, so the journal shows the worker working."""
    done = {name: c.delivered for name, c in sorted(counts.items()) if c.delivered}
    dead = sum(c.dead_lettered for c in counts.values())
    if not done and not dead:
        return
    line = f"delivered {sum(done.values())}"
    if done:
        line += f" ({', '.join(f'{name} {n}' for name, n in done.items())})"
    if dead:
        line += f"; {dead} dead-lettered (evi transfers failed)"
    info(line)


WORKER_BATCH = 100
"""Transfers a worker claims at a time (and claims ahead while pushing): small enough that
workers started together share a night's backlog rather than one taking it all; a sync
delivering on its own claims more (:data:`hub.sync.delivery.BATCH`)."""

_MAX_AWAY_WAIT = 60.0
"""Longest wait between a worker's tries while the database is away (seconds)."""


def _close(connectors: dict[str, Connector]) -> None:
    for connector in connectors.values():
        connector.close()


def _worker_connectors(hub: Hub, *, at_start: bool = True) -> dict[str, Connector]:
    """Every enabled connector that can be built. One with a configuration error is left
    out, with a warning, and its transfers wait in the outbox until it is fixed (as in
    `evi sync`, one connector never stops the others); if none can be built when the
    worker starts, that is the error (later, the worker waits for one)."""
    connectors: dict[str, Connector] = {}
    problems: list[ConnectorConfigError] = []
    for name in runnable_connectors(hub):
        try:
            connectors[name] = build_connector(hub, name)
        except ConnectorConfigError as exc:
            problems.append(exc)
    if problems and not connectors and at_start:
        raise problems[0]
    for problem in problems:
        info(f"warning: {problem.message}; its transfers wait until this is fixed")
    skipped = enabled_but_not_loaded(hub)
    if skipped:
        info(
            f"warning: enabled but not loaded, so not served: {', '.join(skipped)} (left out "
            "by EVI_PLUGINS, or not installed); their transfers wait"
        )
    _warn_certificates(hub, connectors)
    return connectors


def _warn_certificates(hub: Hub, names: Iterable[str] | None) -> None:
    """Warn about the client certificates of ``names`` (default: every enabled connector)
    that expire soon; one already expired fails its connector with its own message."""
    for line in certificate_warnings(hub, only=names, include_expired=False):
        info(f"warning: {line}")


def register(app: typer.Typer) -> None:
    app.add_typer(sync_app, name="sync")
    app.command("worker")(worker)
