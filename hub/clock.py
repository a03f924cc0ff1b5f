"""The clock services take, so tests can set the time: a callable giving an aware UTC time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]

SWEDEN = ZoneInfo("Europe/Stockholm")
"""Swedish local time: how every text for people (pages, extracts, receipts) gives a time."""


def utc_now() -> datetime:
    """Now, in UTC (the default :data:`Clock`)."""
    return datetime.now(UTC)


def instant_text(at: datetime) -> str:
    """``at`` as a message says it: ``YYYY-MM-DD`` when it is midnight UTC (how a cut-off
    date is usually given), else the whole instant in UTC with a ``Z``."""
    at = at.astimezone(UTC)
    if at == at.replace(hour=0, minute=0, second=0, microsecond=0):
        return at.date().isoformat()
    return at.isoformat().replace("+00:00", "Z")


def swedish_minute(at: datetime, *, zone: bool = False) -> str:
    """``at`` in Swedish local time to the minute, ``YYYY-MM-DD HH:MM``; with ``zone``, the
    zone's name after it (``CET``, ``CEST``)."""
    return f"{at.astimezone(SWEDEN):%Y-%m-%d %H:%M}" + (
        f" {at.astimezone(SWEDEN):%Z}" if zone else ""
    )
