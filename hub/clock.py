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


def swedish_local(at: datetime) -> tuple[datetime, str]:
    """``at`` (timezone-aware) as Swedish local time, and a note to give after it:
    ``"sommartid"`` or ``"vintertid"`` in the hour Swedish clocks show twice (02:00-02:59
    on the last Sunday of October), ``"UTC"`` when it is past what a Swedish date can hold
    (the last hour of 9999-12-31 in UTC: then the time is UTC's), else ``""``."""
    try:
        local = at.astimezone(SWEDEN)
    except OverflowError:
        return at.astimezone(UTC), "UTC"
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return local, ""
    return local, "vintertid" if local.fold else "sommartid"


def swedish_minute(at: datetime, *, zone: bool = False) -> str:
    """``at`` in Swedish local time to the minute, ``YYYY-MM-DD HH:MM``; with ``zone``, the
    zone's name after it (``CET``, ``CEST``), and without, the name all the same in the
    hour the clocks show twice, so two times never read the same. Past what a Swedish date
    can hold, the time in UTC, named so (the pages' language-neutral form; texts in
    Swedish use :func:`hub.text.times.minute_text`)."""
    local, note = swedish_local(at)
    if note == "UTC":
        return f"{local:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M}" + (f" {local:%Z}" if zone or note else "")
