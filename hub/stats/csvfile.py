"""The follow-up report as CSV, for a steering group's spreadsheet or the annual report.

One row per figure: ``table, row, women, men, total``, the same tables and rows as the text
and the web page (:func:`hub.stats.text.tables`), then the people the gate left out, with
the period, when the figures were decided, the legend and why a report made again may
differ as comment-free leading and trailing rows so the file explains itself when opened
alone. Suppressed cells keep their markers (``<5``, ``x``): a spreadsheet must not turn
them into numbers. Python's :mod:`csv` writes it; row labels from code lists go through
:func:`hub.spreadsheet.cell_text`.
"""

from __future__ import annotations

import csv
import io

from hub.spreadsheet import cell_text
from hub.stats.report import CHANGES, FollowUpReport
from hub.stats.text import LEFT_OUT, LEGEND, counted_to, decided, tables

HEADER = ("table", "row", "women", "men", "total")


def render_csv(report: FollowUpReport) -> str:
    """The report as CSV text (UTF-8 when encoded; comma-separated, quoted as needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("period", f"{report.period_start} to {report.period_end}", "", "", ""))
    writer.writerow(("purpose", report.purpose, "", "", ""))
    if (cut := counted_to(report)) is not None:
        writer.writerow(("counted to", cut, "", "", ""))
    writer.writerow(("decided", decided(report), "", "", ""))
    writer.writerow(HEADER)
    for title, rows in tables(report):
        for label, split in rows:
            cells = (split.women.text(), split.men.text(), split.total.text())
            writer.writerow((title, cell_text(label), *cells))  # labels come from code lists
    title, (entirely, partly) = LEFT_OUT
    writer.writerow((title, entirely, "", "", report.left_out.text()))
    writer.writerow((title, partly, "", "", report.partly_left_out.text()))
    for line in LEGEND:
        writer.writerow(("legend", line, "", "", ""))
    writer.writerow(("changes", CHANGES, "", "", ""))
    writer.writerow(("transfer log", f"correlation id {report.correlation_id}", "", "", ""))
    return out.getvalue()
