"""The two phases of a sync run for its connectors: pulling (each connector's records
read, prepared and stored) and delivering (every due transfer gated again and pushed),
either in the `evi sync` process or spread over helper processes (:mod:`hub.sync.fanout`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from hub.connector.base import Connector
from hub.connector.errors import ConnectorConfigError
from hub.connector.service import build_connector
from hub.context import Hub
from hub.sync import fanout
from hub.sync.batch import InboundCounts, InboundRun
from hub.sync.delivery import Deliverer, DeliveryCounts
from hub.sync.inbound import InboundBatch, cursor_written_at, mark_caught_up, stored_cursor
from hub.sync.options import ACTOR, SyncOptions, guarded
from hub.sync.pull import pull_batches
from hub.sync.report import (
    CONFIG_ERROR,
    FAILED,
    LOCKED,
    OK,
    PARTIAL,
    ConnectorReport,
    SyncReport,
)
from hub.sync.subscriptions import subscribed_identities

NOT_DELIVERING = (CONFIG_ERROR, LOCKED)
"""Connectors a run sends nothing to: one it cannot build, and one another run is syncing
(that run delivers to it; this one, answering 3, must not have done anything)."""

HELPER_PAGE_CACHE_KIB = 16_384
"""SQLite page cache of each helper process's connections (measured: a 100,000-record
sync no faster with 64 MB each; at 1M records 64 MB each made every helper 48 MB bigger)."""


def pull(
    hub: Hub,
    connector: Connector,
    entry: ConnectorReport,
    options: SyncOptions,
    run_id: str,
    receivers: Mapping[str, frozenset[str]],
    shared: InboundRun,
) -> None:
    """One connector's pull, in this process; its counts and outcome go on ``entry``."""
    counts = InboundCounts()
    try:
        guarded(entry, _pull_all, hub, connector, counts, options, run_id, receivers, shared)
    finally:
        for name in ("pulled", "stored", "refused", "invalid", "unmapped", "queued", "denied"):
            setattr(entry, name, getattr(entry, name) + getattr(counts, name))
        entry.decisions = counts.decisions
        if counts.invalid and entry.status == OK:
            entry.status = PARTIAL
            found = (  # a dry run logs nothing: the next real run will
                "the next run logs each"
                if options.dry_run
                else "see `evi log search --action inbound_refused`"
            )
            entry.error = (
                f"{counts.invalid} record(s) did not fit the authority's schema or mapping and "
                f"were refused ({found})"
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
    started = datetime.now(UTC)
    with hub.db.session() as session:
        cursor = None if options.from_start else options.since or stored_cursor(session, name)
        subscriptions = subscribed_identities(session, hub.keys, name)
        written = cursor_written_at(session, name)
        newcomers = (
            subscribed_identities(session, hub.keys, name, since=written)
            if connector.searches_people and written is not None and not options.from_start
            else []
        )
    inbound = partial(
        InboundBatch,
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
        if options.keep_locks:
            options.keep_locks()

    if newcomers:
        # An authority searched by person returns only the people named, from the cursor
        # on: a person followed since the cursor last moved is read from the start first,
        # without moving it, or their records from before would never be read.
        pull_batches(
            hub.db,
            inbound(moves_cursor=False),
            connector.pull(None, newcomers),
            counts,
            dry_run=options.dry_run,
            stored=stored,
        )
        if not options.dry_run:
            with hub.db.session(write_lock=True) as session:
                mark_caught_up(session, name, started)
    pull_batches(
        hub.db,
        inbound(),
        connector.pull(cursor, subscriptions),
        counts,
        dry_run=options.dry_run,
        stored=stored,
    )


def helpers_for(hub: Hub, options: SyncOptions, connectors: Mapping[str, Connector]) -> int:
    """How many helper processes (hub.sync.fanout) this run may use at a time; 0 for none.

    Helpers are used for more than one connector reached over the network (an in-process
    sandbox lives in this process only), never for a dry run, and as many at a time as
    ``sync.helpers`` says (default: one per core)."""
    if len(connectors) < 2 or options.transports or options.dry_run or not fanout.available():
        return 0
    wanted = hub.settings.sync.helpers
    return (os.cpu_count() or 1) if wanted is None else wanted


def pull_forked(
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
        def pull_one(send: fanout.Send) -> ConnectorReport:
            entry = report.get(name)
            # the parent renews the locks while it waits for its helpers
            child = replace(options, progress=lambda _name, pulled: send(pulled), keep_locks=None)
            with _built(hub, name, entry, options) as connector:
                if connector is not None:
                    pull(hub, connector, entry, child, run_id, receivers, shared)
            return entry

        return pull_one

    def progress(index: int, pulled: Any) -> None:
        if options.progress:
            options.progress(names[index], int(pulled))

    entries = fanout.run_forked(
        [job(n) for n in names],
        progress,
        before_job=_in_helper(hub),
        at_once=helpers,
        idle=options.keep_locks,
    )
    for entry in entries:
        report.replace(entry)


def deliver_forked(
    hub: Hub,
    connectors: Mapping[str, Connector],
    report: SyncReport,
    options: SyncOptions,
    shared: InboundRun,
    at_most: int,
) -> None:
    """The deliveries in up to ``at_most`` helper processes that split the queue by person
    (so each person's transfers to an authority still go one after the other)."""
    usable = [n for n in connectors if report.get(n).status not in NOT_DELIVERING]
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
                deliverer = _deliverer(
                    hub, built, options, shared, share=(share, helpers), tick=None
                )
                counts = deliverer.run()
            return counts, time.monotonic() - started

        return deliver

    done = fanout.run_forked(
        [job(k) for k in range(helpers)],
        before_job=_in_helper(hub),
        at_once=helpers,
        idle=options.keep_locks,
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
    *,
    tick: Callable[[], None] | None,
) -> Deliverer:
    return Deliverer(
        hub,
        connectors,
        actor=ACTOR,
        max_attempts=hub.settings.sync.max_attempts,
        lease=options.lease,
        snapshots=shared.snapshots,
        share=share,
        between_rounds=tick,
    )


def _add_deliveries(entry: ConnectorReport, counts: DeliveryCounts) -> None:
    entry.delivered += counts.delivered
    entry.denied += counts.denied
    entry.retried += counts.retried
    entry.dead_lettered += counts.dead_lettered
    if counts.errors and entry.status == OK:
        entry.status, entry.error = FAILED, counts.errors[0]


def deliver(
    hub: Hub,
    connectors: Mapping[str, Connector],
    report: SyncReport,
    options: SyncOptions,
    shared: InboundRun,
) -> None:
    usable = {n: c for n, c in connectors.items() if report.get(n).status not in NOT_DELIVERING}
    started = time.monotonic()
    deliverer = _deliverer(hub, usable, options, shared, tick=options.keep_locks)
    for name, counts in deliverer.run().items():
        _add_deliveries(report.get(name), counts)
    elapsed = time.monotonic() - started
    for entry in report.connectors:
        entry.duration_s += elapsed / max(len(usable), 1)
