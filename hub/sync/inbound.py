"""The inbound half of a sync: pull → map → gate (origin → joint team) → store → route.

Records are handled in batches; each batch is one transaction that stores the records,
queues the outbox rows, writes every gate decision to the ledger and moves the cursor
past the batch. A crash loses at most the uncommitted batch, which the next run reads
again (cursors are inclusive and records are upserted by source id, so that is harmless).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.connector.errors import InvalidRecordError, UnmappedCodeError
from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event
from hub.consent.gate import Decision, Snapshot
from hub.consent.snapshots import load_snapshots
from hub.keys import KeyRing
from hub.ledger.event import Action, LedgerEvent, Outcome
from hub.ledger.writer import append_many
from hub.model.records import CommonRecord, NativeRecord
from hub.model.vocab import JOINT_TEAM, Purpose
from hub.settings import RoutingRule
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import StoredRecord, SyncCursor
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


def stored_cursor(session: Session, connector: str) -> str | None:
    row = session.get(SyncCursor, connector)
    return row.cursor if row else None


class InboundBatch:
    """Handles one batch of native records inside the caller's transaction.

    Everything per batch is done in bulk: one lookup of the people, one load of their
    consent snapshots, one lookup of already stored records, one ledger append for all
    the batch's decisions and refusals. Each decision still comes from the one gate,
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
        self.now = clock()
        self.outbox = OutboxRepository(session)
        self._snapshots: dict[int, Snapshot] = {}
        self._events: list[LedgerEvent] = []
        self._stored: dict[str, StoredRecord] = {}
        self._routing = RoutingCache(session)

    def run(self, natives: Sequence[NativeRecord]) -> None:
        mapped: list[tuple[NativeRecord, CommonRecord]] = []
        for native in natives:
            self.counts.pulled += 1
            common = self._map(native)
            if common is not None:
                mapped.append((native, common))
        participants = self._participants([c for _, c in mapped])
        self._snapshots = load_snapshots(self.session, list(participants.values()))
        self._stored = self._existing([c.source_id for _, c in mapped])
        changed: list[tuple[ParticipantRow, StoredRecord]] = []
        for native, common in mapped:
            row = participants.get(self.keys.lookup_digest(common.person.number))
            if row is None:
                self._refuse(native, "no_consent")
                continue
            admitted = self._admit(row, common)
            if admitted is not None:
                changed.append((row, admitted))
        self.session.flush()  # ids for the outbox, and this batch's referrals for routing
        self._routing.preload({row.id for row, _ in changed})
        for row, record in changed:
            self._route(row, record)
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

    def _participants(self, records: Sequence[CommonRecord]) -> dict[str, ParticipantRow]:
        digests = sorted({self.keys.lookup_digest(r.person.number) for r in records})
        found: dict[str, ParticipantRow] = {}
        for chunk in _chunks(digests):
            for row in self.session.scalars(
                select(ParticipantRow).where(ParticipantRow.pnr_lookup.in_(chunk))
            ):
                found[row.pnr_lookup] = row
        return found

    def _existing(self, source_ids: Sequence[str]) -> dict[str, StoredRecord]:
        found: dict[str, StoredRecord] = {}
        for chunk in _chunks(sorted(set(source_ids))):
            for record in self.session.scalars(
                select(StoredRecord).where(
                    StoredRecord.source == self.connector.name, StoredRecord.source_id.in_(chunk)
                )
            ):
                found[record.source_id] = record
        return found

    def _decide(self, row: ParticipantRow, request: DecisionRequest) -> Decision:
        decision = gate.decide(
            self._snapshots[row.id],
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
                row.pseudonym,
                request,
                actor=self.actor,
                correlation_id=self.correlation_id,
            )
        )
        self.counts.tally(decision.decision, decision.reason.value)
        return decision

    def _admit(self, row: ParticipantRow, common: CommonRecord) -> StoredRecord | None:
        """Gate the record into the joint team; the stored record if it is new or changed."""
        if common.protected_identity and not row.protected_identity:
            row.protected_identity = True
            self._snapshots.update(load_snapshots(self.session, [row]))  # carries the flag
        digest = common.payload_sha256()
        inbound = DecisionRequest(
            common.source,
            JOINT_TEAM,
            common.category.value,
            Purpose.COORDINATION.value,
            self.now,
            payload_sha256=digest,
            restricted_origin=common.restricted,
        )
        if not self._decide(row, inbound).permitted:
            self.counts.refused += 1
            return None
        stored, changed = self._upsert(row, common, digest)
        self.counts.stored += 1
        return stored if changed else None

    def _upsert(
        self, row: ParticipantRow, common: CommonRecord, digest: str
    ) -> tuple[StoredRecord, bool]:
        existing = self._stored.get(common.source_id)
        if existing is not None and existing.payload_sha256 == digest:
            return existing, False
        record = existing or StoredRecord(source=common.source, source_id=common.source_id)
        record.participant_id = row.id
        record.kind = common.kind
        record.category = common.category.value
        record.updated_at = common.updated_at
        record.body = common.body_json()
        record.payload_sha256 = digest
        record.restricted = common.restricted
        record.unmapped = [u.model_dump() for u in common.unmapped]
        record.mapping_version = common.mapping_version
        record.stored_at = self.now
        if existing is None:
            self.session.add(record)
            self._stored[common.source_id] = record
        return record, True

    def _route(self, row: ParticipantRow, record: StoredRecord) -> None:
        targets = recipients(self._routing, self.rules, record, self.receivers)
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
            if not self._decide(row, request).permitted:
                self.counts.denied += 1
                continue
            self.outbox.enqueue(
                key=idempotency_key(record, recipient, purpose),
                record_id=record.id,
                participant_id=row.id,
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
