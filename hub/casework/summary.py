"""The consolidated status worked out from the records a caseworker may see.

Pure functions over :class:`StatusEntry` lists: no storage, no gate. What goes in has
already passed the gate (:mod:`hub.casework.status`), so the summary can only ever be
built from what the viewer is allowed to see.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

CaseState = Literal["open", "closed", "no_case"]


class StatusEntry(BaseModel):
    """One stored record, as shown: where it came from, what it is, and its content."""

    model_config = ConfigDict(frozen=True)

    origin: str
    kind: str
    category: str
    updated_at: datetime
    body: dict[str, Any]


class CaseSummary(BaseModel):
    """Where the person's joint effort stands, across every authority the viewer may see.

    ``state`` is ``open`` after a referral with no later closure, ``closed`` when the
    latest closure is on or after the latest referral, ``no_case`` when the viewer may
    see neither.
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


def summarise(entries: list[StatusEntry], today: date) -> CaseSummary:
    """The case state, the current benefits and the ongoing interventions on ``today``."""
    referral = _latest(entries, "referral", "received_on")
    closure = _latest(entries, "closure", "closed_on")
    if closure is not None and (
        referral is None or _day(closure, "closed_on") >= _day(referral, "received_on")
    ):
        state: CaseState = "closed"
    elif referral is not None:
        state, closure = "open", None
    else:
        state = "no_case"
    return CaseSummary(
        state=state,
        referred_on=_day(referral, "received_on") if referral else None,
        referred_by=referral.body.get("referring_party") if referral else None,
        closed_on=_day(closure, "closed_on") if closure else None,
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
