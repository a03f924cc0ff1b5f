"""Who counts in which measure of a period, and the raw figures (women, men, total).

The measures, for a period ``start``..``end`` (both days inclusive):

* new: a case (see :mod:`hub.stats.cases`) opened in the period (by its opening
  referral; a case that began before the records the hub holds is never new);
* active: a case open on at least one day of the period (shown by the records on or before
  its end, not closed before its start);
* closed: a case closed in the period, with the outcome (utfall) and reason (slutorsak)
  of the closure that ended the person's latest such case, so each breakdown adds up to
  the closed total.

Each person counts at most once per measure. The figures here are raw: they go through
:mod:`hub.stats.suppression` before anyone sees them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from hub.model.codes import ClosureReason, OutcomeType
from hub.model.identity import Gender
from hub.stats.cases import Case, cases_of
from hub.stats.records import Fact

WOMEN: Gender = "female"
MEN: Gender = "male"


@dataclass(frozen=True, slots=True)
class Place:
    """Where one person counts in one period's figures."""

    new: bool = False
    active: bool = False
    closed: Case[Fact] | None = None

    @property
    def counted(self) -> bool:
        """In any measure at all (new and closed people are active too)."""
        return self.active


def place(facts: Iterable[Fact], start: date, end: date) -> Place:
    """Where the person with these facts counts in ``start``..``end``."""
    cases = [c for c in cases_of(facts, Fact.step) if c.overlaps(start, end)]
    closed = [c for c in cases if c.closed_on is not None and c.closed_on <= end]
    return Place(
        new=any(c.opened_on is not None and c.opened_on >= start for c in cases),
        active=bool(cases),
        closed=closed[-1] if closed else None,
    )


@dataclass(slots=True)
class Tally:
    """One row of raw counts. ``total`` also counts a gender that is neither (none today:
    the gender is read from the identity number)."""

    women: int = 0
    men: int = 0
    total: int = 0

    def add(self, gender: str) -> None:
        self.women += gender == WOMEN
        self.men += gender == MEN
        self.total += 1


def _rows(codes: Iterable[str]) -> dict[str, Tally]:
    return {code: Tally() for code in codes}


@dataclass(slots=True)
class RawFigures:
    """A period's figures before suppression: never shown as they are."""

    new: Tally = field(default_factory=Tally)
    active: Tally = field(default_factory=Tally)
    closed: Tally = field(default_factory=Tally)
    by_outcome: dict[str, Tally] = field(
        default_factory=lambda: _rows(c.value for c in OutcomeType)
    )
    by_reason: dict[str, Tally] = field(
        default_factory=lambda: _rows(c.value for c in ClosureReason)
    )
    left_out: int = 0
    partly_left_out: int = 0

    def add(self, gender: str, where: Place) -> None:
        """Count one person (once per measure they are in)."""
        if where.new:
            self.new.add(gender)
        if where.active:
            self.active.add(gender)
        if where.closed is not None:
            self.closed.add(gender)
            # a code outside the list (never, for validated bodies) still gets its own row
            self.by_outcome.setdefault(where.closed.outcome or "unknown", Tally()).add(gender)
            self.by_reason.setdefault(where.closed.reason or "unknown", Tally()).add(gender)
