"""The first step of a delivery round: claim due transfers and ask the gate again.

Due outbox items are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and leased, and
each is decided with the person's consents *as stored now*: a withdrawal committed before
this transaction stops the send. Every decision goes to the ledger in the same
transaction; a deny finishes its item here. What is permitted comes back as a
:class:`Claim` carrying the :class:`~hub.model.records.Transfer` to push.

On PostgreSQL a claim is one transaction (:func:`claim_due`): row locks let any number of
claimants work at once. On SQLite, where a writer holds the whole database, a claim is
made in two steps like an inbound batch: decided and encoded while only reading
(:func:`plan_claim`), then taken in a short write transaction (:func:`take_claim`) that
first checks that no item was claimed and nobody's consents changed meanwhile, and
otherwise claims in one step after all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event
from hub.consent.gate import Decision, Snapshot
from hub.consent.snapshots import SnapshotCache
from hub.keys import KeyRing
from hub.ledger.event import LedgerEvent
from hub.ledger.writer import PreparedEntries, append_prepared, prepare_entries
from hub.model.identity import parse_identity
from hub.model.records import Transfer
from hub.model.vocab import JOINT_TEAM, Category
from hub.store.bulk import read_json, read_time, rows_in
from hub.store.participants import participant_columns
from hub.sync.outbox import DENIED, SUPERSEDED, OutboxRepository, QueuedItem
from hub.sync.routing import rekeyed


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
    superseded: list[QueuedItem] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return len(self.claims) + len(self.denied) + len(self.superseded)

    @property
    def finished(self) -> list[QueuedItem]:
        """The items this claim finished without a push (denied or superseded)."""
        return self.denied + self.superseded


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
    items = outbox.due(now, limit, recipients, share, lock=True)
    if not items:
        return Claimed([], [])
    plan = _decide(session, keys, snapshots, now, items, actor)
    outbox.lease(items, now + lease)  # with each one's number_sent and any new key
    outbox.save(plan.claimed.finished)
    append_prepared(session, plan.entries)
    return plan.claimed


@dataclass
class ClaimPlan:
    """A claim decided while only reading (:func:`plan_claim`), to be taken by
    :func:`take_claim` if nothing it read has changed meanwhile."""

    now: datetime
    items: list[QueuedItem]
    claimed: Claimed
    people: dict[int, tuple[int, bool]]  # participant id: (consent revision, protected)
    entries: PreparedEntries  # the gate decisions, encoded


def plan_claim(
    session: Session,
    keys: KeyRing,
    snapshots: SnapshotCache,
    now: datetime,
    *,
    limit: int,
    recipients: list[str],
    share: tuple[int, int] | None,
    actor: str,
) -> ClaimPlan | None:
    """Step 1 of a claim in two steps, reading only: the due items, each decided at the
    gate, the transfers built and the ledger entries encoded; ``None`` if nothing is due.

    For SQLite, where one writer at a time holds the whole database: only step 2
    (:func:`take_claim`) needs the write lock, so helper processes decide and encode
    side by side instead of one after the other.
    """
    items = OutboxRepository(session).due(now, limit, recipients, share)
    if not items:
        return None
    return _decide(session, keys, snapshots, now, items, actor)


def take_claim(session: Session, plan: ClaimPlan, lease: timedelta) -> Claimed | None:
    """Step 2, in ``session``'s write transaction: lease the planned items, finish the
    denied ones and append the decisions, as :func:`claim_due` would have.

    Returns ``None``, having written nothing, if an item was claimed or finished by
    someone else, or a person's consents (or protected identity) changed since ``plan``
    was read; then claim with :func:`claim_due` in this transaction instead. So every
    decision stored is the gate's answer on the consents as committed when it is.
    """
    outbox = OutboxRepository(session)
    if not outbox.still_due([item.id for item in plan.items], plan.now):
        return None
    rows = rows_in(
        session.connection(),
        "SELECT id, consent_revision, protected_identity FROM participant WHERE id IN ({marks})",
        sorted(plan.people),
    )
    if len(rows) != len(plan.people) or any(
        plan.people[pid] != (revision, bool(protected)) for pid, revision, protected in rows
    ):
        return None
    outbox.lease(plan.items, plan.now + lease)
    outbox.save(plan.claimed.finished)
    append_prepared(session, plan.entries)
    return plan.claimed


def _decide(
    session: Session,
    keys: KeyRing,
    snapshots: SnapshotCache,
    now: datetime,
    items: list[QueuedItem],
    actor: str,
) -> ClaimPlan:
    """Ask the gate about each item with the consents as ``session`` reads them now."""
    records = _records(session, {i.record_id for i in items})
    people = {
        p.id: p for p in participant_columns(session, sorted({i.participant_id for i in items}))
    }
    # current as of this transaction: a withdrawal committed before it is seen
    current = snapshots.snapshots(session, list(people.values()))
    events: list[LedgerEvent] = []
    done = Claimed([], [])
    newest = _newest_rows(session, items)
    for item in items:
        newer = newest[(item.record_id, item.recipient, item.purpose)]
        if newer != item.id:
            # The record changed since this row was queued, and the row for its newer
            # version is queued too: only the newest version is stored, and sending it
            # under this row's key would be another body under a key already used.
            why = f"superseded: outbox {newer} carries a newer version of the record"
            OutboxRepository.finish(item, SUPERSEDED, now, error=why)
            done.superseded.append(item)
            continue
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
        if not decision.permitted:
            events.append(
                decision_event(
                    decision,
                    person.pseudonym,
                    request,
                    actor=actor,
                    correlation_id=item.idempotency_key,
                )
            )
            why = f"consent gate: {decision.reason.value}"
            OutboxRepository.finish(item, DENIED, now, error=why)
            done.denied.append(item)
            continue
        number = (
            None if person.protected_identity else _number_decision(current[person.id], item, now)
        )
        _send_number(item, number is not None and number.permitted, protected=number is None)
        event = decision_event(
            decision, person.pseudonym, request, actor=actor, correlation_id=item.idempotency_key
        )
        identity = None
        if number is not None:
            same = (number.consent_id, number.consent_version) == (
                decision.consent_id,
                decision.consent_version,
            )
            if number.permitted and same:
                # one entry: the same consent permits the record and the number with it
                event = event.model_copy(update={"categories": (item.category, IDENTITY)})
            else:
                events.append(
                    decision_event(
                        number,
                        person.pseudonym,
                        _number_request(item, now),
                        actor=actor,
                        correlation_id=item.idempotency_key,
                    )
                )
            if number.permitted:
                identity = parse_identity(keys.decrypt_number(person.pnr_ciphertext))
        events.append(event)
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
    return ClaimPlan(
        now=now,
        items=items,
        claimed=done,
        people={p.id: (p.consent_revision, p.protected_identity) for p in people.values()},
        entries=prepare_entries(events),
    )


IDENTITY = Category.IDENTITY.value


def _send_number(item: QueuedItem, with_number: bool, *, protected: bool) -> None:
    """Record whether this attempt goes with the person's number; an item that went the
    other way last time gets a new key (:func:`~hub.sync.routing.rekeyed`), written with
    its lease before the push.

    An item attempted before revision 0007 has no ``number_sent``: it is taken to have
    gone with the number unless the person is protected (as the releases before
    ``identity`` was gated sent it), so a retry without the number gets a new key: at
    worst a second copy at the authority under its own key, never another body under
    the old one (422, dead for good).
    """
    last = item.number_sent
    if last is None and item.attempts > 0:
        last = not protected
    if last is not None and last != with_number:
        item.idempotency_key = rekeyed(item.idempotency_key, with_number=with_number)
        item.rekeyed = True
    item.number_sent = with_number


def _number_request(item: QueuedItem, now: datetime) -> DecisionRequest:
    """The disclosure of the person's number that goes with a transfer: their identity,
    from the joint team (who registered them), as when subscribing them."""
    return DecisionRequest(JOINT_TEAM, item.recipient, IDENTITY, item.purpose, now)


def _number_decision(snapshot: Snapshot, item: QueuedItem, now: datetime) -> Decision:
    """Whether the transfer may carry the person's number: a transfer whose record is
    permitted but whose recipient may not learn who the person is (``identity`` blocked,
    withdrawn or not covered for them) goes with the pseudonym only."""
    request = _number_request(item, now)
    return gate.decide(
        snapshot, request.origin, request.recipient, request.category, request.purpose, now
    )


def _newest_rows(session: Session, items: list[QueuedItem]) -> dict[tuple[int, str, str], int]:
    """The newest outbox row of each (record, recipient, purpose) among ``items``' records."""
    rows = rows_in(
        session.connection(),
        "SELECT record_id, recipient, purpose, MAX(id) FROM outbox WHERE record_id IN ({marks}) "
        "GROUP BY record_id, recipient, purpose",
        sorted({i.record_id for i in items}),
    )
    return {(rid, recipient, purpose): newest for rid, recipient, purpose, newest in rows}


class _Record(NamedTuple):
    id: int
    source_id: str
    updated_at: datetime
    body: dict[str, Any]
    payload_sha256: str
    restricted: bool


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
