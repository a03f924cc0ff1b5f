"""The period a report covers: one parser for `evi stats` and the web page and API.

    parse_period(start, end, names=("from", "to")) -> (first day, last day)
    check_period(first, last, names=None)

A date is written ``YYYY-MM-DD``; both days are included. A message names the option or
field (``--from``, ``from``, …) and never echoes the text given, which could be anything
someone typed, a personnummer included.
"""

from __future__ import annotations

import re
from datetime import date

from hub.errors import InputError

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_day(text: str | None, name: str) -> date:
    """The day ``text`` names (``YYYY-MM-DD``); :class:`InputError` naming ``name`` if it is
    missing, blank or not such a date."""
    text = (text or "").strip()
    if not text:
        raise InputError(f"{name}: missing; write a date as YYYY-MM-DD, e.g. 2025-01-31")
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(name)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{name}: not a date; write a date as YYYY-MM-DD, e.g. 2025-01-31"
        ) from None


def check_period(
    period_start: date, period_end: date, names: tuple[str, str] | None = None
) -> None:
    """Raise :class:`InputError` when the period ends before it starts; ``names`` are the
    options or fields the two days came from, for the message."""
    if period_end >= period_start:
        return
    if names is None:
        raise InputError(
            f"the period ends ({period_end}) before it starts ({period_start}); "
            "give an end date on or after the start date"
        )
    first, last = names
    raise InputError(
        f"{last} {period_end} is before {first} {period_start}; give a {last} on or after {first}"
    )


def parse_period(
    start: str | None, end: str | None, names: tuple[str, str] = ("from", "to")
) -> tuple[date, date]:
    """The first and last day of the period typed as ``start`` and ``end``; the first
    problem found raises :class:`InputError` naming its field (``names``)."""
    first, last = parse_day(start, names[0]), parse_day(end, names[1])
    check_period(first, last, names)
    return first, last
