"""A person's referrals and closures as cases (ärenden): periods of participation.

Several authorities may refer the same person, and several may report the end of the same
joint effort, so records are not cases. Walking a person's facts in date order:

* a referral while no case is open opens one (on its ``received_on``); a referral while a
  case is open belongs to that case;
* a closure while a case is open closes it (on its ``closed_on``, with its outcome and
  reason); a closure while none is open repeats an earlier end and is ignored.

On the same day a referral comes before a closure, so a closure dated the day of the
referral closes that case (as the caseworker's summary reads it); ties between closures of
the same day go to the origin first in alphabetical order, so the result never depends on
storage order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from hub.stats.records import REFERRAL, Fact


@dataclass(frozen=True, slots=True)
class Case:
    """One period of participation; ``closed_on`` is ``None`` while it is open."""

    opened_on: date
    closed_on: date | None = None
    outcome: str | None = None
    reason: str | None = None

    def overlaps(self, start: date, end: date) -> bool:
        """Open on at least one day of ``start``..``end`` (both inclusive)."""
        return self.opened_on <= end and (self.closed_on is None or self.closed_on >= start)


def cases_of(facts: Iterable[Fact]) -> list[Case]:
    """The person's cases, oldest first."""
    ordered = sorted(
        facts,
        key=lambda f: (f.on, f.kind != REFERRAL, f.origin, f.outcome or "", f.reason or ""),
    )
    cases: list[Case] = []
    opened: date | None = None
    for fact in ordered:
        if fact.kind == REFERRAL:
            if opened is None:
                opened = fact.on
        elif opened is not None:
            cases.append(Case(opened, fact.on, fact.outcome, fact.reason))
            opened = None
    if opened is not None:
        cases.append(Case(opened))
    return cases
