"""The period a report covers: one parser for `evi stats` and the web page and API.

    parse_period(start, end, names=("from", "to"), *, today=None) -> (first day, last day)
    check_period(first, last, names=None, *, today=None)
    swedish_day(instant) -> the date in Sweden at that instant

A date is written ``YYYY-MM-DD``; both days are included. A message names the option or
field (``--from``, ``from``, …) and never echoes the text given, which could be anything
someone typed, a personnummer included.

A period must not start after today (the date in Sweden, where the records' dates are
written): nothing can be counted in it yet. A period that ends after today is counted up
to today, and the report says so (:func:`hub.stats.followup.followup`).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from hub.clock import SWEDEN
from hub.errors import InputError

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def swedish_day(instant: datetime) -> date:
    """The date in Sweden at ``instant`` (timezone-aware): "today" for a report made then."""
    return instant.astimezone(SWEDEN).date()


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
    period_start: date,
    period_end: date,
    names: tuple[str, str] | None = None,
    *,
    today: date | None = None,
) -> None:
    """Raise :class:`InputError` when the period ends before it starts, or starts after
    ``today`` (when given); ``names`` are the options or fields the two days came from,
    for the message."""
    if today is not None and period_start > today:
        if names is None:
            said, asked = f"the period starts ({period_start})", "start date"
        else:
            said, asked = f"{names[0]} {period_start} is", names[0]
        raise InputError(
            f"{said} after today ({today}): nothing can be counted in it yet; "
            f"give a {asked} on or before {today}"
        )
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
    start: str | None,
    end: str | None,
    names: tuple[str, str] = ("from", "to"),
    *,
    today: date | None = None,
) -> tuple[date, date]:
    """The first and last day of the period typed as ``start`` and ``end``; the first
    problem found raises :class:`InputError` naming its field (``names``), a start after
    ``today`` (when given) among them."""
    first, last = parse_day(start, names[0]), parse_day(end, names[1])
    check_period(first, last, names, today=today)
    return first, last
