"""Reading entries back: filters over the search columns and the readable record.

The readable fields always come from the stored canonical bytes (the signed truth), never
from the search columns, which only serve to find entries quickly.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from hub.clock import cut_off_text
from hub.errors import InputError
from hub.ledger.canonical import format_time, read_document
from hub.ledger.event import IDENTITY_NUMBER, Action
from hub.model.participant import PSEUDONYM
from hub.model.vocab import party_name
from hub.store.tables.ledger import BLOCK_BITS, LedgerEntryRow

EXPORT_FIELDS = (
    "time",
    "action",
    "decision",
    "outcome",
    "reason",
    "origin",
    "recipient",
    "categories",
    "purpose",
    "consent_id",
    "consent_version",
    "participant",
    "actor",
    "role",
    "payload_sha256",
    "correlation_id",
)
"""Readable fields of a JSON Lines export line, after ``seq`` and ``leaf`` (a contract)."""

_BATCH = 5_000
_MAX_SPAN = 1_024
"""Most blocks one query looks into (the participant and time indexes are per block)."""


def pseudonym_filter(value: str) -> str:
    """``value`` if it is a pseudonym; else ValueError saying what to give (not ``value``)."""
    if not PSEUDONYM.match(value):
        raise ValueError(
            "give a pseudonym, 'p-' and 32 hexadecimal digits; to search by personnummer "
            "use pnr instead"
        )
    return value


ACTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
"""A name as the log's actor column has it: a web user (``anna.af``), a CLI run
(``cli:root``), on whose behalf (``anna.af`` of ``anna.af via cli:root``), a job
(``evi-sync``)."""


def actor_filter(value: str) -> str:
    """``value`` if it can be an actor's name; else ValueError saying what to give (not
    ``value``: an identity number typed here must not be repeated, nor logged)."""
    if not ACTOR.fullmatch(value) or IDENTITY_NUMBER.search(value):
        raise ValueError(
            "give a name as the log's actor column shows it, e.g. anna.af, cli:root or "
            "evi-sync: letters, digits, '.', '_', ':', '@' or '-', at most 64, no identity "
            "number"
        )
    return value


CORRELATION = re.compile(
    r"(?:(?:stats|purge)-)?[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"  # a report, a look-up
    r"|sync-[0-9a-f]{16}"  # a night's run
    r"|evi2-[0-9a-f]{59}|evi-[0-9a-f]{60}"  # one transfer: its idempotency key (as made
    # by hub.sync.routing.idempotency_key, and before its KEY_PREFIX was evi2-)
)
"""The correlation ids the hub gives, exactly: what ties the entries of one statistics
report, purge, caseworker look-up, sync run or transfer together. Only these shapes are
taken, each at its exact length, so nothing typed by mistake (an identity number, also
with a prefix in front of it) reaches the search's own entry."""


def correlation_filter(value: str) -> str:
    """``value`` if it is a correlation id the hub gives; else ValueError (not repeating it)."""
    if not CORRELATION.fullmatch(value):
        raise ValueError(
            "give a correlation id as the log shows it: a report's stats-…, a sync run's "
            "sync-…, a transfer's evi2-…, or a look-up's id"
        )
    return value


@dataclass(frozen=True)
class LedgerQuery:
    """What to look for. ``participant`` is a pseudonym; a number never gets this far.

    ``actor`` matches the entries made by that name: as the whole actor, as the name on
    whose behalf a CLI command ran (``NAME via cli:…``), or as who ran it (``… via NAME``).

    ``after`` and ``before`` bound the sequence numbers (both exclusive): a page of a
    longer answer starts where the last one ended. ``newest_first`` reads from the newest
    match back instead of from the oldest on (the web's pages; ``limit`` then keeps the
    newest).
    """

    participant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    party: str | None = None
    decision: str | None = None
    action: Action | None = None
    actor: str | None = None
    correlation: str | None = None
    limit: int | None = None
    after: int | None = None
    before: int | None = None
    newest_first: bool = False

    def __post_init__(self) -> None:
        # Both filters are written to the log with the search (describe()), and sit next
        # to the personnummer field: a number typed into either must not get that far.
        for name, value, check in (
            ("participant", self.participant, pseudonym_filter),
            ("party", self.party, party_name),
            ("by", self.actor, actor_filter),  # the option and field that give it
            ("correlation", self.correlation, correlation_filter),
        ):
            if value is not None:
                try:
                    check(value)
                except ValueError as exc:
                    raise InputError(f"{name}: {exc}") from None
        for name, bound in (("after", self.after), ("before", self.before)):
            if bound is not None and bound < 0:
                raise InputError(f"{name}: a sequence number, 0 or more")

    def describe(self) -> str:
        """The filters in words, for the audit entry recording this read (no numbers); a
        period as it was asked for: ``since=2026-03-01`` for the day in Sweden, not the UTC
        instant it began."""
        parts = [
            f"{name}={cut_off_text(value) if isinstance(value, datetime) else value}"
            for name, value in (
                ("participant", self.participant),
                ("since", self.since),
                ("until", self.until),
                ("party", self.party),
                ("decision", self.decision),
                ("action", self.action.value if self.action else None),
                ("actor", self.actor),
                ("correlation", self.correlation),
                ("limit", self.limit),
                ("after", self.after),
                ("before", self.before),
            )
            if value is not None
        ]
        return "filters: " + (", ".join(parts) if parts else "none")

    def where(self, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` narrowed to the entries this query matches (``limit`` and the
        sequence bounds aside)."""
        if self.participant is not None:
            stmt = stmt.where(LedgerEntryRow.participant == self.participant)
        if self.since is not None:
            stmt = stmt.where(LedgerEntryRow.time >= self.since)
        if self.until is not None:
            stmt = stmt.where(LedgerEntryRow.time < self.until)
        if self.party is not None:
            stmt = stmt.where(
                or_(LedgerEntryRow.origin == self.party, LedgerEntryRow.recipient == self.party)
            )
        if self.decision is not None:
            stmt = stmt.where(LedgerEntryRow.decision == self.decision)
        if self.action is not None:
            stmt = stmt.where(LedgerEntryRow.action == self.action.value)
        if self.correlation is not None:
            stmt = stmt.where(LedgerEntryRow.correlation_id == self.correlation)
        if self.actor is not None:
            actor = LedgerEntryRow.actor
            stmt = stmt.where(
                or_(
                    actor == self.actor,
                    actor.startswith(f"{self.actor} via ", autoescape=True),
                    actor.endswith(f" via {self.actor}", autoescape=True),
                )
            )
        return stmt

    @property
    def by_block(self) -> bool:
        """Whether this search walks the per-block participant and time indexes."""
        return self.participant is not None or self.since is not None or self.until is not None


@dataclass(frozen=True)
class EntryRecord:
    """One entry as read back. ``leaf`` is None once purged (only ``time``, ``action`` and
    the leaf hash remain)."""

    seq: int
    leaf: bytes | None
    leaf_hash: bytes
    time: datetime
    action: str
    document: dict[str, Any] | None

    @property
    def purged(self) -> bool:
        return self.leaf is None

    def field(self, name: str) -> Any:
        """A readable field from the stored bytes (only time and action once purged)."""
        if self.document is None:
            return {"time": format_time(self.time), "action": self.action}.get(name)
        return self.document.get(name)

    def export_line(self) -> dict[str, Any]:
        """The JSON Lines export object (see docs/ledger.md for the contract)."""
        line: dict[str, Any] = {
            "seq": self.seq,
            "leaf": base64.b64encode(self.leaf).decode() if self.leaf is not None else None,
            "leaf_hash": self.leaf_hash.hex(),
            "purged": self.purged,
        }
        for name in EXPORT_FIELDS:
            value = self.field(name)
            line[name] = list(value) if name == "categories" and value is not None else value
        if self.purged:
            line["categories"] = []
        return line


def record_from_row(row: LedgerEntryRow) -> EntryRecord:
    leaf = bytes(row.canonical) if row.canonical is not None else None
    return EntryRecord(
        seq=row.seq,
        leaf=leaf,
        leaf_hash=bytes(row.leaf_hash),
        time=row.time,
        action=row.action,
        document=read_document(leaf) if leaf is not None else None,
    )


def find_entries(session: Session, query: LedgerQuery) -> Iterator[EntryRecord]:
    """Entries matching ``query`` in sequence order (newest first with ``newest_first``),
    read in batches; stops at ``limit``.

    A search by participant or time uses their indexes, which are per block of
    ``2^BLOCK_BITS`` entries (see :mod:`hub.store.tables.ledger`): it asks for the blocks
    in order (from the newest back with ``newest_first``), one block first and twice as
    many each time a query comes back short, so a common match stops in the first block
    and a rare one takes a few queries of many index lookups each (:func:`block_statement`).
    Other searches read in sequence order (the action has its own plain index).
    """
    remaining = query.limit
    low = 0 if query.after is None else query.after + 1  # the sequence numbers still to
    high = query.before  # read: low <= seq < high (None: to the end)
    if not query.by_block:
        while (remaining is None or remaining > 0) and (high is None or low < high):
            size = _BATCH if remaining is None else min(_BATCH, remaining)
            stmt = query.where(select(LedgerEntryRow)).where(LedgerEntryRow.seq >= low)
            if high is not None:
                stmt = stmt.where(LedgerEntryRow.seq < high)
            seq = LedgerEntryRow.seq.desc() if query.newest_first else LedgerEntryRow.seq
            rows = session.scalars(stmt.order_by(seq).limit(size)).all()
            for row in rows:
                yield record_from_row(row)
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < size:
                return
            if query.newest_first:
                high = rows[-1].seq
            else:
                low = rows[-1].seq + 1
        return
    if high is None:
        last = session.scalar(select(func.max(LedgerEntryRow.seq)))
        if last is None:
            return
        high = last + 1
    sqlite = session.get_bind().dialect.name == "sqlite"
    span = 1
    while (remaining is None or remaining > 0) and low < high:
        if query.newest_first:
            top = (high - 1) >> BLOCK_BITS
            blocks = range(max(top - span + 1, low >> BLOCK_BITS), top + 1)
        else:
            first = low >> BLOCK_BITS
            blocks = range(first, min(first + span, ((high - 1) >> BLOCK_BITS) + 1))
        size = _BATCH if remaining is None else min(_BATCH, remaining)
        stmt = block_statement(query, blocks, low, high, sqlite=sqlite).limit(size)
        rows = session.scalars(stmt).all()
        for row in rows:
            yield record_from_row(row)
        if remaining is not None:
            remaining -= len(rows)
        if len(rows) == size:  # there may be more in these blocks
            if query.newest_first:
                high = rows[-1].seq
            else:
                low = rows[-1].seq + 1
        else:
            if query.newest_first:
                high = blocks.start << BLOCK_BITS
            else:
                low = blocks.stop << BLOCK_BITS
            span = min(2 * span, _MAX_SPAN)


def block_statement(
    query: LedgerQuery, blocks: range, low: int, high: int, *, sqlite: bool
) -> Select[Any]:
    """The entries of ``blocks`` that ``query`` matches, with ``low <= seq < high``, in
    sequence order (newest first with ``newest_first``).

    The sequence numbers are bounded to the blocks too, and the order is by block, then
    sequence number (the same order: a block is a run of sequence numbers), so the
    database reads the per-block index and stops when it has enough. Ordered by ``seq``
    alone, PostgreSQL and SQLite both often chose to walk the primary key in order and
    test every entry against the filters, which for a rare match (an old participant, a
    recent time window) read every entry from the first block asked to the end of the
    log, once per query. On SQLite the sequence bounds are written ``+seq`` (SQLite's
    way to keep a condition from choosing an index): given the rowid's range, it scanned
    that range instead of the per-block index.
    """
    seq = LedgerEntryRow.seq
    bound: ColumnElement[int] = seq.expression
    if sqlite:
        bound = UnaryExpression(bound, operator=custom_op("+"), type_=Integer)
    stmt = query.where(select(LedgerEntryRow)).where(
        LedgerEntryRow.seq_block.in_(blocks),
        bound >= max(low, blocks.start << BLOCK_BITS),
        bound < min(high, blocks.stop << BLOCK_BITS),
    )
    if query.newest_first:
        return stmt.order_by(LedgerEntryRow.seq_block.desc(), seq.desc())
    return stmt.order_by(LedgerEntryRow.seq_block, seq)


def block_spans(session: Session) -> Iterator[range]:
    """Every block number that holds entries, in ranges of at most ``_MAX_SPAN`` blocks
    (for statements that filter by time: its index is per block)."""
    last = session.scalar(select(func.max(LedgerEntryRow.seq)))
    if last is None:
        return
    for first in range(0, (last >> BLOCK_BITS) + 1, _MAX_SPAN):
        yield range(first, min(first + _MAX_SPAN, (last >> BLOCK_BITS) + 1))
