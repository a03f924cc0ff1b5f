"""Small-cell suppression: raw figures in, a report no one can be singled out from, out.

1. Primary: every count from 1 to 4 (:data:`~hub.stats.report.SMALL_CELL_LIMIT`) is
   hidden. Zero is shown: it tells nothing about a person.
2. Complementary: a line whose cells add up (women + men = total in every row; the
   outcome rows, and the reason rows, add up to the closed total in each column) must
   not give a hidden cell back, a small one or one hidden to protect it (a complementary
   cell worked out would give the small cell back in its other line). It would if the
   line hides exactly one cell (subtraction), or if what the markers tell (``<5``: 1 to
   4; ``x``: 5 or more) pins a hidden cell to one value: ``<5, x, 6`` makes the ``<5`` a
   1, two ``<5`` adding up to a shown 8 are both 4, and two ``x`` adding up to a shown
   10 are both 5. Such a line also hides its smallest other non-zero cell, a women/men or
   breakdown cell before a total (then the first in the line), and this repeats until no
   line gives one back.

The check is line by line, the usual rule for published tables; it is not a full audit of
every combination of lines, nor of several reports taken together (e.g. overlapping
periods), which is one reason reports go to the steering group, not the public. One case
it cannot mend, since every cell that could be hidden is: a total of 4 split over four
rows that are each ``<5`` makes each of them 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime

from hub.stats.counting import RawFigures, Tally
from hub.stats.report import SMALL_CELL_LIMIT, Cell, FollowUpReport, Split

Key = tuple[str, str, str]
"""(table, row, column) of one count."""

COLUMNS = ("women", "men", "total")


def suppressed_report(
    raw: RawFigures,
    *,
    period_start: date,
    period_end: date,
    decided_at: datetime,
    correlation_id: str,
    period_end_requested: date | None = None,
) -> FollowUpReport:
    """The publishable report of ``raw`` (``period_end_requested``: see
    :class:`~hub.stats.report.FollowUpReport`)."""
    grid = _grid(raw)
    small = {k for k, v in grid.items() if 0 < v < SMALL_CELL_LIMIT}
    hidden = _complete(grid, small, list(_lines(raw)))

    def cell(key: Key) -> Cell:
        if key not in hidden:
            return Cell(count=grid[key])
        return Cell(
            count=None, suppressed=True, rule="small_cell" if key in small else "complementary"
        )

    def split(table: str, row: str) -> Split:
        women, men, total = (cell((table, row, c)) for c in COLUMNS)
        return Split(women=women, men=men, total=total)

    return FollowUpReport(
        period_start=period_start,
        period_end=period_end,
        period_end_requested=period_end_requested,
        decided_at=decided_at,
        correlation_id=correlation_id,
        new=split("measure", "new"),
        active=split("measure", "active"),
        closed=split("measure", "closed"),
        closed_by_outcome={code: split("outcome", code) for code in raw.by_outcome},
        closed_by_reason={code: split("reason", code) for code in raw.by_reason},
        left_out=cell(("left_out", "", "total")),
        partly_left_out=cell(("partly_left_out", "", "total")),
    )


def _tallies(raw: RawFigures) -> Iterator[tuple[str, str, Tally]]:
    yield "measure", "new", raw.new
    yield "measure", "active", raw.active
    yield "measure", "closed", raw.closed
    for code, tally in raw.by_outcome.items():
        yield "outcome", code, tally
    for code, tally in raw.by_reason.items():
        yield "reason", code, tally


def _grid(raw: RawFigures) -> dict[Key, int]:
    grid: dict[Key, int] = {}
    for table, row, tally in _tallies(raw):
        for column in COLUMNS:
            grid[(table, row, column)] = getattr(tally, column)
    grid[("left_out", "", "total")] = raw.left_out
    grid[("partly_left_out", "", "total")] = raw.partly_left_out
    return grid


def _lines(raw: RawFigures) -> Iterator[tuple[list[Key], Key]]:
    """Every line that sums: (its parts, its total)."""
    for table, row, _ in _tallies(raw):
        yield [(table, row, "women"), (table, row, "men")], (table, row, "total")
    for table, rows in (("outcome", raw.by_outcome), ("reason", raw.by_reason)):
        for column in COLUMNS:
            yield [(table, code, column) for code in rows], ("measure", "closed", column)


def _complete(
    grid: Mapping[Key, int], small: set[Key], lines: list[tuple[list[Key], Key]]
) -> set[Key]:
    """Hide more cells until no summing line gives a hidden cell back (terminates: the
    hidden set only grows, and the grid is finite)."""
    hidden = set(small)
    changed = True
    while changed:
        changed = False
        for parts, total in lines:
            members = [*parts, total]
            if not _gives_away(grid, small, hidden, parts, total):
                continue
            shown = [k for k in members if k not in hidden and grid[k] > 0]
            if not shown:  # everything that could still be hidden is: see the docstring
                continue
            hidden.add(min(shown, key=lambda k: (k == total, grid[k], members.index(k))))
            changed = True
    return hidden


def _gives_away(
    grid: Mapping[Key, int], small: set[Key], hidden: set[Key], parts: list[Key], total: Key
) -> bool:
    """Whether the line lets a hidden cell, small or complementary, be worked out: by
    subtraction (it is the only one hidden) or from the markers' bounds (``<5``, ``x``)."""
    members = [*parts, total]

    def bounds(key: Key) -> tuple[float, float]:
        if key not in hidden:
            return grid[key], grid[key]
        return (1, SMALL_CELL_LIMIT - 1) if key in small else (SMALL_CELL_LIMIT, math.inf)

    for cell in members:
        if cell not in hidden:
            continue
        others = [bounds(k) for k in parts if k != cell]
        if cell == total:
            low, high = sum(b[0] for b in others), sum(b[1] for b in others)
        else:
            total_low, total_high = bounds(total)
            low = total_low - sum(b[1] for b in others)
            high = total_high - sum(b[0] for b in others)
        own_low, own_high = bounds(cell)
        if max(own_low, low) >= min(own_high, high):
            return True
    return False
