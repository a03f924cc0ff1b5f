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
from hub.consent.decisions import gate_for, subscribers
from hub.keys import KeyRing
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.writer import append
from hub.model.identity import PersonalIdentity
from hub.model.vocab import JOINT_TEAM, Category, Purpose
from hub.store.participants import ParticipantRepository
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import Subscription


@dataclass
class SubscriptionChanges:
    added: int = 0
    cancelled: int = 0


def wanted_participants(
    session: Session, party: str, at: datetime, *, actor: str
) -> list[ParticipantRow]:
    """People who should be registered with ``party`` now: consent names it, and the gate
    permits disclosing their identity to it (each decision is recorded)."""
    wanted = []
    for row in subscribers(session, party, at):
        decision = gate_for(session, row).decide(
            JOINT_TEAM, party, Category.IDENTITY, Purpose.COORDINATION, at, actor=actor
        )
        if decision.permitted:
            wanted.append(row)
    return wanted


def active_subscriptions(session: Session, party: str) -> dict[int, Subscription]:
    rows = session.scalars(select(Subscription).where(Subscription.party == party))
    return {row.participant_id: row for row in rows}


def reconcile(
    session: Session,
    keys: KeyRing,
    connector: Connector,
    at: datetime,
    *,
    actor: str,
    call_authority: bool = True,
) -> SubscriptionChanges:
    """Register newly consented people with the authority and cancel the others.

    Calls the authority inside the caller's transaction; if a call fails the transaction
    rolls back, and both sides converge on the next run (the calls are idempotent).
    ``call_authority=False`` only counts the changes (for a dry run in a rolled-back
    session).
    """
    party = connector.name
    changes = SubscriptionChanges()
    people = ParticipantRepository(session, keys)
    wanted = {row.id: row for row in wanted_participants(session, party, at, actor=actor)}
    current = active_subscriptions(session, party)
    for pid, row in wanted.items():
        sub = current.get(pid)
        if sub is not None and sub.active:
            continue
        if call_authority:
            connector.subscribe(people.identity_of(row))
        if sub is None:
            session.add(Subscription(participant_id=pid, party=party, active=True, changed_at=at))
        else:
            sub.active, sub.changed_at = True, at
        _log(session, row, party, "subscribed", actor, at)
        changes.added += 1
    for pid, sub in current.items():
        if sub.active and pid not in wanted:
            gone = session.get(ParticipantRow, pid)
            assert gone is not None
            if call_authority:
                connector.unsubscribe(people.identity_of(gone))
            sub.active, sub.changed_at = False, at
            _log(session, gone, party, "cancelled", actor, at)
            changes.cancelled += 1
    return changes


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


def _log(
    session: Session, row: ParticipantRow, party: str, what: str, actor: str, at: datetime
) -> None:
    append(
        session,
        LedgerEvent(
            time=at,
            action=Action.SUBSCRIPTION,
            reason=what,
            origin=JOINT_TEAM,
            recipient=party,
            actor=actor,
            purpose=Purpose.COORDINATION,
            categories=(Category.IDENTITY,),
            participant=row.pseudonym,
        ),
    )
