"""The first step of a delivery round: claim due transfers and ask the gate again.

Due outbox items are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and leased, and
each is decided with the person's consents *as stored now*: a withdrawal committed before
this transaction stops the send. Every decision goes to the ledger in the same
transaction; a deny finishes its item here. What is permitted comes back as a
:class:`Claim` carrying the :class:`~hub.model.records.Transfer` to push.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event
from hub.consent.snapshots import SnapshotCache
from hub.keys import KeyRing
from hub.ledger.event import LedgerEvent
from hub.ledger.writer import append_many
from hub.model.identity import parse_identity
from hub.model.records import Transfer
from hub.store.bulk import read_json, read_time, rows_in
from hub.sync.outbox import DENIED, OutboxRepository, QueuedItem


@dataclass(frozen=True)
class Claim:
    item: QueuedItem
    transfer: Transfer
    payload_sha256: str  # the stored record's digest: the body the transfer carries

    @property
    def item_id(self) -> int:
        return self.item.id

    @property
    def key(self) -> str:
        return self.item.idempotency_key

    @property
    def recipient(self) -> str:
        return self.item.recipient


@dataclass
class Claimed:
    """What one claim did: the transfers to push, and the items the gate denied."""

    claims: list[Claim]
    denied: list[QueuedItem]

    @property
    def handled(self) -> int:
        return len(self.claims) + len(self.denied)


def claim_due(
    session: Session,
    keys: KeyRing,
    snapshots: SnapshotCache,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    recipients: list[str],
    share: tuple[int, int] | None,
    actor: str,
) -> Claimed:
    """Claim up to ``limit`` due transfers to ``recipients`` and decide each at the gate,
    in ``session``'s write transaction (see the module docstring)."""
    outbox = OutboxRepository(session)
    items = outbox.claim(now, lease, limit, recipients, share=share)
    if not items:
        return Claimed([], [])
    records = _records(session, {i.record_id for i in items})
    people = _people(session, {i.participant_id for i in items})
    # current as of this transaction: a withdrawal committed before it is seen
    current = snapshots.snapshots(session, list(people.values()))
    events: list[LedgerEvent] = []
    done = Claimed([], [])
    for item in items:
        record, person = records[item.record_id], people[item.participant_id]
        request = DecisionRequest(
            item.origin,
            item.recipient,
            item.category,
            item.purpose,
            now,
            payload_sha256=record.payload_sha256,
            restricted_origin=record.restricted,
        )
        decision = gate.decide(
            current[person.id],
            request.origin,
            request.recipient,
            request.category,
            request.purpose,
            now,
            restricted_origin=record.restricted,
        )
        events.append(
            decision_event(
                decision,
                person.pseudonym,
                request,
                actor=actor,
                correlation_id=item.idempotency_key,
            )
        )
        if not decision.permitted:
            outbox.finish(item, DENIED, now, error=f"consent gate: {decision.reason.value}")
            done.denied.append(item)
            continue
        identity = (
            None
            if person.protected_identity
            else parse_identity(keys.decrypt_number(person.pnr_ciphertext))
        )
        transfer = Transfer.model_validate(
            {
                "idempotency_key": item.idempotency_key,
                "origin": item.origin,
                "recipient": item.recipient,
                "purpose": item.purpose,
                "participant": person.pseudonym,
                "person": identity,
                "source_id": record.source_id,
                "updated_at": record.updated_at,
                "body": record.body,
            }
        )
        done.claims.append(Claim(item, transfer, record.payload_sha256))
    outbox.save(done.denied)
    append_many(session, events)
    return done


class _Record(NamedTuple):
    id: int
    source_id: str
    updated_at: datetime
    body: dict[str, Any]
    payload_sha256: str
    restricted: bool


class _Person(NamedTuple):
    id: int
    pseudonym: str
    protected_identity: bool
    consent_revision: int
    pnr_ciphertext: bytes


def _records(session: Session, ids: set[int]) -> dict[int, _Record]:
    rows = rows_in(
        session.connection(),
        "SELECT id, source_id, updated_at, body, payload_sha256, restricted FROM record "
        "WHERE id IN ({marks})",
        sorted(ids),
    )
    return {
        rid: _Record(rid, source_id, read_time(updated), read_json(body), digest, bool(restricted))
        for rid, source_id, updated, body, digest, restricted in rows
    }


def _people(session: Session, ids: set[int]) -> dict[int, _Person]:
    rows = rows_in(
        session.connection(),
        "SELECT id, pseudonym, protected_identity, consent_revision, pnr_ciphertext "
        "FROM participant WHERE id IN ({marks})",
        sorted(ids),
    )
    return {
        pid: _Person(pid, pseudonym, bool(protected), revision, bytes(ciphertext))
        for pid, pseudonym, protected, revision, ciphertext in rows
    }
