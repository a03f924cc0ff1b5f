"""`evi sync`: run every enabled connector's pull, then deliver what is due.

One connector's failure never stops the others: each is pulled under its own database
lock and reported on its own. The run ends with a signed ledger checkpoint, a row per
connector in ``sync_run`` (for `evi sync history`) and the ``evi_sync_finished`` hook.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx

from hub.connector.base import Connector
from hub.connector.errors import ConnectorConfigError, ConnectorError
from hub.connector.registry import load_connectors
from hub.connector.retry import RetryPolicy
from hub.connector.service import (
    STATUS_FAILED,
    build_connector,
    connector_status,
    record_sync_result,
    runnable_connectors,
)
from hub.context import Hub
from hub.errors import ConfigError, LockHeldError
from hub.ledger.service import new_checkpoint
from hub.store.tables.sync import SyncRun
from hub.sync import fanout
from hub.sync.delivery import DEFAULT_LEASE, Deliverer, DeliveryCounts
from hub.sync.gcpolicy import fewer_collections
from hub.sync.inbound import (
    InboundBatch,
    InboundCounts,
    InboundRun,
    correlation_id,
    stored_cursor,
)
from hub.sync.lock import connector_lock
from hub.sync.pull import pull_batches
from hub.sync.report import (
    CONFIG_ERROR,
    DRY_RUN,
    FAILED,
    LOCKED,
    OK,
    PARTIAL,
    ConnectorReport,
    SyncReport,
)
from hub.sync.subscriptions import reconcile, subscribed_identities

ACTOR = "evi-sync"
HELPER_PAGE_CACHE_KIB = 16_384
"""SQLite page cache of each helper process's connections (measured: a 100,000-record
sync no faster with 64 MB each; at 1M records 64 MB each made every helper 48 MB bigger)."""
Progress = Callable[[str, int], None]


@dataclass
class SyncOptions:
    connectors: list[str] | None = None
    dry_run: bool = False
    since: str | None = None
    from_start: bool = False
    deliver: bool = True
    transports: Mapping[str, httpx.BaseTransport] = field(default_factory=dict)
    progress: Progress | None = None
    lease: timedelta = DEFAULT_LEASE
    retry: RetryPolicy | None = None


def selected_connectors(hub: Hub, wanted: list[str] | None) -> list[str]:
    """The connectors to run: the ones named (each must be enabled), or every runnable one."""
    if not wanted:
        return runnable_connectors(hub)
    for name in wanted:
        status = connector_status(hub, name)
        if not status.enabled:
            raise ConfigError(
                f"connector '{name}' is not enabled; enable it with `evi connectors enable {name}`"
            )
        if status.paused:
            raise ConfigError(
                f"connector '{name}' is paused after repeated failures; fix the cause shown by "
                f"`evi connectors list`, then `evi connectors enable {name}`"
            )
    return list(dict.fromkeys(wanted))


def run_sync(hub: Hub, options: SyncOptions) -> SyncReport:
    with fewer_collections():
        return _run_sync(hub, options)


def _run_sync(hub: Hub, options: SyncOptions) -> SyncReport:
    names = selected_connectors(hub, options.connectors)
    report = SyncReport(dry_run=options.dry_run)
    if not names:
        return report
    hub.keys  # noqa: B018 - fail early on a missing key, before anyone is asked for data
    run_id = correlation_id()
    shared = InboundRun()  # consent snapshots and routing facts, reused across connectors
    with ExitStack() as stack:
        connectors: dict[str, Connector] = {}
        for name in names:
            entry = report.get(name)
            try:
                connectors[name] = stack.enter_context(
                    build_connector(
                        hub, name, transport=options.transports.get(name), retry=options.retry
                    )
                )
            except ConnectorConfigError as exc:
                entry.status, entry.error = CONFIG_ERROR, exc.message
        runs = {} if options.dry_run else {n: _start_run(hub, n) for n in connectors}
        held = _lock_all(hub, connectors, report, stack)
        # Subscriptions first, for every connector: routing a record to "the parties on the
        # case" must not depend on the order the authorities are pulled in.
        for name in held:
            entry = report.get(name)
            _guarded(entry, _reconcile, hub, connectors[name], entry, options, shared)
        receivers = receiving(hub)
        pulling = [name for name in held if report.get(name).status == OK]
        helpers = _helpers(hub, options, connectors)
        if helpers:
            _pull_forked(hub, pulling, report, options, run_id, receivers, shared, helpers)
        else:
            for name in pulling:
                _pull(hub, connectors[name], report.get(name), options, run_id, receivers, shared)
        if options.deliver and not options.dry_run:
            if helpers:
                _deliver_forked(hub, connectors, report, options, shared, helpers)
            else:
                _deliver(hub, connectors, report, options, shared)
        if not options.dry_run:
            _finish_runs(hub, report, runs)
            new_checkpoint(hub)
    if options.dry_run:
        for entry in report.connectors:
            if entry.status == OK:
                entry.status = DRY_RUN
    hub.plugins.hook.evi_sync_finished(report=report, settings=hub.settings)
    return report


def _lock_all(
    hub: Hub, connectors: Mapping[str, Connector], report: SyncReport, stack: ExitStack
) -> list[str]:
    """Take each connector's sync lock for the rest of the run; returns the ones we hold."""
    held = []
    for name in connectors:
        try:
            stack.enter_context(connector_lock(hub.db, name))
        except LockHeldError as exc:
            entry = report.get(name)
            entry.status, entry.error = LOCKED, exc.message
        else:
            held.append(name)
    return held


def receiving(hub: Hub) -> dict[str, frozenset[str]]:
    """The categories each installed connector can deliver to its authority."""
    return {
        name: frozenset(c.value for c in entry.cls.receives)
        for name, entry in load_connectors(hub.plugins).items()
    }


def _guarded(entry: ConnectorReport, step: Callable[..., None], *args: Any) -> None:
    """Run one connector's step; its failure is reported on its line and stops no one else."""
    started = time.monotonic()
    try:
        step(*args)
    except ConnectorConfigError as exc:
        entry.status, entry.error = CONFIG_ERROR, exc.message
    except ConnectorError as exc:
        entry.status, entry.error = FAILED, exc.message
    finally:
        entry.duration_s += time.monotonic() - started


def _reconcile(
    hub: Hub,
    connector: Connector,
    entry: ConnectorReport,
    options: SyncOptions,
    shared: InboundRun,
) -> None:
    with hub.db.session(write_lock=True, dry_run=options.dry_run) as session:
        changes = reconcile(
            session,
            hub.keys,
            connector,
            datetime.now(UTC),
            actor=ACTOR,
            call_authority=not options.dry_run,
            cache=shared.snapshots,
        )
    entry.subscribed, entry.cancelled = changes.added, changes.cancelled


def _pull(
    hub: Hub,
    connector: Connector,
    entry: ConnectorReport,
    options: SyncOptions,
    run_id: str,
    receivers: Mapping[str, frozenset[str]],
    shared: InboundRun,
) -> None:
    counts = InboundCounts()
    try:
        _guarded(entry, _pull_all, hub, connector, counts, options, run_id, receivers, shared)
    finally:
        for name in ("pulled", "stored", "refused", "invalid", "unmapped", "queued", "denied"):
            setattr(entry, name, getattr(entry, name) + getattr(counts, name))
        entry.decisions = counts.decisions
        if counts.invalid and entry.status == OK:
            entry.status = PARTIAL
            entry.error = (
                f"{counts.invalid} record(s) did not fit the authority's schema or mapping and "
                "were refused (see `evi log search --action inbound_refused`)"
            )


def _pull_all(
    hub: Hub,
    connector: Connector,
    counts: InboundCounts,
    options: SyncOptions,
    run_id: str,
    receivers: Mapping[str, frozenset[str]],
    shared: InboundRun,
) -> None:
    name = connector.name
    with hub.db.session() as session:
        cursor = None if options.from_start else options.since or stored_cursor(session, name)
        subscriptions = subscribed_identities(session, hub.keys, name)
    inbound = InboundBatch(
        hub.keys,
        connector,
        hub.settings.routing,
        receivers,
        actor=ACTOR,
        correlation_id=run_id,
        run=shared,
    )

    def stored() -> None:
        if options.progress:
            options.progress(name, counts.pulled)

    pull_batches(
        hub.db,
        inbound,
        connector.pull(cursor, subscriptions),
        counts,
        dry_run=options.dry_run,
        stored=stored,
    )


def _helpers(hub: Hub, options: SyncOptions, connectors: Mapping[str, Connector]) -> int:
    """How many helper processes (hub.sync.fanout) this run may use at a time; 0 for none.

    Helpers are used for more than one connector reached over the network (an in-process
    sandbox lives in this process only), never for a dry run, and as many at a time as
    ``sync.helpers`` says (default: one per core)."""
    if len(connectors) < 2 or options.transports or options.dry_run or not fanout.available():
        return 0
    wanted = hub.settings.sync.helpers
    return os.cpu_count() or 1 if wanted is None else wanted


def _pull_forked(
    hub: Hub,
    names: list[str],
    report: SyncReport,
    options: SyncOptions,
    run_id: str,
    receivers: Mapping[str, frozenset[str]],
    shared: InboundRun,
    helpers: int,
) -> None:
    """Each connector's pull in a helper process of its own, ``helpers`` at a time; their
    reports replace ours."""

    def job(name: str) -> fanout.Job:
        def pull(send: fanout.Send) -> ConnectorReport:
            entry = report.get(name)
            child = replace(options, progress=lambda _name, pulled: send(pulled))
            with _built(hub, name, entry, options) as connector:
                if connector is not None:
                    _pull(hub, connector, entry, child, run_id, receivers, shared)
            return entry

        return pull

    def progress(index: int, pulled: Any) -> None:
        if options.progress:
            options.progress(names[index], int(pulled))

    entries = fanout.run_forked(
        [job(n) for n in names],
        progress,
        before_job=_in_helper(hub),
        at_once=helpers,
    )
    for entry in entries:
        report.replace(entry)


def _deliver_forked(
    hub: Hub,
    connectors: Mapping[str, Connector],
    report: SyncReport,
    options: SyncOptions,
    shared: InboundRun,
    at_most: int,
) -> None:
    """The deliveries in up to ``at_most`` helper processes that split the queue by person
    (so each person's transfers to an authority still go one after the other)."""
    usable = [n for n in connectors if report.get(n).status != CONFIG_ERROR]
    helpers = max(1, min(len(usable), at_most))

    def job(share: int) -> fanout.Job:
        def deliver(_send: fanout.Send) -> tuple[dict[str, DeliveryCounts], float]:
            started = time.monotonic()
            with ExitStack() as stack:
                built = {}
                for name in usable:
                    entry = ConnectorReport(connector=name)
                    connector = stack.enter_context(_built(hub, name, entry, options))
                    if connector is not None:
                        built[name] = connector
                deliverer = _deliverer(hub, built, options, shared, share=(share, helpers))
                counts = deliverer.run()
            return counts, time.monotonic() - started

        return deliver

    done = fanout.run_forked(
        [job(k) for k in range(helpers)],
        before_job=_in_helper(hub),
        at_once=helpers,
    )
    for counts, _seconds in done:
        for name, delivered in counts.items():
            _add_deliveries(report.get(name), delivered)
    elapsed = max((seconds for _, seconds in done), default=0.0)
    for name in usable:
        report.get(name).duration_s += elapsed / max(len(usable), 1)


def _in_helper(hub: Hub) -> Callable[[], None]:
    """What a helper process does first: its own database connections, smaller caches."""
    return partial(hub.db.after_fork, page_cache_kib=HELPER_PAGE_CACHE_KIB)


@contextmanager
def _built(
    hub: Hub, name: str, entry: ConnectorReport, options: SyncOptions
) -> Iterator[Connector | None]:
    """The connector, built afresh in a helper (the parent's holds the parent's sockets);
    ``None``, with the reason on ``entry``, if it cannot be."""
    try:
        connector = build_connector(hub, name, retry=options.retry)
    except ConnectorConfigError as exc:
        entry.status, entry.error = CONFIG_ERROR, exc.message
        yield None
        return
    with connector:
        yield connector


def _deliverer(
    hub: Hub,
    connectors: Mapping[str, Connector],
    options: SyncOptions,
    shared: InboundRun,
    share: tuple[int, int] | None = None,
) -> Deliverer:
    return Deliverer(
        hub,
        connectors,
        actor=ACTOR,
        max_attempts=hub.settings.sync.max_attempts,
        lease=options.lease,
        snapshots=shared.snapshots,
        share=share,
    )


def _add_deliveries(entry: ConnectorReport, counts: DeliveryCounts) -> None:
    entry.delivered += counts.delivered
    entry.denied += counts.denied
    entry.retried += counts.retried
    entry.dead_lettered += counts.dead_lettered
    if counts.errors and entry.status == OK:
        entry.status, entry.error = FAILED, counts.errors[0]


def _deliver(
    hub: Hub,
    connectors: Mapping[str, Connector],
    report: SyncReport,
    options: SyncOptions,
    shared: InboundRun,
) -> None:
    usable = {n: c for n, c in connectors.items() if report.get(n).status != CONFIG_ERROR}
    started = time.monotonic()
    for name, counts in _deliverer(hub, usable, options, shared).run().items():
        _add_deliveries(report.get(name), counts)
    elapsed = time.monotonic() - started
    for entry in report.connectors:
        entry.duration_s += elapsed / max(len(usable), 1)


def _start_run(hub: Hub, name: str) -> int:
    with hub.db.session() as session:
        row = SyncRun(connector=name, started_at=datetime.now(UTC), status="running", counts={})
        session.add(row)
        session.flush()
        return row.id


def _finish_runs(hub: Hub, report: SyncReport, runs: Mapping[str, int]) -> None:
    now = datetime.now(UTC)
    pause_after = hub.settings.sync.pause_after_failures
    with hub.db.session(write_lock=True) as session:
        for entry in report.connectors:
            run_id = runs.get(entry.connector)
            if run_id is not None:
                row = session.get(SyncRun, run_id)
                if row is not None:
                    row.finished_at = now
                    row.status = entry.status
                    row.counts = entry.counts()
                    row.error = entry.error
            if entry.status == LOCKED:
                continue  # the run holding the lock reports for this connector
            status = STATUS_FAILED if entry.status in (FAILED, CONFIG_ERROR) else entry.status
            paused = record_sync_result(
                session, entry.connector, status, now, error=entry.error, pause_after=pause_after
            )
            if paused and status == STATUS_FAILED:
                entry.error = (entry.error or "failed") + (
                    f" (paused after {pause_after} failed runs in a row; "
                    f"`evi connectors enable {entry.connector}` resumes it)"
                )
