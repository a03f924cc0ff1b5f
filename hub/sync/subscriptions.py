"""Keep each authority's list of followed people in step with consent.

The hub only asks an authority about people whose consent names it. Registering a person
discloses their identity to that authority, so it passes the gate (category ``identity``,
from the joint team to the authority): a person with protected identity, or whose consent
does not name ``identity``, is never registered. Every registration and cancellation is
written to the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.consent import gate
from hub.consent.decisions import DecisionRequest, decision_event, subscribers
from hub.consent.snapshots import SnapshotCache
from hub.keys import KeyRing
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.writer import append_many
from hub.model.identity import PersonalIdentity
from hub.model.vocab import JOINT_TEAM, Category, Purpose
from hub.store.consents import ConsentRepository
from hub.store.participants import ParticipantColumns, ParticipantRepository, participant_columns
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

    Calls the authority inside the caller's transaction, :data:`CALLS_AT_ONCE` at a time;
    if a call fails the transaction rolls back, and both sides converge on the next run
    (the calls are idempotent).
    ``call_authority=False`` only counts the changes (for a dry run in a rolled-back
    session). ``cache`` serves gate snapshots that are still current (one per sync run).

    It runs for every person of every connector each night, so people and subscriptions
    are read as columns rather than ORM objects and the changes are written in bulk.
    """
    party = connector.name
    changes = SubscriptionChanges()
    people = ParticipantRepository(session, keys)
    if cache is None:
        cache = SnapshotCache()  # one load serves both subscribers() and the decisions below
    current = active_subscriptions(session, party)
    candidates = subscribers(session, party, at, cache=cache)
    known = {row.id for row in candidates}
    lapsed = [pid for pid, sub in current.items() if sub.active and pid not in known]
    rows = candidates + participant_columns(session, lapsed)
    snapshots = cache.snapshots(session, rows)
    request = DecisionRequest(
        JOINT_TEAM, party, Category.IDENTITY.value, Purpose.COORDINATION.value, at
    )
    events: list[LedgerEvent] = []
    added: list[dict[str, Any]] = []
    switched: list[dict[str, Any]] = []
    calls: list[tuple[Callable[[PersonalIdentity], object], ParticipantColumns]] = []
    for row in rows:
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
            calls.append((connector.subscribe, row))
            if sub is None:
                added.append(
                    {"participant_id": row.id, "party": party, "active": True, "changed_at": at}
                )
            else:
                switched.append({"id": sub.id, "active": True, "changed_at": at})
            events += [
                decision_event(decision, row.pseudonym, request, actor=actor),
                _event(row, party, "subscribed", actor, at),
            ]
            changes.added += 1
        elif not decision.permitted and active:
            assert sub is not None
            calls.append((connector.unsubscribe, row))
            switched.append({"id": sub.id, "active": False, "changed_at": at})
            events += [
                decision_event(decision, row.pseudonym, request, actor=actor),
                _event(row, party, "cancelled", actor, at),
            ]
            changes.cancelled += 1
        elif not decision.permitted and row.id in known:
            events.append(decision_event(decision, row.pseudonym, request, actor=actor))
    if call_authority:
        _call_authority(calls, people)
    if added:
        session.execute(insert(Subscription), added)
    if switched:
        session.execute(update(Subscription), switched)  # ORM bulk UPDATE by primary key
    append_many(session, events)
    return changes


CALLS_AT_ONCE = 8
"""Registrations and cancellations sent side by side to one authority. The first night
of a caseload registers everyone, one call per person, while the write transaction is
open: measured with 5,000 people and four sandbox authorities answering in 3 ms, about
90 s one call at a time, about 19 s eight at a time (start of `evi sync` included)."""


def _call_authority(
    calls: Sequence[tuple[Callable[[PersonalIdentity], object], ParticipantColumns]],
    people: ParticipantRepository,
) -> None:
    """Make every call; raise the first call's error, if any, once all have been tried."""
    if not calls:
        return
    identities = [(call, people.identity_of(row)) for call, row in calls]
    with ThreadPoolExecutor(min(CALLS_AT_ONCE, len(calls)), "evi-subscribe") as pool:
        futures = [pool.submit(call, identity) for call, identity in identities]
    for future in futures:
        future.result()


class Registration(NamedTuple):
    """A person's subscription row at one authority: its id and whether it is in force."""

    id: int
    active: bool


def load_before_reconcile(
    session: Session, parties: Sequence[str], at: datetime, cache: SnapshotCache
) -> None:
    """Fill ``cache`` with the snapshots the reconciles of ``parties`` will decide with,
    in a read-only transaction before any write lock is taken: at 24,000 people loading
    them is most of the reconcile's time, and on SQLite every other writer (a
    caseworker's look-up, a consent registered at the desk) waits while the lock is held.
    Each :func:`reconcile` then reads the people again under its lock and reloads anyone
    whose consents changed meanwhile (:class:`~hub.consent.snapshots.SnapshotCache`), so
    it decides as it did."""
    consents = ConsentRepository(session)
    ids: set[int] = set()
    for party in parties:
        ids.update(consents.participants_naming(party, at))
        ids.update(pid for pid, sub in active_subscriptions(session, party).items() if sub.active)
    cache.snapshots(session, participant_columns(session, sorted(ids)))


def active_subscriptions(session: Session, party: str) -> dict[int, Registration]:
    """Every subscription row of ``party`` by participant id, in force or not.

    Columns only (no ORM objects): the nightly reconcile reads one per person per connector.
    """
    s = Subscription
    rows = session.execute(select(s.participant_id, s.id, s.active).where(s.party == party))
    return {pid: Registration(sid, active) for pid, sid, active in rows}


def subscribed_identities(
    session: Session, keys: KeyRing, party: str, *, since: datetime | None = None
) -> Sequence[PersonalIdentity]:
    """Identity numbers of the people currently registered with ``party``, for its pull
    (an authority that keeps no list of its own is searched by them); with ``since``, only
    those registered at or after it (the newly followed, to read from the start).

    A person with protected identity is left out even while still registered: an
    authority may have marked them during this run, after the subscriptions were settled,
    and their number must not be named in a search before the next run cancels them.
    """
    people = ParticipantRepository(session, keys)
    query = (
        select(ParticipantRow)
        .join(Subscription, Subscription.participant_id == ParticipantRow.id)
        .where(
            Subscription.party == party,
            Subscription.active.is_(True),
            ParticipantRow.protected_identity.is_(False),
        )
        .order_by(ParticipantRow.id)
    )
    if since is not None:
        query = query.where(Subscription.changed_at >= since)
    return [people.identity_of(row) for row in session.scalars(query)]


def _event(row: ParticipantColumns, party: str, what: str, actor: str, at: datetime) -> LedgerEvent:
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
