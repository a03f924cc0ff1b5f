"""The clock services take, so tests can set the time: a callable giving an aware UTC time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from hub.errors import InputError

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


def parse_cut_off(text: str, name: str = "--consent-ended-before") -> datetime:
    """The instant a cut-off typed as ``text`` names, in UTC: a date ``YYYY-MM-DD`` is the
    start of that day in Sweden (midnight Swedish time, 23:00 or 22:00 UTC the day before),
    as is a time without an offset Swedish time; a time with an offset is that instant.
    :class:`InputError` naming ``name`` for anything else."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            local = datetime(day.year, day.month, day.day)
        else:
            local = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{name}: not a date; write YYYY-MM-DD (a day in Sweden), e.g. 2025-01-31"
        ) from None
    try:
        return (local if local.tzinfo else local.replace(tzinfo=SWEDEN)).astimezone(UTC)
    except OverflowError:
        raise InputError(
            f"{name}: out of range; give a day between 0001-01-02 and 9999-12-31"
        ) from None


def cut_off_text(at: datetime) -> str:
    """A cut-off as messages and the log give it: the date when it is the start of a day
    in Sweden (how :func:`parse_cut_off` reads a date), else as :func:`instant_text`."""
    try:
        local = at.astimezone(SWEDEN)
    except OverflowError:  # the last hour of 9999 in UTC is year 10000 in Sweden
        return instant_text(at)
    if local == local.replace(hour=0, minute=0, second=0, microsecond=0):
        return local.date().isoformat()
    return instant_text(at)
