"""Swedish local time for texts to people, where the clock alone does not say which hour.

When summer time ends (the last Sunday of October) the clocks in Sweden go back from 03:00
to 02:00, so every time from 02:00 to 02:59 happens twice: first in summer time (CEST,
UTC+2), then in winter time (CET, UTC+1). A text that gives ``02:30`` alone could be
either; :func:`hub.clock.swedish_local` says which, and says nothing at every other time.

The last hour of 9999-12-31 in UTC is already year 10000 in Sweden, which no date can
hold: such a time (a consent or block given as lasting "forever") is given in UTC.
"""

from __future__ import annotations

from datetime import datetime

from hub.clock import swedish_local


def minute_text(at: datetime) -> str:
    """``at`` in Swedish time to the minute, as the extracts give every time; in the hour
    the clocks show twice when summer time ends, ``(sommartid)`` or ``(vintertid)`` after
    it, so that two different times never read the same; past year 9999 in Sweden, UTC's
    time with ``(UTC)``."""
    local, note = swedish_local(at)
    return f"{local:%Y-%m-%d %H:%M}" + (f" ({note})" if note else "")
