"""`evi sync`: run every enabled connector's pull, then deliver what is due.

One connector's failure never stops the others: each is pulled under its own database
lock and reported on its own. The run ends with a signed ledger checkpoint, a row per
connector in ``sync_run`` (for `evi sync history`) and the ``evi_sync_finished`` hook.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import update

from hub.connector.base import Connector
from hub.connector.errors import ConnectorConfigError
from hub.connector.registry import known_parties, load_connectors
from hub.connector.service import (
    STATUS_FAILED,
    build_connector,
    connector_status,
    list_connectors,
    record_sync_result,
    runnable_connectors,
)
from hub.context import Hub
from hub.errors import ConfigError, EviError, LockHeldError, NotFoundError, StorageError
from hub.ledger.service import check_signing, new_checkpoint
from hub.store.tables.sync import SyncRun
from hub.sync.batch import InboundRun
from hub.sync.gcpolicy import fewer_collections
from hub.sync.inbound import correlation_id
from hub.sync.lock import SyncLocks
from hub.sync.options import ACTOR, SyncOptions, guarded, unexpected
from hub.sync.phases import deliver, deliver_forked, helpers_for, pull, pull_forked
from hub.sync.report import (
    CONFIG_ERROR,
    DRY_RUN,
    FAILED,
    INTERRUPTED,
    LOCKED,
    OK,
    PARTIAL,
    PAUSED,
    ConnectorReport,
    SyncReport,
)
from hub.sync.routing import check_rules
from hub.sync.subscriptions import load_before_reconcile, reconcile

log = logging.getLogger(__name__)


def selected_connectors(hub: Hub, wanted: list[str] | None) -> list[str]:
    """The connectors to run: the ones named (each must be enabled), or every runnable one."""
    if not wanted:
        return runnable_connectors(hub)
    _check_named(hub, wanted)
    return list(dict.fromkeys(wanted))


def paused_connectors(hub: Hub) -> list[ConnectorReport]:
    """Report lines for the enabled connectors that are paused: a nightly run that skips
    one must not look like a night where everything went through."""
    return [
        ConnectorReport(
            connector=s.name,
            status=PAUSED,
            error=(
                f"paused after repeated failures (last: {s.last_error or s.status}); fix the "
                f"cause, then `evi connectors enable {s.name}`"
            ),
        )
        for s in list_connectors(hub)
        if s.enabled and s.paused
    ]


def _check_named(hub: Hub, wanted: list[str]) -> None:
    for name in wanted:
        try:
            status = connector_status(hub, name)
        except NotFoundError as exc:  # a wrong name in the job's command line: exit code 2
            raise ConfigError(exc.message) from None
        if not status.enabled:
            raise ConfigError(
                f"connector '{name}' is not enabled; enable it with `evi connectors enable {name}`"
            )
        if status.paused:
            raise ConfigError(
                f"connector '{name}' is paused after repeated failures; fix the cause (its last "
                f"error: `evi connectors show {name}`), then `evi connectors enable {name}`"
            )


def run_sync(hub: Hub, options: SyncOptions) -> SyncReport:
    with fewer_collections():
        return _run_sync(hub, options)


def _run_sync(hub: Hub, options: SyncOptions) -> SyncReport:
    names = selected_connectors(hub, options.connectors)
    report = SyncReport(dry_run=options.dry_run)
    if not options.connectors:
        report.connectors.extend(paused_connectors(hub))
        if not options.dry_run:
            _record_paused(hub, report)
    if not names:  # nothing to run; the plugins still hear of it (all paused is an alert)
        hub.plugins.hook.evi_sync_finished(report=report, settings=hub.settings)
        return report
    hub.keys  # noqa: B018 - fail early on a missing key, before anyone is asked for data
    check_signing(hub)  # and on an origin or signing key the closing checkpoint would refuse
    check_rules(hub.settings.routing, known_parties(hub.plugins))  # and on a misspelt party
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
            except EviError:
                raise
            except Exception as exc:  # a fault in the connector's code: it fails alone
                entry.status, entry.error = FAILED, unexpected(name, exc)
        runs = {} if options.dry_run else {n: _start_run(hub, n) for n in names}
        try:
            locks = _lock_all(hub, connectors, report, stack)
            held = list(locks.held)
            _close_interrupted(hub, {name: runs[name] for name in held if name in runs})
            options = replace(options, keep_locks=locks.keep)
            # Subscriptions first, for every connector: routing a record to "the parties on
            # the case" must not depend on the order the authorities are pulled in.
            if held:
                with hub.db.session() as session:  # read, before the reconciles' write locks
                    load_before_reconcile(session, held, datetime.now(UTC), shared.snapshots)
            for name in held:
                locks.keep()
                entry = report.get(name)
                guarded(entry, _reconcile, hub, connectors[name], entry, options, shared)
            receivers = receiving(hub)
            pulling = [name for name in held if report.get(name).status == OK]
            helpers = helpers_for(hub, options, connectors)
            if helpers:
                pull_forked(hub, pulling, report, options, run_id, receivers, shared, helpers)
            else:
                for name in pulling:
                    entry = report.get(name)
                    pull(hub, connectors[name], entry, options, run_id, receivers, shared)
            if options.deliver and not options.dry_run:
                if helpers:
                    deliver_forked(hub, connectors, report, options, shared, helpers)
                else:
                    deliver(hub, connectors, report, options, shared)
        except Exception as exc:
            _finish_stopped_runs(hub, report, runs, exc)
            raise
        if not options.dry_run:
            _finish_runs(hub, report, runs, by_hand=options.since is not None)
            new_checkpoint(hub)
    if options.dry_run:
        for entry in report.connectors:
            if entry.status == OK:
                entry.status = DRY_RUN
    hub.plugins.hook.evi_sync_finished(report=report, settings=hub.settings)
    return report


def _lock_all(
    hub: Hub, connectors: Mapping[str, Connector], report: SyncReport, stack: ExitStack
) -> SyncLocks:
    """Take each connector's sync lock for the rest of the run (renewed as it goes, and
    released when ``stack`` closes); the locks held, to keep."""
    locks = SyncLocks(hub.db)
    stack.callback(locks.release)
    for name in connectors:
        try:
            locks.take(name)
        except LockHeldError as exc:
            entry = report.get(name)
            entry.status, entry.error = LOCKED, exc.message
    return locks


def receiving(hub: Hub) -> dict[str, frozenset[str]]:
    """The categories each installed connector can deliver to its authority."""
    return {
        name: frozenset(c.value for c in entry.cls.receives)
        for name, entry in load_connectors(hub.plugins).items()
    }


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


def _record_paused(hub: Hub, report: SyncReport) -> None:
    """A night that skips a paused connector is in `evi sync history` as such, with the
    failure that paused it, so the history shows no gap where nights were missed."""
    now = datetime.now(UTC)
    with hub.db.session() as session:
        for entry in report.connectors:
            if entry.status == PAUSED:
                session.add(
                    SyncRun(
                        connector=entry.connector,
                        started_at=now,
                        finished_at=now,
                        status=PAUSED,
                        counts=entry.counts(),
                        error=entry.error,
                    )
                )


def _start_run(hub: Hub, name: str) -> int:
    with hub.db.session() as session:
        row = SyncRun(connector=name, started_at=datetime.now(UTC), status="running", counts={})
        session.add(row)
        session.flush()
        return row.id


INTERRUPTED_REASON = (
    "stopped before it could record its end (the process was killed, or the database could "
    "not be written); what it stored is kept, and the next run went on from its cursor"
)


def _close_interrupted(hub: Hub, current: Mapping[str, int]) -> None:
    """Mark the rows of earlier runs that never recorded their end ``interrupted``.

    Called holding each connector's lock, so no earlier run of it can still be going.
    Their end is not known, so ``finished_at`` stays empty and their counts are what
    they recorded (nothing); without this they read "interrupted_or_running" for good.
    """
    if not current:
        return
    with hub.db.session(write_lock=True) as session:
        for name, run_id in current.items():
            session.execute(
                update(SyncRun)
                .where(
                    SyncRun.connector == name,
                    SyncRun.id < run_id,
                    SyncRun.finished_at.is_(None),
                    SyncRun.status == "running",
                )
                .values(status=INTERRUPTED, error=INTERRUPTED_REASON)
            )


def _finish_stopped_runs(
    hub: Hub, report: SyncReport, runs: Mapping[str, int], exc: Exception
) -> None:
    """An exception none of the connectors' guards caught (a fault in a step they share,
    such as delivery) stops the run: the connectors still going are failed with its type,
    and every run's row is finished, so `evi sync history` and pausing see the night.
    Best effort: the exception is raised again either way."""
    for entry in report.connectors:
        if entry.connector in runs and entry.status in (OK, PARTIAL):
            entry.status, entry.error = FAILED, unexpected(entry.connector, exc)
            entry.database_failed = isinstance(exc, StorageError)
    if runs:
        try:
            _finish_runs(hub, report, runs)
        except Exception as failure:
            log.error("the stopped run could not be recorded: %s", type(failure).__name__)


def _finish_runs(
    hub: Hub, report: SyncReport, runs: Mapping[str, int], *, by_hand: bool = False
) -> None:
    """Finish each run's row and count the night towards pausing. ``by_hand``: a cursor
    was given (``--since``), so a configuration error is most likely that cursor, answered
    on the spot (exit 2), and is not a failed night. Nor is a run that failed on the hub's
    own database (a PostgreSQL restart or fail-over, a full disk): it says nothing about
    the authority, and a maintenance window that meets the nightly sync three nights
    running would otherwise pause every connector."""
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
            if entry.status in (LOCKED, PAUSED):
                continue  # the run holding the lock reports for it; a paused one did not run
            if by_hand and entry.status == CONFIG_ERROR:
                continue
            status = STATUS_FAILED if entry.status in (FAILED, CONFIG_ERROR) else entry.status
            paused = record_sync_result(
                session,
                entry.connector,
                status,
                now,
                error=entry.error,
                pause_after=pause_after,
                counted=not entry.database_failed,
            )
            if paused and status == STATUS_FAILED:
                entry.error = (entry.error or "failed") + (
                    f" (paused after {pause_after} failed runs in a row; "
                    f"`evi connectors enable {entry.connector}` resumes it)"
                )
