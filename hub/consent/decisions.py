"""Ask the gate and record the answer: what the rest of the hub calls before any disclosure.

Every function here works in the caller's session (the sync job's transaction, a web
request's): the decision's ledger entry commits or rolls back with the caller's work.
Nothing here commits. The one exception, :func:`decide_unrecorded`, touches no database
and hands its entries to the caller, who must append them before using any decision.

    decide(session, participant, origin, recipient, category, purpose, at, *, actor, ...)
        one decision, loaded, decided and recorded
    gate_for(session, participant) -> ParticipantGate
        one snapshot load, then any number of decisions for that person
    decide_unrecorded(snapshot, pseudonym, requests, ...) -> (permitted keys, entries)
        decisions whose entries the caller appends later, in one write transaction
    subscribers(session, party, at) -> list[ParticipantColumns]
        who currently has a consent naming ``party`` (the sync job's subscriptions)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from hub.consent import gate
from hub.consent.gate import Decision, Snapshot
from hub.consent.snapshots import SnapshotCache, load_snapshot, load_snapshots
from hub.ledger.event import Action, LedgerEvent, Outcome
from hub.ledger.writer import append_many
from hub.store.consents import ConsentRepository
from hub.store.participants import ParticipantColumns, participant_columns
from hub.store.tables.participant import ParticipantRow

K = TypeVar("K", bound=tuple[Any, ...])
"""A reader's key for one group of disclosures, e.g. (origin, category, restricted)."""


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One disclosure to decide with :meth:`ParticipantGate.decide_many`."""

    origin: str
    recipient: str
    category: str
    purpose: str
    at: datetime
    payload_sha256: str | None = None
    restricted_origin: bool = False


class ParticipantGate:
    """The gate for one participant, over a snapshot loaded once.

    Every decision is appended to the ledger in the session it was created with. The
    snapshot is what was stored when :func:`gate_for` ran; a long-lived sender must ask
    :func:`gate_for` again at send time (a withdrawal in between must stop the send).
    """

    def __init__(self, session: Session, participant: ParticipantRow, snapshot: Snapshot) -> None:
        self.session = session
        self.participant = participant
        self.snapshot = snapshot

    def decide(
        self,
        origin: str,
        recipient: str,
        category: str,
        purpose: str,
        at: datetime,
        *,
        actor: str,
        role: str | None = None,
        correlation_id: str | None = None,
        payload_sha256: str | None = None,
        restricted_origin: bool = False,
    ) -> Decision:
        """Decide one disclosure and record it; see :func:`hub.consent.gate.decide`."""
        request = DecisionRequest(
            origin, recipient, category, purpose, at, payload_sha256, restricted_origin
        )
        return self.decide_many([request], actor=actor, role=role, correlation_id=correlation_id)[0]

    def decide_many(
        self,
        requests: Iterable[DecisionRequest],
        *,
        actor: str,
        role: str | None = None,
        correlation_id: str | None = None,
    ) -> list[Decision]:
        """Decide several disclosures for this person; one ledger append for all of them."""
        decisions, events = _decided(
            self.snapshot,
            self.participant.pseudonym,
            requests,
            actor=actor,
            role=role,
            correlation_id=correlation_id,
        )
        append_many(self.session, events)
        return decisions

    def permitted_keys(
        self,
        requests: Mapping[K, DecisionRequest],
        *,
        actor: str,
        role: str | None = None,
        correlation_id: str | None = None,
    ) -> set[K]:
        """Decide every request (one ledger append, in key order); the keys permitted.

        For readers that group what they would disclose (by origin, category, …) and
        ask once per group: the casework view and the statistics."""
        keys = sorted(requests)
        decisions = self.decide_many(
            [requests[k] for k in keys], actor=actor, role=role, correlation_id=correlation_id
        )
        return {k for k, d in zip(keys, decisions, strict=True) if d.permitted}


def decide_unrecorded(
    snapshot: Snapshot,
    pseudonym: str,
    requests: Mapping[K, DecisionRequest],
    *,
    actor: str,
    role: str | None = None,
    correlation_id: str | None = None,
) -> tuple[set[K], list[LedgerEvent]]:
    """Decide every request for the person of ``snapshot`` as
    :meth:`ParticipantGate.permitted_keys` does (in key order), without touching the
    database: the keys permitted, and the ledger entries of the decisions, exactly those
    ``permitted_keys`` would append.

    For a reader that decides about many people in a read-only transaction and appends
    all their entries at once in a short write transaction (the follow-up statistics).
    The caller must append every entry returned, in a transaction that commits before
    anything decided here is shown or sent, and drop what it decided if that append fails.
    """
    keys = sorted(requests)
    decisions, events = _decided(
        snapshot,
        pseudonym,
        [requests[k] for k in keys],
        actor=actor,
        role=role,
        correlation_id=correlation_id,
    )
    return {k for k, d in zip(keys, decisions, strict=True) if d.permitted}, events


def _decided(
    snapshot: Snapshot,
    pseudonym: str,
    requests: Iterable[DecisionRequest],
    *,
    actor: str,
    role: str | None,
    correlation_id: str | None,
) -> tuple[list[Decision], list[LedgerEvent]]:
    """The gate's decision on each request, and each decision's ledger entry."""
    decisions: list[Decision] = []
    events: list[LedgerEvent] = []
    for r in requests:
        _require_aware(r.at)
        decision = gate.decide(
            snapshot,
            r.origin,
            r.recipient,
            r.category,
            r.purpose,
            r.at,
            restricted_origin=r.restricted_origin,
        )
        decisions.append(decision)
        events.append(
            decision_event(
                decision, pseudonym, r, actor=actor, role=role, correlation_id=correlation_id
            )
        )
    return decisions, events


def gate_for(session: Session, participant: ParticipantRow) -> ParticipantGate:
    """Load ``participant``'s snapshot once for many decisions."""
    return ParticipantGate(session, participant, load_snapshot(session, participant))


def decide(
    session: Session,
    participant: ParticipantRow,
    origin: str,
    recipient: str,
    category: str,
    purpose: str,
    at: datetime,
    *,
    actor: str,
    role: str | None = None,
    correlation_id: str | None = None,
    payload_sha256: str | None = None,
    restricted_origin: bool = False,
) -> Decision:
    """THE rule: may ``category`` data about ``participant`` go from ``origin`` to ``recipient``
    for ``purpose`` at ``at``? Loads the person's consents as stored now, decides with
    :func:`hub.consent.gate.decide` and records the decision (permit or deny) in the ledger.

    ``restricted_origin`` must be the record's own mark (data obtained under a legal right
    for one purpose only); ``protected_identity`` comes from the participant row.
    ``payload_sha256`` is the fingerprint of what would be disclosed (never the payload).
    """
    return gate_for(session, participant).decide(
        origin,
        recipient,
        category,
        purpose,
        at,
        actor=actor,
        role=role,
        correlation_id=correlation_id,
        payload_sha256=payload_sha256,
        restricted_origin=restricted_origin,
    )


def subscribers(
    session: Session, party: str, at: datetime, *, cache: SnapshotCache | None = None
) -> list[ParticipantColumns]:
    """Participants whose consent names ``party`` at ``at`` (see ``Snapshot.parties_at``).

    These are the people the hub may register with (and ask) that authority about; anyone
    registered there who is not in this list must be cancelled. Ordered by participant id.
    ``cache`` serves snapshots that are still current (a sync run shares one). Plain
    column rows, not ORM objects: every sync asks this for every person of every connector.
    """
    _require_aware(at)
    candidates = ConsentRepository(session).participants_naming(party, at)
    if not candidates:
        return []
    rows = sorted(participant_columns(session, candidates), key=lambda r: r.id)
    snapshots = load_snapshots(session, rows) if cache is None else cache.snapshots(session, rows)
    return [row for row in rows if party in snapshots[row.id].parties_at(at)]


def decision_event(
    decision: Decision,
    pseudonym: str,
    request: DecisionRequest,
    *,
    actor: str,
    role: str | None = None,
    correlation_id: str | None = None,
) -> LedgerEvent:
    """The ledger entry for one gate decision (participant by pseudonym only).

    Its time is the instant decided about, ``request.at``, so callers must ask about their
    now (the instant of the disclosure, as their clock gives it), never about another
    instant: the entry would be dated then, outside the window a log review searches and
    purgeable with it, and would decide about records as stored now with consents as they
    stood then.
    """
    return LedgerEvent(
        time=request.at,
        action=Action.DECISION,
        decision=decision.decision,
        outcome=Outcome.SUCCESS if decision.permitted else Outcome.MINOR_FAILURE,
        reason=decision.reason.value,
        origin=request.origin,
        recipient=request.recipient,
        actor=actor,
        role=role,
        purpose=request.purpose,
        categories=(request.category,),
        consent_id=decision.consent_id,
        consent_version=decision.consent_version,
        payload_sha256=request.payload_sha256,
        participant=pseudonym,
        correlation_id=correlation_id,
    )


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("the gate needs a timezone-aware instant (UTC); got a naive datetime")
