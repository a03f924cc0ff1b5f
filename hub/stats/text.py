"""The follow-up report as text: one small table per measure, women / men / total.

:func:`tables` and :data:`LEGEND` are what any rendering shows (the web page uses them
too): the rows of each table, and what the suppression markers mean. So do
:func:`decided` (when the figures were decided), :func:`counted_to` (a period cut at the
day the report was made) and :data:`~hub.stats.report.CHANGES` (why a report made again
may differ): every output, text, CSV and page, says them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from hub.clock import swedish_minute
from hub.stats.report import CHANGES, SMALL_CELL_LIMIT, Cell, FollowUpReport, Split

_LABEL = 30
_WIDTH = 7

Table = tuple[str, list[tuple[str, Split]]]
"""A table's title and its rows: (label, women / men / total)."""

LEGEND = (
    f"<{SMALL_CELL_LIMIT}: between 1 and {SMALL_CELL_LIMIT - 1} people, not shown so that "
    "no one can be singled out.",
    f"x: not shown either, so that a <{SMALL_CELL_LIMIT} cell cannot be worked out from "
    "the others.",
)
"""What the markers of suppressed cells mean (see :meth:`hub.stats.report.Cell.text`)."""

LEFT_OUT = (
    "Left out: gate did not permit",
    ("entirely (in no figure)", "partly (may be incomplete)"),
)
"""The title and row labels of the people the gate left out (``left_out``,
``partly_left_out``)."""


def decided_time(report: FollowUpReport) -> str:
    """When the gate was asked, in Swedish time with its zone (``2025-08-04 09:30 CEST``)."""
    return swedish_minute(report.decided_at, zone=True)


def decided(report: FollowUpReport) -> str:
    """The sentence saying when, and under what, the figures were decided."""
    return (
        f"Decided {decided_time(report)} under the consents in force and the records stored then."
    )


def counted_to(report: FollowUpReport) -> str | None:
    """The sentence saying that the period was cut at the day the report was made, if it was."""
    if report.period_end_requested is None:
        return None
    return (
        f"The period asked for ends {report.period_end_requested}, after the day the report "
        f"was made: it is counted up to {report.period_end}."
    )


def tables(report: FollowUpReport) -> list[Table]:
    """The report's tables; breakdown rows with no one in them are left out (the JSON
    keeps every code)."""
    return [
        (
            "Participants",
            [
                ("new (case opened)", report.new),
                ("active (case open)", report.active),
                ("closed (case closed)", report.closed),
            ],
        ),
        ("Closed, by outcome", _shown(report.closed_by_outcome.items())),
        ("Closed, by reason", _shown(report.closed_by_reason.items())),
    ]


def render_text(report: FollowUpReport) -> str:
    """The report for a terminal or an e-mail; every count already suppressed."""
    lines = [
        f"Follow-up {report.period_start} to {report.period_end} (both days included), "
        f"purpose: {report.purpose}",
        *filter(None, [counted_to(report)]),
        decided(report),
        "",
    ]
    for title, rows in tables(report):
        lines += _table(title, rows)
    title, (entirely, partly) = LEFT_OUT
    lines += [
        f"{title:<{_LABEL}}{'total':>{_WIDTH * 3}}",
        f"  {entirely:<{_LABEL - 2}}{_cell(report.left_out, _WIDTH * 3)}",
        f"  {partly:<{_LABEL - 2}}{_cell(report.partly_left_out, _WIDTH * 3)}",
        "",
        *LEGEND,
        *textwrap.wrap(CHANGES, width=90),
        f"The gate's decisions are in the transfer log, correlation id {report.correlation_id}.",
    ]
    return "\n".join(lines)


def _shown(rows: Iterable[tuple[str, Split]]) -> list[tuple[str, Split]]:
    """Rows with someone in them (zero rows stay in the JSON, not in the text)."""
    return [(label, split) for label, split in rows if split.total.count != 0]


def _table(title: str, rows: list[tuple[str, Split]]) -> list[str]:
    head = f"{title:<{_LABEL}}" + "".join(f"{c:>{_WIDTH}}" for c in ("women", "men", "total"))
    body = [
        f"  {label:<{_LABEL - 2}}"
        + "".join(_cell(c, _WIDTH) for c in (split.women, split.men, split.total))
        for label, split in rows
    ]
    return [head, *(body or ["  (none)"]), ""]


def _cell(cell: Cell, width: int) -> str:
    return f"{cell.text():>{width}}"
