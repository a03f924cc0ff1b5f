"""The follow-up report as text: one small table per measure, women / men / total."""

from __future__ import annotations

from collections.abc import Iterable

from hub.stats.report import SMALL_CELL_LIMIT, Cell, FollowUpReport, Split

_LABEL = 30
_WIDTH = 7


def render_text(report: FollowUpReport) -> str:
    """The report for a terminal or an e-mail; every count already suppressed."""
    lines = [
        f"Follow-up {report.period_start} to {report.period_end} (both days included), "
        f"purpose: {report.purpose}",
        "",
    ]
    lines += _table(
        "Participants",
        [
            ("new (case opened)", report.new),
            ("active (case open)", report.active),
            ("closed (case closed)", report.closed),
        ],
    )
    lines += _table("Closed, by outcome", _shown(report.closed_by_outcome.items()))
    lines += _table("Closed, by reason", _shown(report.closed_by_reason.items()))
    lines += [
        f"{'Left out: gate did not permit':<{_LABEL}}{'total':>{_WIDTH * 3}}",
        f"  {'entirely (in no figure)':<{_LABEL - 2}}{_cell(report.left_out, _WIDTH * 3)}",
        f"  {'partly (may be incomplete)':<{_LABEL - 2}}"
        f"{_cell(report.partly_left_out, _WIDTH * 3)}",
        "",
        f"<{SMALL_CELL_LIMIT}: between 1 and {SMALL_CELL_LIMIT - 1} people, not shown so that "
        "no one can be singled out.",
        f"x: not shown either, so that a <{SMALL_CELL_LIMIT} cell cannot be worked out from "
        "the others.",
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
