"""Read the records follow-up statistics need: referrals and closures, filtered in SQL.

Only the columns the measures and the gate need are read (dates, update time, outcome and
reason codes, origin, category, the restricted mark and the payload digest), never whole
bodies; and only the records that can place someone in the period (see
:func:`facts_for_period`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from hub.stats.cases import CLOSURE, REFERRAL, Kind, Step
from hub.store.tables.sync import StoredRecord

__all__ = ["CLOSURE", "REFERRAL", "Fact", "Kind", "facts_for_period"]


@dataclass(frozen=True, slots=True)
class Fact:
    """One stored referral or closure, reduced to what the statistics use.

    ``on`` is the referral's ``received_on`` or the closure's ``closed_on``; ``outcome``
    and ``reason`` are the closure's codes (``None`` for a referral); ``updated_at`` is
    the record's update time, which orders records of the same day
    (:mod:`hub.stats.cases`).
    """

    origin: str
    category: str
    restricted: bool
    payload_sha256: str
    kind: Kind
    on: date
    updated_at: datetime
    outcome: str | None = None
    reason: str | None = None

    @property
    def gate_key(self) -> tuple[str, str, bool]:
        """What one gate decision covers: origin, category and the restricted mark."""
        return (self.origin, self.category, self.restricted)

    def step(self) -> Step:
        """What the case definition reads of it."""
        return Step(self.kind, self.on, self.updated_at, self.origin, self.outcome, self.reason)


def facts_for_period(session: Session, start: date, end: date) -> dict[int, list[Fact]]:
    """The stored referrals and closures that can place anyone in ``start``..``end``, by
    participant id.

    The people: everyone whose records, by their dates, may give them a case open on a day
    of the period (:mod:`hub.stats.cases`): a referral or closure dated in it; or none in
    it, but a case open when it starts (the last record before it is a referral), or a
    closed case whose end a closure after the period moves (the last record before it and
    the first after it are closures). The records: each such person's referrals and
    closures dated before their first referral after the period, which opens a case of
    its own; nothing after that can change where they count. The query works this out in
    the database, so only these records are read.
    """
    r = StoredRecord
    first, last = start.isoformat(), end.isoformat()  # ISO dates compare as text
    on = case(
        (r.kind == REFERRAL, r.body["received_on"].as_string()),
        else_=r.body["closed_on"].as_string(),
    )
    # the date with 0 for a referral, 1 for a closure: the order of the walk, so that the
    # greatest before the period is the last record before it, the least after the first
    walk = on.concat(case((r.kind == REFERRAL, literal("0")), else_=literal("1")))
    kinds = r.kind.in_((REFERRAL, CLOSURE))
    person = (
        select(
            r.participant_id.label("participant_id"),
            func.max(case((on < first, walk))).label("last_before"),
            func.min(case((on > last, walk))).label("first_after"),
            func.max(case((and_(on >= first, on <= last), 1), else_=0)).label("within"),
            func.min(case((and_(r.kind == REFERRAL, on > last), on))).label("next_referral"),
        )
        .where(kinds)
        .group_by(r.participant_id)
        .subquery()
    )
    relevant: ColumnElement[bool] = or_(
        person.c.within == 1,
        person.c.last_before.like("%0"),
        and_(person.c.last_before.like("%1"), person.c.first_after.like("%1")),
    )
    rows = session.execute(
        select(
            r.participant_id,
            r.source,
            r.category,
            r.restricted,
            r.payload_sha256,
            r.kind,
            on,
            r.updated_at,
            r.body["outcome"].as_string(),
            r.body["reason"].as_string(),
        )
        .join(person, person.c.participant_id == r.participant_id)
        .where(
            kinds,
            relevant,
            or_(person.c.next_referral.is_(None), on < person.c.next_referral),
        )
        .order_by(r.participant_id, r.id)
    )
    facts: dict[int, list[Fact]] = defaultdict(list)
    for pid, origin, category, restricted, digest, kind, day, updated, outcome, why in rows:
        fact = Fact(
            origin,
            category,
            bool(restricted),
            digest,
            REFERRAL if kind == REFERRAL else CLOSURE,
            date.fromisoformat(day),
            updated,
            outcome if kind == CLOSURE else None,
            why if kind == CLOSURE else None,
        )
        facts[pid].append(fact)
    return dict(facts)
