"""The follow-up report's tables as the page shows them, in the page's language.

:func:`hub.stats.text.tables` gives the report's titles and row labels in English (the CLI
and the CSV show them so) and the breakdown rows as codes; here each becomes a text of the
page catalog (:mod:`hub.web.i18n`), codes as words (:mod:`hub.web.record_text`).
tests/unit/test_web_i18n.py checks
that every title, label and code the report can have is here, and that the English of the
legend is :data:`hub.stats.text.LEGEND` word for word.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request

from hub.spreadsheet import cell_text
from hub.stats.report import SMALL_CELL_LIMIT, FollowUpReport
from hub.stats.text import LEFT_OUT, decided_time, tables
from hub.web.i18n import N_, language_for, tr
from hub.web.record_text import CODE_NAMES

LABELS: Final = (
    # the titles and labels of hub.stats.text, marked for the catalog
    N_("Participants"),
    N_("new (case opened)"),
    N_("active (case open)"),
    N_("closed (case closed)"),
    N_("Closed, by outcome"),
    N_("Closed, by reason"),
    N_("Left out: gate did not permit"),
    N_("entirely (in no figure)"),
    N_("partly (may be incomplete)"),
)

LEGEND: Final = (
    N_("<%(limit)s: between 1 and %(most)s people, not shown so that no one can be singled out."),
    N_("x: not shown either, so that a <%(limit)s cell cannot be worked out from the others."),
)

DECIDED: Final = N_("Decided %(at)s under the consents in force and the records stored then.")
COUNTED_TO: Final = N_(
    "The period asked for ends %(asked)s, after the day the report was made: it is counted "
    "up to %(end)s."
)
CHANGES: Final = N_(
    "A withdrawal, an expired consent, retention (records removed) or a record that arrives "
    "later changes the figures, those of earlier periods too: the same report made again "
    "may differ."
)
"""The English of each is :mod:`hub.stats.text`'s (``decided``, ``counted_to``) and
:data:`hub.stats.report.CHANGES`, word for word (tests/unit/test_web_stats.py)."""


def label(request: Request, text: str) -> str:
    """A title or label of the report, or a code of its breakdowns, as words."""
    return tr(request, CODE_NAMES.get(text, text))


def page_tables(request: Request, report: FollowUpReport) -> dict[str, Any]:
    """The page's ``tables``, ``left_out``, ``legend``, ``decided``, ``counted_to`` and
    ``changes``, in the request's language."""
    title, (entirely, partly) = LEFT_OUT
    asked = report.period_end_requested
    return {
        "decided": tr(request, DECIDED, at=decided_time(report)),
        "counted_to": None
        if asked is None
        else tr(request, COUNTED_TO, asked=asked.isoformat(), end=report.period_end.isoformat()),
        "changes": tr(request, CHANGES),
        "tables": [
            (label(request, name), [(label(request, row), split) for row, split in rows])
            for name, rows in tables(report)
        ],
        "left_out": (label(request, title), (label(request, entirely), label(request, partly))),
        "legend": [
            tr(request, line, limit=SMALL_CELL_LIMIT, most=SMALL_CELL_LIMIT - 1) for line in LEGEND
        ],
    }


SHEET_SEPARATOR: Final = {"sv": ";", "en": ","}
"""What a spreadsheet program set up for the language takes as the column separator: a
Swedish Excel reads ``;`` (the comma is its decimal sign), an English one ``,``."""


def sheet_href(request: Request, report: FollowUpReport, page: dict[str, Any]) -> str:
    """The report as the page shows it (its language, its tables) for a spreadsheet set up
    for that language, as a ``data:`` URL: the page's separator, CRLF line ends and a byte
    order mark, without which Excel reads UTF-8 (å, ä, ö) as another code page. The
    English CSV of `/stats.csv` stays what programs read."""
    out = io.StringIO()
    sep = SHEET_SEPARATOR[language_for(request)]
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n")
    period = tr(request, "%(start)s to %(end)s", start=report.period_start, end=report.period_end)
    writer.writerow((tr(request, "Follow-up statistics"), period))
    if page["counted_to"]:
        writer.writerow((page["counted_to"],))
    writer.writerow((page["decided"],))
    heads = (tr(request, "women"), tr(request, "men"), tr(request, "total"))
    for title, rows in page["tables"]:
        writer.writerow(())
        writer.writerow((cell_text(title), *heads))
        for row, split in rows:
            writer.writerow(
                (cell_text(row), split.women.text(), split.men.text(), split.total.text())
            )
    title, (entirely, partly) = page["left_out"]
    writer.writerow(())
    writer.writerow((cell_text(title), "", "", heads[2]))
    writer.writerow((cell_text(entirely), "", "", report.left_out.text()))
    writer.writerow((cell_text(partly), "", "", report.partly_left_out.text()))
    writer.writerow(())
    for line in (*page["legend"], page["changes"]):
        writer.writerow((line,))
    return "data:text/csv;charset=utf-8," + quote("\ufeff" + out.getvalue(), safe="")
