"""Text for a CSV cell that a spreadsheet will show as text, never run as a formula.

Spreadsheet programs treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab
or carriage return before one) as a formula, which can fetch URLs or run commands when a
privacy officer opens an export ("CSV injection", OWASP). A log entry's ``actor`` or
``reason`` can hold text someone typed, so every text cell of the hub's CSV output goes
through :func:`cell_text`, which puts an apostrophe in front of such text, the mark
spreadsheets themselves use for "this is text". Python's :mod:`csv` has no option for
this, hence these few lines.
"""

from __future__ import annotations

from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell_text(value: Any) -> str:
    """``value`` as CSV cell text (``None`` as empty), never starting like a formula."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
