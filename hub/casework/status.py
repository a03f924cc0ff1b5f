"""One person's consolidated status, as one caseworker's party may see it.

    consolidated_status(hub, identity, viewer, *, clock=utc_now) -> StatusView

A view is a disclosure: each stored record goes from the authority it came from (its
origin) to the viewer's party, for the purpose ``coordination``. So the gate is asked
once per (origin, category) the person has records in, every decision (permit or deny)
goes to the ledger, and only permitted records are shown. A restricted record (data
obtained under a legal right for one purpose) is never shown.

The view itself is one more ledger entry (action ``view``, the categories shown), tied to
its decisions by one correlation id. Looking up a number the hub does not know is logged
as a failed view by the number's pseudonym, so a privacy officer can see look-ups of
people who are not participants too.

What was withheld is not listed: that an authority holds, say, health information about
a person is itself information the viewer may not have. Nor is the person: being a client
of the joint team is itself secret (OSL 26 kap.), and the view holds nothing but records
(the pseudonym and the protected-identity flag only head them). So when the gate lets the
viewer see none of the person's records (their consent does not name the viewer's party,
was withdrawn or has expired, a block forbids it, or nothing is stored yet), the caller
gets :class:`NothingToShow`, the very error a number the hub does not know gets, raised
from the same place with the same message; only the ledger tells the two apart.

A look-up is always of now: the gate decides about the instant the look-up happens and
the ledger dates every entry of it then, because the records shown are the ones stored
now. There is no "as of" view: a past instant would let a consent withdrawn since decide
about today's records, and would date the entries where a log review does not look and a
purge removes them. ``clock`` is for tests only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.casework.summary import CaseSummary, StatusEntry, summarise
from hub.clock import SWEDEN, Clock, utc_now
from hub.consent.decisions import DecisionRequest, gate_for
from hub.context import Hub
from hub.errors import NotFoundError
from hub.ledger.event import Action, ActorRole, LedgerEvent, Outcome
from hub.ledger.writer import append
from hub.model.identity import PersonalIdentity
from hub.model.vocab import Purpose
from hub.store.participants import ParticipantRepository
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import StoredRecord


@dataclass(frozen=True)
class Viewer:
    """Who looks: their name for the ledger and the party they work for."""

    actor: str
    party: str
    role: str = ActorRole.CASEWORKER.value


class NothingToShow(NotFoundError):
    """Nothing the hub holds about the number may be shown to the viewer's party: it holds
    nothing about it, or the gate permits none of it. One message for both, true for
    both, so the answer does not say whether the person is a participant."""

    def __init__(self, party: str) -> None:
        super().__init__(
            f"nothing the hub holds about that number may be shown to {party}: either it "
            f"holds nothing about it, or consent does not let {party} see any of it"
        )


class StatusView(BaseModel):
    """What the viewer may see about the person (by pseudonym; the number is never echoed)."""

    model_config = ConfigDict(frozen=True)

    participant: str
    protected_identity: bool
    viewer_party: str
    at: datetime
    correlation_id: str
    summary: CaseSummary
    entries: list[StatusEntry]


def _view_event(
    viewer: Viewer,
    pseudonym: str,
    at: datetime,
    correlation_id: str,
    *,
    shown: list[StatusEntry],
    found: bool,
) -> LedgerEvent:
    return LedgerEvent(
        time=at,
        action=Action.VIEW,
        outcome=Outcome.SUCCESS if found else Outcome.MINOR_FAILURE,
        reason=f"shown {len(shown)} records" if found else "not_a_participant",
        recipient=viewer.party,
        actor=viewer.actor,
        role=viewer.role,
        purpose=Purpose.COORDINATION.value,
        categories=tuple(sorted({e.category for e in shown})),
        participant=pseudonym,
        correlation_id=correlation_id,
    )


def _records(session: Session, participant_id: int) -> list[StoredRecord]:
    return list(
        session.scalars(
            select(StoredRecord)
            .where(StoredRecord.participant_id == participant_id)
            .order_by(StoredRecord.updated_at.desc(), StoredRecord.id.desc())
        )
    )


def _permitted(
    session: Session,
    participant: ParticipantRow,
    records: list[StoredRecord],
    viewer: Viewer,
    at: datetime,
    correlation_id: str,
) -> list[StatusEntry]:
    """The records the gate lets ``viewer`` see; one recorded decision per (origin,
    category, restricted mark)."""
    requests = {
        (origin, category, restricted): DecisionRequest(
            origin,
            viewer.party,
            category,
            Purpose.COORDINATION.value,
            at,
            restricted_origin=restricted,
        )
        for origin, category, restricted in {(r.source, r.category, r.restricted) for r in records}
    }
    allowed = gate_for(session, participant).permitted_keys(
        requests, actor=viewer.actor, role=viewer.role, correlation_id=correlation_id
    )
    return [StatusEntry.of(r) for r in records if (r.source, r.category, r.restricted) in allowed]


def consolidated_status(
    hub: Hub, identity: PersonalIdentity, viewer: Viewer, *, clock: Clock = utc_now
) -> StatusView:
    """The person's status as ``viewer`` may see it now, logged now (``clock`` gives now;
    tests set it).

    Raises :class:`NothingToShow` (after logging the look-up) when the gate lets the viewer
    see none of the person's records, and when the hub holds no participant with that
    number: the same error, so the caller cannot tell the two apart.
    """
    hub.require_schema()
    keys = hub.keys  # loaded first: a first load may record them, which needs the writer
    correlation_id = str(uuid.uuid4())
    view: StatusView | None = None
    with hub.db.session(write_lock=True) as session:
        # Now, once the writer's turn is ours: a withdrawal committed while we waited for
        # it was recorded before this instant, so it applies.
        at = clock()
        participant = ParticipantRepository(session, keys).find(identity)
        if participant is None:
            pseudonym = keys.pseudonym(identity.number)
            append(
                session, _view_event(viewer, pseudonym, at, correlation_id, shown=[], found=False)
            )
        else:
            records = _records(session, participant.id)
            shown = _permitted(session, participant, records, viewer, at, correlation_id)
            append(
                session,
                _view_event(
                    viewer, participant.pseudonym, at, correlation_id, shown=shown, found=True
                ),
            )
            if shown:  # the person, their pseudonym and flag: only heading what may be seen
                view = StatusView(
                    participant=participant.pseudonym,
                    protected_identity=participant.protected_identity,
                    viewer_party=viewer.party,
                    at=at,
                    correlation_id=correlation_id,
                    summary=summarise(shown, at.astimezone(SWEDEN).date()),
                    entries=shown,
                )
    if view is None:
        raise NothingToShow(viewer.party)
    return view
