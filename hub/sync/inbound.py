"""The inbound half of a sync: pull → map → gate (origin → joint team) → store → route.

Records are handled in batches, each in two steps (:class:`InboundBatch`):

1. **prepare**, reading only: map the records, look their people up, ask the gate with
   each person's current consents, work out who should know, and encode the ledger
   entries of every decision and refusal (:mod:`hub.sync.prepare`, giving a
   :class:`~hub.sync.batch.PreparedBatch`).
2. **store**, one write transaction: check that nobody's consents changed since step 1
   (``participant.consent_revision`` is bumped in the same transaction as every consent,
   withdrawal or block), then insert and update the records, queue the outbox rows,
   append the prepared ledger entries and move the cursor past the batch. If someone's
   consents did change, or a person refused for lack of consent has since been
   registered, step 1 is done again inside this transaction before storing. Either way
   every decision stored is the gate's answer on the consents as committed when the
   batch is.

Only step 2 holds the database's write lock, so several processes (one per connector,
see :mod:`hub.sync.fanout`) can share one database. A crash loses at most the
uncommitted batch, which the next run reads again (cursors are inclusive and records are
upserted by source id, so that is harmless).

What one batch learns and the next can reuse lives in an
:class:`~hub.sync.batch.InboundRun`: the
people's gate snapshots (reloaded for anyone whose consents changed, see
:class:`~hub.consent.snapshots.SnapshotCache`) and the routing facts. Both are bounded by
the people a run sees, not by its records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.errors import StorageError
from hub.keys import KeyRing
from hub.ledger.writer import append_prepared
from hub.model.records import NativeRecord
from hub.settings import RoutingRule
from hub.store.bulk import (
    execute_in,
    insert_outbox,
    insert_records,
    rows_in,
    time_binder,
    update_records,
    upsert_cursor,
)
from hub.store.tables.sync import SyncCursor
from hub.sync.batch import InboundCounts, InboundRun, PreparedBatch, existing_records
from hub.sync.outbox import PENDING
from hub.sync.prepare import Preparation

BATCH_SIZE = 2000
_ATTEMPTS = 5


class InboundBatch:
    """Prepares and stores batches of one connector's native records.

    Everything per batch is done in bulk: one lookup of the people, their snapshots from
    the run's cache, one lookup of already stored records, one insert and one update of
    records, one insert of outbox rows, one ledger append for all the batch's decisions
    and refusals. Each decision still comes from the one gate,
    :func:`hub.consent.gate.decide`, and is logged like any other.
    """

    def __init__(
        self,
        keys: KeyRing,
        connector: Connector,
        rules: Sequence[RoutingRule],
        receivers: Mapping[str, frozenset[str]],
        *,
        actor: str,
        correlation_id: str,
        run: InboundRun | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        moves_cursor: bool = True,
    ) -> None:
        self.keys = keys
        self.connector = connector
        self.rules = rules
        self.receivers = receivers
        self.actor = actor
        self.correlation_id = correlation_id
        self.run_state = run or InboundRun()
        self.clock = clock
        self.moves_cursor = moves_cursor  # False: a catch-up read from the start

    def run(self, session: Session, natives: Sequence[NativeRecord], counts: InboundCounts) -> None:
        """Prepare and store one batch in ``session``'s (write) transaction.

        On SQLite the write lock keeps every consent as it is meanwhile; on PostgreSQL
        each statement sees what others committed, so a consent that changes between the
        two steps makes them run again (a few times at most).
        """
        for _ in range(_ATTEMPTS):
            if self.store(session, self.prepare(session, natives), counts):
                return
        raise StorageError(
            "the consents of the people in a batch kept changing while it was stored; "
            "nothing of it was written, run `evi sync` again"
        )

    def prepare(self, session: Session, natives: Sequence[NativeRecord]) -> PreparedBatch:
        """Step 1: decide and encode everything ``natives`` will write. Only reads."""
        return Preparation(self, session).prepare(natives)

    def store(self, session: Session, batch: PreparedBatch, counts: InboundCounts) -> bool:
        """Step 2, in ``session``'s write transaction: write ``batch`` and add its counts.

        Returns ``False``, having written nothing, if a consent changed since ``batch`` was
        prepared; prepare it again in this transaction and store that.
        """
        connection = session.connection()
        if not _still_current(session, batch):
            return False
        execute_in(
            connection,
            "UPDATE participant SET protected_identity = ? WHERE id IN ({marks})",
            batch.protect,
            (True,),
        )
        fresh = [r for r in batch.records if r.id is None]
        update_records(connection, [(*r.row, r.id) for r in batch.records if r.id is not None])
        insert_records(connection, [r.row for r in fresh])
        if fresh:
            ids = existing_records(session, self.connector.name, [r.source_id for r in fresh])
            for record in fresh:
                record.id = ids[record.source_id][0]
        when = time_binder(connection.dialect)(self.clock())
        queued = (PENDING, 0, when, when)  # status, attempts, next_attempt_at, created_at
        insert_outbox(
            connection,
            [
                (key, r.id, r.participant_id, r.source, to, purpose, r.category, *queued)
                for r, key, to, purpose in batch.queued
            ],
        )
        append_prepared(session, batch.entries)
        if batch.cursor is not None and self.moves_cursor:
            upsert_cursor(connection, self.connector.name, batch.cursor, when)
        counts.add(batch.counts)
        return True


def _still_current(session: Session, batch: PreparedBatch) -> bool:
    """Whether the people ``batch`` decided about are as it read them (and the people it
    refused for lack of consent are still unknown)."""
    connection = session.connection()
    rows = rows_in(
        connection,
        "SELECT id, consent_revision, protected_identity FROM participant WHERE id IN ({marks})",
        sorted(batch.people),
    )
    if len(rows) != len(batch.people):
        return False
    for pid, revision, protected in rows:
        if batch.people[pid] != (revision, bool(protected)):
            return False
    return not rows_in(
        connection,
        "SELECT id FROM participant WHERE pnr_lookup IN ({marks})",
        sorted(set(batch.unknown)),
    )


def stored_cursor(session: Session, connector: str) -> str | None:
    row = session.get(SyncCursor, connector)
    return row.cursor if row else None


def cursor_written_at(session: Session, connector: str) -> datetime | None:
    """When ``connector``'s cursor last moved, or its newly followed people were last read
    from the start (:func:`mark_caught_up`); ``None`` before its first stored batch."""
    row = session.get(SyncCursor, connector)
    return row.updated_at if row else None


def mark_caught_up(session: Session, connector: str, when: datetime) -> None:
    """The people followed before ``when`` have been read from the start: the next run's
    newcomers are those registered after it (the cursor itself does not move)."""
    session.execute(
        update(SyncCursor).where(SyncCursor.connector == connector).values(updated_at=when)
    )


def correlation_id() -> str:
    return "sync-" + hashlib.sha256(datetime.now(UTC).isoformat().encode()).hexdigest()[:16]
