"""A person's referrals and closures as cases (ärenden): the hub's one definition of a case.

The follow-up statistics (:mod:`hub.stats.counting`) and the caseworker's summary
(:mod:`hub.casework.summary`) both read cases through :func:`cases_of`, so a closing date
or an outcome can never differ between the two for the same records.

Several authorities may refer the same person, and several may report the end of the same
joint effort, so records are not cases. Walking a person's referrals and closures in order:

* a referral while no case is open opens one: that referral is the case's *opening* (its
  ``received_on`` is the day the case opened, its referring party the one who referred);
  a referral while a case is open belongs to that case;
* a closure while a case is open closes it (on its ``closed_on``, with its outcome and
  reason);
* a closure while no case is open, when a case has closed with no referral since, is a
  later report of the end of that case (another authority's exit from the same joint
  effort): the case now ends on it, with its outcome and reason. So a case ends with the
  last closure before the next referral;
* a closure when the person has no case yet ends a case that began before the records the
  hub holds (referred before the hub went live, or the referral has not arrived): it has no
  opening, and the records show it from that closure's day;
* a referral after a closure opens a new case (the person is referred again).

The order: by date (a referral's ``received_on``, a closure's ``closed_on``); on the same day
referrals before closures, so a closure dated the day of a referral closes that case; then
by the record's update time (``updated_at``), earliest first, so of two closures of the
same day the one updated last ends the case; records updated at the very same instant go
by origin, outcome and reason, so the result never depends on storage order.

Only records dated up to a day can change where a case stands on that day, except that a
closure dated later can move the end of a case that had closed (see above): the case of a
person whose first authority let go in January and whose second let go in March is open
until March.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Generic, Literal, TypeVar

REFERRAL: Final = "referral"
CLOSURE: Final = "closure"

Kind = Literal["referral", "closure"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Step:
    """What the case definition reads of one referral or closure."""

    kind: str
    on: date
    updated_at: datetime
    origin: str
    outcome: str | None = None
    reason: str | None = None

    def order(self) -> tuple[date, bool, datetime, str, str, str]:
        """Where the record goes in a person's walk (see the module's docstring)."""
        return (
            self.on,
            self.kind != REFERRAL,
            self.updated_at,
            self.origin,
            self.outcome or "",
            self.reason or "",
        )


@dataclass(frozen=True, slots=True)
class Case(Generic[R]):
    """One period of participation.

    ``opening`` is the referral that opened it (``None`` for a case that began before the
    records the hub holds); ``closing`` the closure that ended it (``None`` while open).
    ``since`` is the first day the records show it: the opening's date, else its first
    closure's.
    """

    since: date
    opening: R | None = None
    opened_on: date | None = None
    closing: R | None = None
    closed_on: date | None = None
    outcome: str | None = None
    reason: str | None = None

    def overlaps(self, start: date, end: date) -> bool:
        """Open on at least one day of ``start``..``end`` (both inclusive), as far as the
        records show it."""
        return self.since <= end and (self.closed_on is None or self.closed_on >= start)


def cases_of(records: Iterable[R], step: Callable[[R], Step]) -> list[Case[R]]:
    """The person's cases, oldest first; ``step`` reads what the definition needs of a
    record (its kind, date, update time, origin and a closure's codes). Records of other
    kinds are skipped."""
    walk = sorted(
        ((step(record), record) for record in records),
        key=lambda pair: pair[0].order(),
    )
    cases: list[Case[R]] = []
    current: Case[R] | None = None  # the latest case, open or closed
    for s, record in walk:
        if s.kind == REFERRAL:
            if current is None or current.closed_on is not None:
                if current is not None:
                    cases.append(current)
                current = Case(since=s.on, opening=record, opened_on=s.on)
        elif s.kind == CLOSURE:
            since = s.on if current is None else current.since
            opening = None if current is None else current.opening
            opened_on = None if current is None else current.opened_on
            current = Case(since, opening, opened_on, record, s.on, s.outcome, s.reason)
    if current is not None:
        cases.append(current)
    return cases
