"""The follow-up use case: the period's figures by gender, consent-gated and suppressed.

    followup(session, period_start, period_end, *, actor, at) -> FollowUpReport
        in the caller's transaction (never commits)
    followup_report(hub, period_start, period_end, *, actor, at=None) -> FollowUpReport
        what `evi stats` and the web call: reads and decides in a read-only transaction,
        then appends the decisions to the ledger in one short write transaction

Who the gate is asked about: the people whose stored referrals and closures, by their
dates, put a case of theirs in the period (see :mod:`hub.stats.cases`), every record of
theirs that can change where they count (:func:`hub.stats.records.facts_for_period`) put
to the gate (purpose ``evaluation``, origin -> joint team); the figures are then worked
out again from the permitted records only. The dates of a record the gate refuses are
never counted, but they do decide who is asked about: a person whose refused closure ended
their case before the period is not asked about, even if their permitted records alone
would count them as active. Everyone asked about is in a figure or among those left out.

A period that starts after the day the report is made (in Sweden) is refused; one that
ends after it is counted up to that day, and the report says so (``period_end`` is then
that day, ``period_end_requested`` the day asked for).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.context import Hub
from hub.ledger.writer import PreparedEntries, append_prepared, prepare_entries
from hub.stats.counting import RawFigures, place
from hub.stats.gating import gate_facts
from hub.stats.period import check_period, swedish_day
from hub.stats.records import facts_for_period
from hub.stats.report import FollowUpReport
from hub.stats.suppression import suppressed_report
from hub.store.tables.participant import ParticipantRow

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class WorkedOut:
    """A report and the ledger entries of the gate decisions behind it, not yet appended:
    the report may be shown only once they are."""

    report: FollowUpReport
    entries: PreparedEntries


def work_out(
    session: Session,
    period_start: date,
    period_end: date,
    *,
    actor: str,
    at: datetime,
) -> WorkedOut:
    """Read, ask the gate (about instant ``at``, timezone-aware, on behalf of ``actor``) and
    count; writes nothing, so ``session`` may be read-only. The caller appends
    ``entries`` (one correlation id, ``stats-…``) before it shows the report."""
    if at.tzinfo is None:
        raise ValueError("the gate needs a timezone-aware instant (UTC); got a naive datetime")
    today = swedish_day(at)
    check_period(period_start, period_end, today=today)
    last = min(period_end, today)
    correlation_id = f"stats-{uuid.uuid4()}"
    facts = facts_for_period(session, period_start, last)
    in_period = sorted(
        pid for pid, found in facts.items() if place(found, period_start, last).counted
    )
    people = _participants(session, in_period)
    answers = gate_facts(session, people, facts, actor=actor, at=at, correlation_id=correlation_id)
    raw = RawFigures()
    for person in people:
        answer = answers.by_person[person.id]
        where = place(answer.permitted, period_start, last)
        raw.add(person.gender, where)
        if answer.denied:
            if where.counted:
                raw.partly_left_out += 1
            else:
                raw.left_out += 1
    report = suppressed_report(
        raw,
        period_start=period_start,
        period_end=last,
        period_end_requested=period_end if period_end > last else None,
        decided_at=at,
        correlation_id=correlation_id,
    )
    return WorkedOut(report, prepare_entries(answers.entries))


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
    worked = work_out(session, period_start, period_end, actor=actor, at=at)
    append_prepared(session, worked.entries)
    return worked.report


def followup_report(
    hub: Hub,
    period_start: date,
    period_end: date,
    *,
    actor: str,
    at: datetime | None = None,
) -> FollowUpReport:
    """:func:`followup` in transactions of its own, the gate asked about ``at`` (default
    now).

    The records and consents are read, and the gate asked, in one read-only transaction (a
    single snapshot: SQLite's in WAL mode, PostgreSQL's with REPEATABLE READ), which holds
    no write lock: syncs, look-ups and other reports write meanwhile. Then every decision
    is appended to the ledger in one short write transaction, and only then is the report
    returned; if that append fails, nothing is returned.
    """
    at = at or datetime.now(UTC)
    check_period(period_start, period_end, today=swedish_day(at) if at.tzinfo else None)
    hub.require_schema()
    with hub.db.session() as session:
        if hub.db.dialect == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        worked = work_out(session, period_start, period_end, actor=actor, at=at)
    with hub.db.session(write_lock=True) as session:
        append_prepared(session, worked.entries)
    return worked.report


def _participants(session: Session, ids: Sequence[int]) -> list[ParticipantRow]:
    people: list[ParticipantRow] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        people.extend(session.scalars(select(ParticipantRow).where(ParticipantRow.id.in_(chunk))))
    return sorted(people, key=lambda p: p.id)
