"""What the built-in connectors check of an authority's data beyond its schema.

Two kinds of check, with two kinds of refusal:

* Converting a record into the common model: a value the schema allows but Python cannot
  hold (a time that falls outside years 1-9999 once moved to UTC, epoch milliseconds too
  large for a date) is :class:`~hub.connector.InvalidRecordError` for that record alone,
  naming the field and never the value, like any other schema violation.
* Following the feed: the field a connector resumes from (its cursor) and the paging
  envelope must make sense, or the pull could loop forever or jump past records it never
  read. A feed that breaks its own API is :class:`~hub.connector.AuthorityError`: the pull
  stops after the records it already yielded, and the sync records the connector as
  failed and keeps what it stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.connector.errors import InvalidRecordError

OUT_OF_RANGE = "out of range (not a time between the years 1 and 9999 in UTC)"
"""The problem named when a time cannot be converted to UTC."""

FUTURE_TOLERANCE = timedelta(days=1)
"""How far ahead of this machine's clock a change time may lie (clocks drift; a record
cannot have changed in the future). A cursor beyond it would skip every record up to it."""


def as_utc(connector: str, source_id: str, field: str, value: datetime) -> datetime:
    """``value`` (aware) in UTC, or :class:`InvalidRecordError` naming ``field`` if it has
    no UTC equivalent (``0001-01-01T00:00:00+01:00``, ``9999-12-31T23:59:59-01:00``)."""
    try:
        return value.astimezone(UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidRecordError(connector, source_id, [f"{field}: {OUT_OF_RANGE}"]) from None


def latest_plausible() -> datetime:
    """The latest change time a pull accepts as a cursor now (see FUTURE_TOLERANCE)."""
    return datetime.now(UTC) + FUTURE_TOLERANCE
