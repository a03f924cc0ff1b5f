"""Swedish local time for texts to people, where the clock alone does not say which hour.

When summer time ends (the last Sunday of October) the clocks in Sweden go back from 03:00
to 02:00, so every time from 02:00 to 02:59 happens twice: first in summer time (CEST,
UTC+2), then in winter time (CET, UTC+1). A text that gives ``02:30`` alone could be
either; :func:`swedish_local` says which, and says nothing at every other time.

The last hour of 9999-12-31 in UTC is already year 10000 in Sweden, which no date can
hold: such a time (a consent or block given as lasting "forever") is given in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hub.clock import SWEDEN


def swedish_local(at: datetime) -> tuple[datetime, str]:
    """``at`` (timezone-aware) as Swedish local time, and a note to give after it:
    ``"sommartid"`` or ``"vintertid"`` in the hour Swedish clocks show twice, ``"UTC"``
    when it is past what a Swedish date can hold (then the time is UTC's), else ``""``."""
    try:
        local = at.astimezone(SWEDEN)
    except OverflowError:
        return at.astimezone(UTC), "UTC"
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return local, ""
    return local, "vintertid" if local.fold else "sommartid"


def repeated_hour_note(at: datetime) -> str:
    """``"sommartid"`` or ``"vintertid"`` when ``at`` falls in the hour Swedish clocks show
    twice, ``"UTC"`` past year 9999 in Sweden, else ``""`` (see :func:`swedish_local`)."""
    return swedish_local(at)[1]
