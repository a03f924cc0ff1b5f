"""Helpers for the sync tests: a demo home with small in-process sandboxes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from hub.connector.base import Connector
from hub.connector.retry import RetryPolicy
from hub.context import Hub
from hub.demo.run import DemoOptions, run_demo
from hub.demo.sandboxes import SandboxTarget, sandbox_client, sandbox_targets, transports
from hub.model.records import NativeRecord
from hub.store.base import Base
from hub.store.db import Database
from hub.sync.batch import InboundCounts
from hub.sync.inbound import InboundBatch
from hub.sync.job import receiving
from hub.sync.lock import SyncLocks
from hub.sync.options import SyncOptions

SEED = 7
POPULATION = 40
NO_WAIT = RetryPolicy(attempts=2, initial_wait=0, max_wait=0, sleep=lambda _s: None)


def setup_demo(hub: Hub) -> dict[str, SandboxTarget]:
    run_demo(hub, DemoOptions(seed=SEED, setup_only=True, population=POPULATION), lambda _s: None)
    return sandbox_targets(hub, SEED, {}, POPULATION)


def sync_options(targets: dict[str, SandboxTarget], **kwargs: Any) -> SyncOptions:
    return SyncOptions(transports=transports(targets), retry=NO_WAIT, **kwargs)


@contextmanager
def bench(target: SandboxTarget) -> Iterator[httpx.Client]:
    with sandbox_client(target) as client:
        yield client


def received(target: SandboxTarget) -> dict[str, Any]:
    with bench(target) as client:
        answer = client.get("/_sandbox/received")
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data


def knobs(target: SandboxTarget, **changes: Any) -> None:
    with bench(target) as client:
        client.patch("/_sandbox/knobs", json=changes).raise_for_status()


def count(hub: Hub, table: type[Base], *where: Any) -> int:
    with hub.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def inbound_batch(hub: Hub, connector: Connector) -> InboundBatch:
    """Batches of ``connector``'s records as a test run stores them."""
    return InboundBatch(
        hub.keys,
        connector,
        hub.settings.routing,
        receiving(hub),
        actor="test",
        correlation_id="test-run",
    )


def a_day_earlier(native: NativeRecord) -> NativeRecord:
    """The same municipality record with its date a day earlier: a new version of it."""
    field = next(
        f
        for f in ("remissdatum", "beslutFran", "startdatum", "avslutsdatum")
        if f in native.payload
    )
    moved = (date.fromisoformat(native.payload[field]) - timedelta(days=1)).isoformat()
    return native.model_copy(update={"payload": {**native.payload, field: moved}})


def pulled(demo: Hub, connector: Connector) -> list[NativeRecord]:
    """Everything ``connector`` (kommun's) has about the people subscribed with it."""
    from hub.sync.subscriptions import subscribed_identities

    with demo.db.session() as session:
        return list(connector.pull(None, subscribed_identities(session, demo.keys, "kommun")))


def stored_night(demo: Hub, connector: Connector, natives: list[NativeRecord]) -> InboundCounts:
    """``natives`` stored (and routed) as one batch of a night."""
    counts = InboundCounts()
    with demo.db.session(write_lock=True) as session:
        inbound_batch(demo, connector).run(session, natives, counts)
    return counts


def routed_record(demo: Hub, connector: Connector) -> tuple[NativeRecord, int]:
    """A kommun record the night routed to someone, as pulled, and its stored id."""
    from hub.store.tables.sync import OutboxItem, StoredRecord

    natives = pulled(demo, connector)
    with demo.db.session() as session:
        routed = set(session.scalars(select(OutboxItem.record_id)))
        stored = dict(
            session.execute(
                select(StoredRecord.source_id, StoredRecord.id).where(
                    StoredRecord.source == "kommun", StoredRecord.id.in_(routed)
                )
            ).all()
        )
    native = next(n for n in natives if n.source_id in stored)
    return native, stored[native.source_id]


@contextmanager
def connector_lock(db: Database, connector: str) -> Iterator[None]:
    """Hold ``connector``'s sync lock for the block, as a running sync would."""
    locks = SyncLocks(db)
    locks.take(connector)
    try:
        yield
    finally:
        locks.release()
