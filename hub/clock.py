"""The clock services take, so tests can set the time: a callable giving an aware UTC time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, in UTC (the default :data:`Clock`)."""
    return datetime.now(UTC)
