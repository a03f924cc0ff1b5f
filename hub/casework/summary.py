"""The consolidated status worked out from the records a caseworker may see.

Pure functions over :class:`StatusEntry` lists: no storage, no gate. What goes in has
already passed the gate (:mod:`hub.casework.status`), so the summary can only ever be
built from what the viewer is allowed to see.

The case is read as the follow-up statistics read it, by the one definition in
:mod:`hub.stats.cases` (which referral opens a case, which closure ends it, how a later
referral opens a new one, how records of the same day are ordered): the summary shows the
person's latest case, so its closing date, outcome and reason are the ones the statistics
count for the same records.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hub.stats.cases import CLOSURE, REFERRAL, Case, Step, cases_of
from hub.store.tables.sync import StoredRecord

CaseState = Literal["open", "closed", "no_case"]


class StatusEntry(BaseModel):
    """One stored record, as shown: where it came from, what it is, and its content."""

    model_config = ConfigDict(frozen=True)

    origin: str
    kind: str
    category: str
    updated_at: datetime
    body: dict[str, Any]

    @classmethod
    def of(cls, record: StoredRecord) -> StatusEntry:
        """The entry for a stored record."""
        return cls(
            origin=record.source,
            kind=record.kind,
            category=record.category,
            updated_at=record.updated_at,
            body=record.body,
        )


class CaseSummary(BaseModel):
    """Where the person's joint effort stands, across every authority the viewer may see:
    their latest case (:mod:`hub.stats.cases`).

    ``state`` is ``open`` while that case is open, ``closed`` once a closure has ended it,
    ``no_case`` when the viewer may see no referral or closure. ``referred_on`` and
    ``referred_by`` are the case's opening referral (``None`` for a case that began before
    the records the hub holds); ``closed_on``, ``closure_reason`` and ``outcome`` the
    closure that ended it.
    """

    model_config = ConfigDict(frozen=True)

    state: CaseState
    referred_on: date | None = None
    referred_by: str | None = None
    closed_on: date | None = None
    closure_reason: str | None = None
    outcome: str | None = None
    current_benefits: list[StatusEntry] = []
    ongoing_interventions: list[StatusEntry] = []
    latest_plan: StatusEntry | None = None


def _day(entry: StatusEntry, field: str) -> date:
    return date.fromisoformat(str(entry.body[field]))


def _latest(entries: list[StatusEntry], kind: str, field: str) -> StatusEntry | None:
    found = [e for e in entries if e.kind == kind and e.body.get(field)]
    return max(found, key=lambda e: (_day(e, field), e.updated_at), default=None)


def _current(entry: StatusEntry, today: date) -> bool:
    start, end = entry.body.get("start"), entry.body.get("end")
    if start is None or date.fromisoformat(str(start)) > today:
        return False
    return end is None or date.fromisoformat(str(end)) >= today


_DATE_OF = {REFERRAL: "received_on", CLOSURE: "closed_on"}


def _step(entry: StatusEntry) -> Step:
    body = entry.body
    return Step(
        entry.kind,
        _day(entry, _DATE_OF[entry.kind]),
        entry.updated_at,
        entry.origin,
        body.get("outcome") if entry.kind == CLOSURE else None,
        body.get("reason") if entry.kind == CLOSURE else None,
    )


def latest_case(entries: list[StatusEntry]) -> Case[StatusEntry] | None:
    """The person's latest case, by the definition the statistics use; ``None`` without
    a dated referral or closure."""
    dated = [e for e in entries if e.kind in _DATE_OF and e.body.get(_DATE_OF[e.kind])]
    cases = cases_of(dated, _step)
    return cases[-1] if cases else None


def summarise(entries: list[StatusEntry], today: date) -> CaseSummary:
    """The case state, the current benefits and the ongoing interventions on ``today``."""
    case = latest_case(entries)
    referral = case.opening if case else None
    closure = case.closing if case else None
    state: CaseState = "no_case" if case is None else "open" if closure is None else "closed"
    return CaseSummary(
        state=state,
        referred_on=case.opened_on if case else None,
        referred_by=referral.body.get("referring_party") if referral else None,
        closed_on=case.closed_on if case else None,
        closure_reason=closure.body.get("reason") if closure else None,
        outcome=closure.body.get("outcome") if closure else None,
        current_benefits=[e for e in entries if e.kind == "benefit" and _current(e, today)],
        ongoing_interventions=[
            e
            for e in entries
            if e.kind == "intervention" and e.body.get("status") == "ongoing" and _current(e, today)
        ],
        latest_plan=_latest(entries, "plan", "established_on"),
    )
