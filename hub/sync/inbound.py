"""The inbound half of a sync: pull → map → gate (origin → joint team) → store → route.

Records are handled in batches, each in two steps (:class:`InboundBatch`):

1. **prepare**, reading only: map the records, look their people up, ask the gate with
   each person's current consents, work out who should know, and encode the ledger
   entries of every decision and refusal (:class:`PreparedBatch`).
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

What one batch learns and the next can reuse lives in an :class:`InboundRun`: the
people's gate snapshots (reloaded for anyone whose consents changed, see
:class:`~hub.consent.snapshots.SnapshotCache`) and the routing facts. Both are bounded by
the people a run sees, not by its records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.connector.errors import InvalidRecordError, UnmappedCodeError
from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event
from hub.consent.gate import Decision, Snapshot
from hub.consent.snapshots import SnapshotCache
from hub.keys import KeyRing
from hub.ledger.event import Action, LedgerEvent, Outcome
from hub.ledger.writer import PreparedEntries, append_prepared, prepare_entries
from hub.model.canonical import canonical_json
from hub.model.records import CommonRecord, NativeRecord
from hub.model.vocab import JOINT_TEAM, Purpose
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
from hub.sync.outbox import PENDING
from hub.sync.routing import RoutingCache, idempotency_key, recipients

BATCH_SIZE = 2000


@dataclass
class InboundCounts:
    pulled: int = 0
    stored: int = 0
    refused: int = 0
    invalid: int = 0
    unmapped: int = 0
    queued: int = 0
    denied: int = 0
    decisions: dict[str, int] = field(default_factory=dict)

    def tally(self, decision: str, reason: str) -> None:
        key = f"{decision}:{reason}"
        self.decisions[key] = self.decisions.get(key, 0) + 1

    def add(self, other: InboundCounts) -> None:
        for name in ("pulled", "stored", "refused", "invalid", "unmapped", "queued", "denied"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, n in other.decisions.items():
            self.decisions[key] = self.decisions.get(key, 0) + n


@dataclass
class InboundRun:
    """What the batches of one run share (see the module docstring)."""

    snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    routing: RoutingCache = field(default_factory=RoutingCache)


class _Person(NamedTuple):
    """The participant columns a batch needs (no ORM object per person)."""

    id: int
    pnr_lookup: str
    pseudonym: str
    protected_identity: bool
    consent_revision: int


@dataclass(slots=True)
class _Record:
    """A record to insert or update in this batch, and route afterwards."""

    id: int | None
    source: str
    source_id: str
    participant_id: int
    kind: str
    category: str
    payload_sha256: str
    restricted: bool
    body: dict[str, Any]
    row: tuple[Any, ...]  # the record's columns, in RECORD_COLUMNS order


@dataclass
class PreparedBatch:
    """Everything a batch will write, worked out before the write transaction."""

    counts: InboundCounts
    cursor: str | None
    people: dict[int, tuple[int, bool]]  # id -> (consent_revision, protected) as decided on
    unknown: list[str]  # lookup digests of people refused for lack of consent
    protect: list[int]  # people an authority reported as having a protected identity
    records: list[_Record]
    queued: list[tuple[_Record, str, str, str]]  # (record, key, recipient, purpose)
    entries: PreparedEntries


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
    ) -> None:
        self.keys = keys
        self.connector = connector
        self.rules = rules
        self.receivers = receivers
        self.actor = actor
        self.correlation_id = correlation_id
        self.run_state = run or InboundRun()
        self.clock = clock

    def run(self, session: Session, natives: Sequence[NativeRecord], counts: InboundCounts) -> None:
        """Prepare and store one batch in ``session``'s (write) transaction."""
        stored = self.store(session, self.prepare(session, natives), counts)
        assert stored, "nothing can change between the steps of one write transaction"

    def prepare(self, session: Session, natives: Sequence[NativeRecord]) -> PreparedBatch:
        """Step 1: decide and encode everything ``natives`` will write. Only reads."""
        return _Preparation(self, session).prepare(natives)

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
            ids = _existing(session, self.connector.name, [r.source_id for r in fresh])
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
        if batch.cursor is not None:
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


def _existing(
    session: Session, source: str, source_ids: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """``source_id → (id, payload_sha256)`` of ``source``'s records already stored."""
    rows = rows_in(
        session.connection(),
        "SELECT source_id, id, payload_sha256 FROM record "
        "WHERE source = ? AND source_id IN ({marks})",
        sorted(set(source_ids)),
        (source,),
    )
    return {source_id: (record_id, digest) for source_id, record_id, digest in rows}


class _Preparation:
    """Step 1 for one batch: the decisions, rows and ledger entries it will write."""

    def __init__(self, batch: InboundBatch, session: Session) -> None:
        self.batch = batch
        self.session = session
        self.connector = batch.connector
        self.run_state = batch.run_state
        self.counts = InboundCounts()
        self.now = batch.clock()
        self._time = time_binder(session.get_bind().dialect)
        self._stored_at = self._time(self.now)
        self._snapshots: dict[int, Snapshot] = {}
        self._events: list[LedgerEvent] = []
        self._stored: dict[str, tuple[int, str]] = {}
        self._pending: dict[str, _Record] = {}

    def prepare(self, natives: Sequence[NativeRecord]) -> PreparedBatch:
        mapped: list[tuple[NativeRecord, CommonRecord]] = []
        for native in natives:
            self.counts.pulled += 1
            common = self._map(native)
            if common is not None:
                mapped.append((native, common))
        lookup = self.batch.keys.lookup_digest
        digests = [lookup(c.person.number) for _, c in mapped]
        people = self._people(digests)
        decided_on = {p.id: (p.consent_revision, p.protected_identity) for p in people.values()}
        self._snapshots = self.run_state.snapshots.snapshots(self.session, list(people.values()))
        self._stored = _existing(
            self.session, self.connector.name, [c.source_id for _, c in mapped]
        )
        unknown: list[str] = []
        protect: list[int] = []
        for (native, common), digest in zip(mapped, digests, strict=True):
            person = people.get(digest)
            if person is None:
                unknown.append(digest)
                self._refuse(native, "no_consent")
                continue
            if common.protected_identity and not person.protected_identity:
                person = people[digest] = self._mark_protected(person)
                protect.append(person.id)
            self._admit(person, common)
        routing = self.run_state.routing
        routing.preload(self.session, {r.participant_id for r in self._pending.values()})
        for record in self._pending.values():
            if record.kind == "referral":
                routing.add_referral(record.participant_id, record.body)
        pseudonyms = {p.id: p.pseudonym for p in people.values()}
        queued: list[tuple[_Record, str, str, str]] = []
        for record in self._pending.values():
            queued.extend(self._route(pseudonyms[record.participant_id], record))
        queued = self._not_queued_before(queued)
        self.counts.queued += len(queued)
        return PreparedBatch(
            counts=self.counts,
            cursor=natives[-1].cursor if natives else None,
            people=decided_on,
            unknown=unknown,
            protect=protect,
            records=list(self._pending.values()),
            queued=queued,
            entries=prepare_entries(self._events),
        )

    def _map(self, native: NativeRecord) -> CommonRecord | None:
        try:
            common = self.connector.map(native)
        except UnmappedCodeError:
            self.counts.unmapped += 1
            self.counts.invalid += 1
            self._refuse(native, "unmapped_code")
            return None
        except InvalidRecordError as exc:
            self.counts.invalid += 1
            self._refuse(native, "invalid_record: " + "; ".join(exc.problems)[:300])
            return None
        if common.unmapped:
            self.counts.unmapped += 1
        return common

    def _people(self, digests: Sequence[str]) -> dict[str, _Person]:
        rows = rows_in(
            self.session.connection(),
            "SELECT id, pnr_lookup, pseudonym, protected_identity, consent_revision "
            "FROM participant WHERE pnr_lookup IN ({marks})",
            sorted(set(digests)),
        )
        return {row[1]: _Person(row[0], row[1], row[2], bool(row[3]), row[4]) for row in rows}

    def _mark_protected(self, person: _Person) -> _Person:
        """An authority reports a protected identity: gate with it from now (stored in step 2)."""
        marked = person._replace(protected_identity=True)
        self._snapshots.update(self.run_state.snapshots.snapshots(self.session, [marked]))
        return marked

    def _decide(self, pseudonym: str, participant_id: int, request: DecisionRequest) -> Decision:
        decision = gate.decide(
            self._snapshots[participant_id],
            request.origin,
            request.recipient,
            request.category,
            request.purpose,
            request.at,
            restricted_origin=request.restricted_origin,
        )
        self._events.append(
            decision_event(
                decision,
                pseudonym,
                request,
                actor=self.batch.actor,
                correlation_id=self.batch.correlation_id,
            )
        )
        self.counts.tally(decision.decision, decision.reason.value)
        return decision

    def _admit(self, person: _Person, common: CommonRecord) -> None:
        """Gate the record into the joint team; hold it for writing if it is new or changed."""
        body = common.body_json()
        body_bytes = canonical_json(body)  # stored as is, so the digest is of what is kept
        digest = hashlib.sha256(body_bytes).hexdigest()
        category = common.category.value
        inbound = DecisionRequest(
            common.source,
            JOINT_TEAM,
            category,
            Purpose.COORDINATION.value,
            self.now,
            payload_sha256=digest,
            restricted_origin=common.restricted,
        )
        if not self._decide(person.pseudonym, person.id, inbound).permitted:
            self.counts.refused += 1
            return
        self.counts.stored += 1
        existing = self._stored.get(common.source_id)
        if existing is not None and existing[1] == digest:
            self._pending.pop(common.source_id, None)  # a later copy of what is stored
            return
        unmapped = (
            json.dumps([u.model_dump() for u in common.unmapped]) if common.unmapped else "[]"
        )
        row = (
            common.source,
            common.source_id,
            person.id,
            common.kind,
            category,
            self._time(common.updated_at),
            body_bytes.decode("utf-8"),
            digest,
            common.restricted,
            unmapped,
            common.mapping_version,
            self._stored_at,
        )
        # A record changed twice in one batch is stored (and routed) as its last version.
        self._pending[common.source_id] = _Record(
            id=None if existing is None else existing[0],
            source=common.source,
            source_id=common.source_id,
            participant_id=person.id,
            kind=common.kind,
            category=category,
            payload_sha256=digest,
            restricted=common.restricted,
            body=body,
            row=row,
        )

    def _route(self, pseudonym: str, record: _Record) -> list[tuple[_Record, str, str, str]]:
        targets = recipients(self.run_state.routing, self.batch.rules, record, self.batch.receivers)
        queued = []
        for recipient, purpose in targets:
            request = DecisionRequest(
                record.source,
                recipient,
                record.category,
                purpose,
                self.now,
                payload_sha256=record.payload_sha256,
                restricted_origin=record.restricted,
            )
            if not self._decide(pseudonym, record.participant_id, request).permitted:
                self.counts.denied += 1
                continue
            queued.append((record, idempotency_key(record, recipient, purpose), recipient, purpose))
        return queued

    def _not_queued_before(
        self, queued: list[tuple[_Record, str, str, str]]
    ) -> list[tuple[_Record, str, str, str]]:
        """Leave out keys already in the outbox (a record read again after a crash)."""
        if not queued:
            return queued
        known = {
            row[0]
            for row in rows_in(
                self.session.connection(),
                "SELECT idempotency_key FROM outbox WHERE idempotency_key IN ({marks})",
                sorted({key for _, key, _, _ in queued}),
            )
        }
        fresh: dict[str, tuple[_Record, str, str, str]] = {}
        for item in queued:
            if item[1] not in known:
                fresh.setdefault(item[1], item)
        return list(fresh.values())

    def _refuse(self, native: NativeRecord, reason: str) -> None:
        """Refused records are never stored; the ledger keeps only their digest."""
        self.counts.refused += 1
        self._events.append(
            LedgerEvent(
                time=self.now,
                action=Action.INBOUND_REFUSED,
                outcome=Outcome.MINOR_FAILURE,
                reason=reason,
                origin=self.connector.name,
                recipient=JOINT_TEAM,
                actor=self.batch.actor,
                payload_sha256=native.digest(),
                correlation_id=self.batch.correlation_id,
            )
        )


def stored_cursor(session: Session, connector: str) -> str | None:
    row = session.get(SyncCursor, connector)
    return row.cursor if row else None


def correlation_id() -> str:
    return "sync-" + hashlib.sha256(datetime.now(UTC).isoformat().encode()).hexdigest()[:16]
