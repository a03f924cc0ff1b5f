"""Step 1 of an inbound batch: everything it will write, decided and encoded while only
reading (see :mod:`hub.sync.inbound` for the two steps)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.orm import Session

from hub.connector.errors import (
    ConnectorConfigError,
    ConnectorError,
    InvalidRecordError,
    UnmappedCodeError,
)
from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event
from hub.consent.gate import Decision, Snapshot
from hub.ledger.event import Action, LedgerEvent, Outcome
from hub.ledger.writer import prepare_entries
from hub.model.canonical import canonical_json
from hub.model.records import CommonRecord, NativeRecord
from hub.model.vocab import JOINT_TEAM, Purpose
from hub.store.bulk import rows_in, time_binder
from hub.store.tables.sync import referring_party_of
from hub.sync.batch import (
    InboundCounts,
    PreparedBatch,
    Queued,
    StagedRecord,
    existing_records,
)
from hub.sync.routing import idempotency_key, recipients

if TYPE_CHECKING:
    from hub.sync.inbound import InboundBatch


class _Person(NamedTuple):
    """The participant columns a batch needs (no ORM object per person)."""

    id: int
    pnr_lookup: str
    pseudonym: str
    protected_identity: bool
    consent_revision: int


class Preparation:
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
        self._pending: dict[str, StagedRecord] = {}

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
        self._stored = existing_records(
            self.session, self.connector.name, [c.source_id for _, c in mapped]
        )
        unknown: list[str] = []
        reported_protected: dict[str, _Person] = {}
        cursor: str | None = None
        for (native, common), digest in zip(mapped, digests, strict=True):
            person = people.get(digest)
            if person is None:
                unknown.append(digest)
                self._refuse(native, "no_consent")
            else:
                admitted = self._admit(native, person, common)
                if admitted is None:
                    continue  # refused as invalid
                if admitted and common.protected_identity:
                    reported_protected[digest] = person
            # Only a valid record moves the cursor: an invalid one's cursor is as untrusted
            # as the rest of it (it could point past every later record). Records after
            # the last valid one are read again next time.
            cursor = native.cursor
        protect = self._mark_protected(people, reported_protected)
        routing = self.run_state.routing
        routing.preload(self.session, {r.participant_id for r in self._pending.values()})
        for record in self._pending.values():
            if record.kind == "referral":
                routing.add_referral(record.participant_id, record.body)
        pseudonyms = {p.id: p.pseudonym for p in people.values()}
        queued: list[Queued] = []
        for record in self._pending.values():
            queued.extend(self._route(pseudonyms[record.participant_id], record))
        queued = self._not_queued_before(queued)
        self.counts.queued += len(queued)
        return PreparedBatch(
            counts=self.counts,
            cursor=cursor,
            people=decided_on,
            unknown=unknown,
            protect=protect,
            records=list(self._pending.values()),
            queued=queued,
            entries=prepare_entries(self._events),
        )

    def _map(self, native: NativeRecord) -> CommonRecord | None:
        """The record mapped, or ``None`` if it is refused as invalid (counted, logged).

        Besides the connector's own refusals, any exception that is not a connector
        error (say an ``OverflowError`` from a date in the record, or a ``RecursionError``
        from deeply nested JSON) refuses this one record: the rest of the batch and the
        other connectors go on. It is logged by its type alone, as its text may quote the
        record. A connector error (transient, configuration, …) still stops the pull.
        """
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
        except ConnectorError:
            raise
        except Exception as exc:
            self.counts.invalid += 1
            self._refuse(native, f"invalid_record: {type(exc).__name__}")
            return None
        if common.source != self.connector.name or common.source_id != native.source_id:
            raise ConnectorConfigError(
                self.connector.name,
                "map() returned a record that is not the one it was given (its source must "
                "be the connector's name, its source_id the native record's): a fault in the "
                "connector plugin; fix or update it",
            )
        if common.category not in self.connector.delivers:
            self.counts.invalid += 1
            delivers = ", ".join(sorted(self.connector.delivers)) or "nothing"
            self._refuse(
                native,
                f"invalid_record: category {common.category} is not one the connector "
                f"delivers ({delivers})",
            )
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

    def _mark_protected(
        self, people: dict[str, _Person], reported: dict[str, _Person]
    ) -> list[int]:
        """The people an authority reports with a protected identity, marked so in
        ``people`` and gated so from now (stored in step 2); returns their ids.

        ``reported`` holds only people whose record saying so the gate let in: an authority
        the person's consent does not cover cannot mark them (a mark cancels them at every
        authority).
        """
        marked = {
            digest: person._replace(protected_identity=True)
            for digest, person in reported.items()
            if not person.protected_identity
        }
        if marked:
            people.update(marked)
            self._snapshots.update(
                self.run_state.snapshots.snapshots(self.session, list(marked.values()))
            )
        return [person.id for person in marked.values()]

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

    def _admit(self, native: NativeRecord, person: _Person, common: CommonRecord) -> bool | None:
        """Gate the record into the joint team; hold it for writing if it is new or changed.

        Returns whether the gate let it in, or ``None`` if the record cannot be stored at
        all (say a time out of range): then it is refused as invalid, like in ``_map``.
        """
        existing = self._stored.get(common.source_id)
        try:
            body = common.body_json()
            body_bytes = canonical_json(body)  # stored as is, so the digest is of what is kept
            digest = hashlib.sha256(body_bytes).hexdigest()
            changed = existing is None or existing[1] != digest
            updated_at = self._time(common.updated_at) if changed else None
        except Exception as exc:
            self.counts.invalid += 1
            self._refuse(native, f"invalid_record: {type(exc).__name__}")
            return None
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
            return False
        self.counts.stored += 1
        if not changed:
            self._pending.pop(common.source_id, None)  # a later copy of what is stored
            return True
        unmapped = (
            json.dumps([u.model_dump() for u in common.unmapped]) if common.unmapped else "[]"
        )
        row = (
            common.source,
            common.source_id,
            person.id,
            common.kind,
            category,
            updated_at,
            body_bytes.decode("utf-8"),
            digest,
            common.restricted,
            unmapped,
            common.mapping_version,
            self._stored_at,
            referring_party_of(common.kind, body),
        )
        # A record changed twice in one batch is stored (and routed) as its last version.
        self._pending[common.source_id] = StagedRecord(
            id=None if existing is None else existing[0],
            source=common.source,
            source_id=common.source_id,
            participant_id=person.id,
            kind=common.kind,
            category=category,
            payload_sha256=digest,
            restricted=common.restricted,
            updated_at=common.updated_at,
            body=body,
            row=row,
        )
        return True

    def _route(self, pseudonym: str, record: StagedRecord) -> list[Queued]:
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

    def _not_queued_before(self, queued: list[Queued]) -> list[Queued]:
        """The transfers to queue, each under a key the outbox does not hold yet.

        Only a new or changed record is routed, so a key the outbox already holds means
        the record has gone back to a version (same body, same ``updated_at``) that was
        queued before: an authority undid a change without giving a new time. That
        version is sent again, under a key numbered by how many transfers of the record
        the recipient has been queued (see :func:`~hub.sync.routing.idempotency_key`);
        the number is read from what is committed, so a batch prepared again after a
        crash gets the same keys. One extra query, and only for a batch with such a
        record. A key still taken after that is left out.
        """
        if not queued:
            return queued
        known = self._queued_keys(queued)
        if known:
            queued = self._renumbered(queued, known)
            known = self._queued_keys(queued)
        fresh: dict[str, Queued] = {}
        for item in queued:
            if item[1] not in known:
                fresh.setdefault(item[1], item)
        return list(fresh.values())

    def _queued_keys(self, queued: Sequence[Queued]) -> set[str]:
        """The keys of ``queued`` that the outbox already holds."""
        return {
            row[0]
            for row in rows_in(
                self.session.connection(),
                "SELECT idempotency_key FROM outbox WHERE idempotency_key IN ({marks})",
                sorted({key for _, key, _, _ in queued}),
            )
        }

    def _renumbered(self, queued: list[Queued], known: set[str]) -> list[Queued]:
        """``queued`` with a numbered key for each item whose key is ``known``."""
        again = {record.id for record, key, _, _ in queued if key in known}
        counts: dict[tuple[int | None, str], int] = {
            (record_id, recipient): n
            for record_id, recipient, n in rows_in(
                self.session.connection(),
                "SELECT record_id, recipient, COUNT(*) FROM outbox "
                "WHERE record_id IN ({marks}) GROUP BY record_id, recipient",
                sorted(pid for pid in again if pid is not None),
            )
        }
        return [
            (
                record,
                idempotency_key(
                    record, recipient, purpose, again=counts.get((record.id, recipient), 0)
                ),
                recipient,
                purpose,
            )
            if key in known
            else (record, key, recipient, purpose)
            for record, key, recipient, purpose in queued
        ]

    def _refuse(self, native: NativeRecord, reason: str) -> None:
        """Refused records are never stored; the ledger keeps only their digest (none if
        the payload cannot even be canonicalised, e.g. nested too deep or a huge number)."""
        self.counts.refused += 1
        try:
            payload_sha256: str | None = native.digest()
        except Exception as exc:
            payload_sha256 = None
            reason += f" (no digest: {type(exc).__name__})"
        self._events.append(
            LedgerEvent(
                time=self.now,
                action=Action.INBOUND_REFUSED,
                outcome=Outcome.MINOR_FAILURE,
                reason=reason,
                origin=self.connector.name,
                recipient=JOINT_TEAM,
                actor=self.batch.actor,
                payload_sha256=payload_sha256,
                correlation_id=self.batch.correlation_id,
            )
        )
