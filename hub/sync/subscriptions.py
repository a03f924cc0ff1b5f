"""Keep each authority's list of followed people in step with consent.

The hub only asks an authority about people whose consent names it. Registering a person
discloses their identity to that authority, so it passes the gate (category ``identity``,
from the joint team to the authority): a person with protected identity, or whose consent
does not name ``identity``, is never registered. Every registration and cancellation is
written to the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event, subscribers
from hub.consent.snapshots import SnapshotCache, load_snapshots
from hub.keys import KeyRing
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.writer import append_many
from hub.model.identity import PersonalIdentity
from hub.model.vocab import JOINT_TEAM, Category, Purpose
from hub.store.participants import ParticipantRepository
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import Subscription


@dataclass
class SubscriptionChanges:
    added: int = 0
    cancelled: int = 0


def reconcile(
    session: Session,
    keys: KeyRing,
    connector: Connector,
    at: datetime,
    *,
    actor: str,
    call_authority: bool = True,
    cache: SnapshotCache | None = None,
) -> SubscriptionChanges:
    """Register newly consented people with the authority and cancel the others.

    Whether a person may be registered is the gate's decision (``identity`` from the joint
    team to the authority), made for everyone whose consent names the authority. Decisions
    that lead to a registration or a cancellation, and every refusal, are written to the
    ledger in one append; a registration that simply stays in force discloses nothing new
    and is not logged again each night.

    Calls the authority inside the caller's transaction; if a call fails the transaction
    rolls back, and both sides converge on the next run (the calls are idempotent).
    ``call_authority=False`` only counts the changes (for a dry run in a rolled-back
    session). ``cache`` serves gate snapshots that are still current (one per sync run).
    """
    party = connector.name
    changes = SubscriptionChanges()
    people = ParticipantRepository(session, keys)
    current = active_subscriptions(session, party)
    candidates = subscribers(session, party, at, cache=cache)
    known = {row.id for row in candidates}
    lapsed = [pid for pid, sub in current.items() if sub.active and pid not in known]
    rows = candidates + [r for r in _participants(session, lapsed)]
    snapshots = load_snapshots(session, rows) if cache is None else cache.snapshots(session, rows)
    events: list[LedgerEvent] = []
    for row in rows:
        request = DecisionRequest(
            JOINT_TEAM, party, Category.IDENTITY.value, Purpose.COORDINATION.value, at
        )
        decision = gate.decide(
            snapshots[row.id],
            request.origin,
            request.recipient,
            request.category,
            request.purpose,
            at,
        )
        sub = current.get(row.id)
        active = sub is not None and sub.active
        if decision.permitted and not active:
            if call_authority:
                connector.subscribe(people.identity_of(row))
            if sub is None:
                session.add(
                    Subscription(participant_id=row.id, party=party, active=True, changed_at=at)
                )
            else:
                sub.active, sub.changed_at = True, at
            events += [
                decision_event(decision, row.pseudonym, request, actor=actor),
                _event(row, party, "subscribed", actor, at),
            ]
            changes.added += 1
        elif not decision.permitted and active:
            assert sub is not None
            if call_authority:
                connector.unsubscribe(people.identity_of(row))
            sub.active, sub.changed_at = False, at
            events += [
                decision_event(decision, row.pseudonym, request, actor=actor),
                _event(row, party, "cancelled", actor, at),
            ]
            changes.cancelled += 1
        elif not decision.permitted and row.id in known:
            events.append(decision_event(decision, row.pseudonym, request, actor=actor))
    append_many(session, events)
    return changes


def active_subscriptions(session: Session, party: str) -> dict[int, Subscription]:
    rows = session.scalars(select(Subscription).where(Subscription.party == party))
    return {row.participant_id: row for row in rows}


def _participants(session: Session, ids: Sequence[int]) -> list[ParticipantRow]:
    found: list[ParticipantRow] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found.extend(session.scalars(select(ParticipantRow).where(ParticipantRow.id.in_(chunk))))
    return found


def subscribed_identities(
    session: Session, keys: KeyRing, party: str
) -> Sequence[PersonalIdentity]:
    """Identity numbers of the people currently registered with ``party``."""
    people = ParticipantRepository(session, keys)
    rows = session.scalars(
        select(ParticipantRow)
        .join(Subscription, Subscription.participant_id == ParticipantRow.id)
        .where(Subscription.party == party, Subscription.active.is_(True))
        .order_by(ParticipantRow.id)
    )
    return [people.identity_of(row) for row in rows]


def _event(row: ParticipantRow, party: str, what: str, actor: str, at: datetime) -> LedgerEvent:
    return LedgerEvent(
        time=at,
        action=Action.SUBSCRIPTION,
        reason=what,
        origin=JOINT_TEAM,
        recipient=party,
        actor=actor,
        purpose=Purpose.COORDINATION,
        categories=(Category.IDENTITY,),
        participant=row.pseudonym,
    )
