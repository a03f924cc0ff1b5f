"""The follow-up use case: the period's figures by gender, consent-gated and suppressed.

    followup(session, period_start, period_end, *, actor, at) -> FollowUpReport
        in the caller's transaction (never commits)
    followup_report(hub, period_start, period_end, *, actor, at=None) -> FollowUpReport
        in a transaction of its own: what `evi stats` calls

Who the gate is asked about: the people whose stored referrals and closures, by their
dates, put a case of theirs in the period (see :mod:`hub.stats.cases`). For each of them
every referral and closure up to the period's end goes through the gate (purpose
``evaluation``, origin -> joint team); the figures are then worked out again from the
permitted records only. The dates of a record the gate refuses are never counted, but
they do decide who is asked about, and so who can be counted at all: a person whose
refused closure ended their case before the period is not asked about, even if their
permitted records alone would count them as active.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.context import Hub
from hub.stats.counting import RawFigures, place
from hub.stats.gating import gate_facts
from hub.stats.period import check_period
from hub.stats.records import facts_until
from hub.stats.report import FollowUpReport
from hub.stats.suppression import suppressed_report
from hub.store.tables.participant import ParticipantRow

_CHUNK = 500  # ids per IN (...) list


def followup(
    session: Session,
    period_start: date,
    period_end: date,
    *,
    actor: str,
    at: datetime,
) -> FollowUpReport:
    """The report for ``period_start``..``period_end`` (both inclusive), the gate asked
    about instant ``at`` (timezone-aware) on behalf of ``actor``; every decision goes to
    the ledger in ``session``'s transaction under one correlation id (``stats-…``)."""
    check_period(period_start, period_end)
    if at.tzinfo is None:
        raise ValueError("the gate needs a timezone-aware instant (UTC); got a naive datetime")
    correlation_id = f"stats-{uuid.uuid4()}"
    facts = facts_until(session, period_end)
    in_period = sorted(
        pid for pid, found in facts.items() if place(found, period_start, period_end).counted
    )
    people = _participants(session, in_period)
    gated = gate_facts(session, people, facts, actor=actor, at=at, correlation_id=correlation_id)
    raw = RawFigures()
    for person in people:
        answer = gated[person.id]
        where = place(answer.permitted, period_start, period_end)
        raw.add(person.gender, where)
        if answer.denied:
            if where.counted:
                raw.partly_left_out += 1
            else:
                raw.left_out += 1
    return suppressed_report(
        raw,
        period_start=period_start,
        period_end=period_end,
        decided_at=at,
        correlation_id=correlation_id,
    )


def followup_report(
    hub: Hub,
    period_start: date,
    period_end: date,
    *,
    actor: str,
    at: datetime | None = None,
) -> FollowUpReport:
    """:func:`followup` in its own transaction, the gate asked about ``at`` (default now).

    The transaction takes SQLite's write lock up front: it reads, then appends to the
    ledger (see :mod:`hub.ledger.writer`).
    """
    check_period(period_start, period_end)
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        return followup(session, period_start, period_end, actor=actor, at=at or datetime.now(UTC))


def _participants(session: Session, ids: Sequence[int]) -> list[ParticipantRow]:
    people: list[ParticipantRow] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        people.extend(session.scalars(select(ParticipantRow).where(ParticipantRow.id.in_(chunk))))
    return sorted(people, key=lambda p: p.id)
