"""The inbound half of a sync: pull → map → gate (origin → joint team) → store → route.

Records are handled in batches; each batch is one transaction that stores the records,
queues the outbox rows, writes every gate decision to the ledger and moves the cursor
past the batch. A crash loses at most the uncommitted batch, which the next run reads
again (cursors are inclusive and records are upserted by source id, so that is harmless).

What one batch learns and the next can reuse lives in an :class:`InboundRun`: the
people's gate snapshots (reloaded for anyone whose consents changed, see
:class:`~hub.consent.snapshots.SnapshotCache`) and who referred each person. Both are
bounded by the people a run sees, not by its records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import update
from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.connector.errors import InvalidRecordError, UnmappedCodeError
from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event
from hub.consent.gate import Decision, Snapshot
from hub.consent.snapshots import SnapshotCache
from hub.keys import KeyRing
from hub.ledger.event import Action, LedgerEvent, Outcome
from hub.ledger.writer import append_many
from hub.model.canonical import canonical_json
from hub.model.records import CommonRecord, NativeRecord
from hub.model.vocab import JOINT_TEAM, Purpose
from hub.settings import RoutingRule
from hub.store.bulk import insert_records, rows_in, time_binder, update_records
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import SyncCursor
from hub.sync.outbox import OutboxRepository
from hub.sync.routing import RoutingCache, idempotency_key, recipients

BATCH_SIZE = 500


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


@dataclass
class InboundRun:
    """What the batches of one connector's pull share (see the module docstring)."""

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


def stored_cursor(session: Session, connector: str) -> str | None:
    row = session.get(SyncCursor, connector)
    return row.cursor if row else None


class InboundBatch:
    """Handles one batch of native records inside the caller's transaction.

    Everything per batch is done in bulk: one lookup of the people, their snapshots from
    the run's cache, one lookup of already stored records, one insert and one update of
    records, one insert of outbox rows, one ledger append for all the batch's decisions
    and refusals. Each decision still comes from the one gate,
    :func:`hub.consent.gate.decide`, and is logged like any other.
    """

    def __init__(
        self,
        session: Session,
        keys: KeyRing,
        connector: Connector,
        rules: Sequence[RoutingRule],
        receivers: Mapping[str, frozenset[str]],
        counts: InboundCounts,
        *,
        actor: str,
        correlation_id: str,
        run: InboundRun | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session = session
        self.keys = keys
        self.connector = connector
        self.rules = rules
        self.receivers = receivers
        self.counts = counts
        self.actor = actor
        self.correlation_id = correlation_id
        self.run_state = run or InboundRun()
        self.now = clock()
        self._time = time_binder(session.get_bind().dialect)
        self._stored_at = self._time(self.now)
        self.outbox = OutboxRepository(session)
        self._snapshots: dict[int, Snapshot] = {}
        self._events: list[LedgerEvent] = []
        self._stored: dict[str, tuple[int, str]] = {}
        self._pending: dict[str, _Record] = {}

    def run(self, natives: Sequence[NativeRecord]) -> None:
        mapped: list[tuple[NativeRecord, CommonRecord]] = []
        for native in natives:
            self.counts.pulled += 1
            common = self._map(native)
            if common is not None:
                mapped.append((native, common))
        digests = [self.keys.lookup_digest(c.person.number) for _, c in mapped]
        people = self._people(digests)
        self._snapshots = self.run_state.snapshots.snapshots(self.session, list(people.values()))
        self._stored = self._existing([c.source_id for _, c in mapped])
        for (native, common), digest in zip(mapped, digests, strict=True):
            person = people.get(digest)
            if person is None:
                self._refuse(native, "no_consent")
                continue
            if common.protected_identity and not person.protected_identity:
                person = people[digest] = self._mark_protected(person)
            self._admit(person, common)
        self._write()
        routing = self.run_state.routing
        routing.preload(self.session, {r.participant_id for r in self._pending.values()})
        for record in self._pending.values():
            if record.kind == "referral":
                routing.add_referral(record.participant_id, record.body)
        pseudonyms = {p.id: p.pseudonym for p in people.values()}
        for record in self._pending.values():
            self._route(pseudonyms[record.participant_id], record)
        self.counts.queued += self.outbox.flush()
        append_many(self.session, self._events)
        if natives:
            self._move_cursor(natives[-1].cursor)

    # -- steps ---------------------------------------------------------------------------

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
        """An authority reports a protected identity: record it, and gate with it from now."""
        self.session.execute(
            update(ParticipantRow)
            .where(ParticipantRow.id == person.id)
            .values(protected_identity=True)
            .execution_options(synchronize_session=False)
        )
        marked = person._replace(protected_identity=True)
        self._snapshots.update(self.run_state.snapshots.snapshots(self.session, [marked]))
        return marked

    def _existing(self, source_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """``source_id → (id, payload_sha256)`` of this connector's records already stored."""
        rows = rows_in(
            self.session.connection(),
            "SELECT source_id, id, payload_sha256 FROM record "
            "WHERE source = ? AND source_id IN ({marks})",
            sorted(set(source_ids)),
            (self.connector.name,),
        )
        return {source_id: (record_id, digest) for source_id, record_id, digest in rows}

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
                actor=self.actor,
                correlation_id=self.correlation_id,
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
        unmapped = json.dumps([u.model_dump() for u in common.unmapped])
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

    def _write(self) -> None:
        """Insert the new records (their ids come back) and update the changed ones."""
        fresh = [r for r in self._pending.values() if r.id is None]
        changed = [r for r in self._pending.values() if r.id is not None]
        connection = self.session.connection()
        if fresh:
            # Plain executemany, then the ids read back by the unique key: RETURNING with
            # its rows in parameter order makes SQLAlchemy insert one row at a time on
            # SQLite, and the ORM's bulk path costs more than the insert itself.
            insert_records(connection, [r.row for r in fresh])
            ids = self._existing([r.source_id for r in fresh])
            for record in fresh:
                record.id = ids[record.source_id][0]
        if changed:
            update_records(connection, [(*r.row, r.id) for r in changed])

    def _route(self, pseudonym: str, record: _Record) -> None:
        assert record.id is not None
        targets = recipients(self.run_state.routing, self.rules, record, self.receivers)
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
            self.outbox.enqueue(
                key=idempotency_key(record, recipient, purpose),
                record_id=record.id,
                participant_id=record.participant_id,
                origin=record.source,
                recipient=recipient,
                purpose=purpose,
                category=record.category,
                now=self.now,
            )

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
                actor=self.actor,
                payload_sha256=native.digest(),
                correlation_id=self.correlation_id,
            )
        )

    def _move_cursor(self, cursor: str) -> None:
        row = self.session.get(SyncCursor, self.connector.name)
        if row is None:
            self.session.add(
                SyncCursor(connector=self.connector.name, cursor=cursor, updated_at=self.now)
            )
        else:
            row.cursor, row.updated_at = cursor, self.now


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def correlation_id() -> str:
    return "sync-" + hashlib.sha256(datetime.now(UTC).isoformat().encode()).hexdigest()[:16]
