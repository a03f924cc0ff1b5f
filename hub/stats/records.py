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

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from hub.stats.cases import CLOSURE, REFERRAL, Kind, Step
from hub.store.tables.participant import ParticipantRow
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
    its own; nothing after that can change where they count.

    Who they are is found with two looks per person into the index ``ix_record_walk``
    (``record.walk``: the last record before the period, the first from its start), not
    by reading every stored record; then only those people's referrals and closures are
    read.
    """
    first, last = start.isoformat(), end.isoformat()  # ISO dates compare as text
    relevant = [
        pid
        for pid, last_before, first_from in session.execute(_people(first))
        if _relevant(last_before, first_from, last)
    ]
    facts: dict[int, list[Fact]] = {}
    for at in range(0, len(relevant), _CHUNK):
        for pid, found in _records(session, relevant[at : at + _CHUNK]).items():
            # the first referral after the period opens a case of its own: it and every
            # record from its day on are left out
            after = [f.on for f in found if f.kind == REFERRAL and f.on > end]
            cut = min(after, default=None)
            facts[pid] = [f for f in found if cut is None or f.on < cut]
    return facts


_CHUNK = 500  # people per IN (...) list


def _relevant(last_before: str | None, first_from: str | None, last: str) -> bool:
    """Whether a person with these walk positions (``YYYY-MM-DD`` then ``0`` for a
    referral, ``1`` for a closure: the last before the period, the first from its start)
    can have a case open on a day of it ending ``last``."""
    within = first_from is not None and first_from <= last + "1"
    if within or (last_before is not None and last_before.endswith("0")):
        return True  # a record in the period, or a case open when it starts
    # a closed case whose end a closure after the period moves (first_from is then the
    # first record after it)
    return (
        last_before is not None
        and last_before.endswith("1")
        and first_from is not None
        and first_from.endswith("1")
    )


def _people(first: str) -> Select[int, str | None, str | None]:
    """Each participant with their last walk position before ``first`` and their first
    from it: two seeks each in ``ix_record_walk`` (participant, walk)."""
    r, p = StoredRecord, ParticipantRow
    mine = r.participant_id == p.id
    last_before = select(func.max(r.walk)).where(mine, r.walk < first).scalar_subquery()
    first_from = select(func.min(r.walk)).where(mine, r.walk >= first).scalar_subquery()
    return select(p.id, last_before, first_from).order_by(p.id)


def _records(session: Session, people: list[int]) -> dict[int, list[Fact]]:
    """The referrals and closures of ``people``, each person's in storage order (by id)."""
    r = StoredRecord
    on = case(
        (r.kind == REFERRAL, r.body["received_on"].as_string()),
        else_=r.body["closed_on"].as_string(),
    )
    rows = session.execute(
        select(
            r.participant_id,
            r.id,
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
        # through ix_record_walk: only referrals and closures have a walk (the same
        # records as kind IN ('referral', 'closure'), whose bodies always have a date)
        .where(r.participant_id.in_(people), r.walk.is_not(None))
        .order_by(r.participant_id, r.walk)  # the index's order: no sort in the database
    )
    found: dict[int, list[tuple[int, Fact]]] = defaultdict(list)
    for pid, rid, origin, category, restricted, digest, kind, day, updated, outcome, why in rows:
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
        found[pid].append((rid, fact))
    # each person's in storage order, as before
    return {
        pid: [fact for _, fact in sorted(pairs, key=lambda p: p[0])] for pid, pairs in found.items()
    }
