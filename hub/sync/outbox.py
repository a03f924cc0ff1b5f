"""The outbox: disclosures waiting for delivery. A repository: it never commits.

Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number
of `evi worker` processes can drain one outbox; the row lock is the claim, and it dies
with the worker's connection, so a killed worker's item simply becomes claimable again.
On SQLite, which has no row locks, a claim is made inside the write lock (the caller's
``write_lock`` transaction), so claimants take turns and the lease does the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from hub.store.bulk import execute_in, placeholder, read_time, rows_in, time_binder
from hub.store.db import Database
from hub.store.tables.sync import OutboxItem

MAX_RETRY_AFTER = timedelta(days=1)
"""The longest an authority's ``Retry-After`` puts a transfer off."""
_MAX_WAIT_SECONDS = MAX_RETRY_AFTER.total_seconds()
_MAX_BACKOFF = timedelta(hours=1)
CLOCK_SLACK = timedelta(hours=1)
"""Beyond :data:`MAX_RETRY_AFTER`, how far ahead a pending transfer may be due before it is
taken to have been put off under a clock that was ahead (a lease is 10 minutes)."""

QUEUE_SLACK = timedelta(minutes=1)
"""How far ahead of the database's time a transfer may be queued due before it is taken to
have been queued by a host whose clock is ahead (a few seconds' difference only delays
it that long, and is not worth a write and a warning)."""

PENDING = "pending"
DELIVERED = "delivered"
DENIED = "denied"
DEAD = "dead"
SUPERSEDED = "superseded"
"""Not sent: a newer version of its record was queued for the same recipient after it."""

_CLAIMED = (
    "id",
    "idempotency_key",
    "record_id",
    "participant_id",
    "origin",
    "recipient",
    "purpose",
    "category",
    "attempts",
    "last_error",
    "number_sent",
)


@dataclass(slots=True)
class QueuedItem:
    """A claimed outbox row as plain values; changed by the delivery, written by ``save``."""

    id: int
    idempotency_key: str
    record_id: int
    participant_id: int
    origin: str
    recipient: str
    purpose: str
    category: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    finished_at: datetime | None = None
    number_sent: bool | None = None  # with the person's number when last claimed (None: never)
    rekeyed: bool = False  # given a new key by this claim (written by ``lease``)
    leased_until: datetime | None = None  # the lease this claimant wrote (``lease``)


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(
        self,
        now: datetime,
        lease: timedelta,
        limit: int,
        recipients: Iterable[str] | None = None,
        share: tuple[int, int] | None = None,
    ) -> list[QueuedItem]:
        """Claim up to ``limit`` due items for ``lease``: not due again until it ends.

        The row locks (``SKIP LOCKED``) keep two workers from claiming the same item; the
        lease keeps it claimed after this transaction commits, while the push runs. A
        worker that dies mid-push leaves its items due again when their lease runs out.
        ``share = (k, n)`` claims only items about participants whose id is ``k`` modulo
        ``n``, so ``n`` claimants split the queue by person.
        """
        items = self.due(now, limit, recipients, share, lock=True)
        self.lease(items, now + lease)
        return items

    def due(
        self,
        now: datetime,
        limit: int,
        recipients: Iterable[str] | None = None,
        share: tuple[int, int] | None = None,
        *,
        lock: bool = False,
    ) -> list[QueuedItem]:
        """Up to ``limit`` items due at ``now``, in queue order, as :meth:`claim` picks them.

        Only reads, unless ``lock`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL); the items
        are claimed only once :meth:`lease` is called for them.
        """
        wanted = sorted(recipients) if recipients is not None else None
        if wanted == []:
            return []
        connection = self.session.connection()
        mark = placeholder(connection.dialect)
        only = f" AND recipient IN ({', '.join([mark] * len(wanted))})" if wanted else ""
        if share is not None:
            modulo = "%%" if mark == "%s" else "%"  # a literal % beside %s placeholders
            only += f" AND participant_id {modulo} {mark} = {mark}"
        locked = ""
        if lock and connection.dialect.name == "postgresql":
            locked = " FOR UPDATE SKIP LOCKED"
        rows = connection.exec_driver_sql(
            # Only placeholders and fixed text go into the statement.
            f"SELECT {', '.join(_CLAIMED)} FROM outbox "  # noqa: S608
            f"WHERE status = {mark} AND next_attempt_at <= {mark}{only} "
            f"ORDER BY next_attempt_at, id LIMIT {mark}{locked}",
            (
                PENDING,
                time_binder(connection.dialect)(now),
                *(wanted or ()),
                *(share[::-1] if share else ()),
                limit,
            ),
        ).fetchall()
        return [
            QueuedItem(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                PENDING,
                r[8],
                now,
                r[9],
                number_sent=None if r[10] is None else bool(r[10]),
            )
            for r in rows
        ]

    def lease(self, items: Sequence[QueuedItem], until: datetime) -> None:
        """Claim ``items`` until ``until``: not due again before it (see :meth:`claim`).

        Also written, before anything is pushed: whether each goes with the person's
        number (``number_sent``) and the new key of any the claim gave one (``rekeyed``).
        """
        for item in items:
            item.next_attempt_at = item.leased_until = until
        connection = self.session.connection()
        until_bound = time_binder(connection.dialect)(until)
        groups: dict[bool | None, list[int]] = {}
        for item in items:
            groups.setdefault(item.number_sent, []).append(item.id)
        for sent, ids in groups.items():
            sql = "UPDATE outbox SET next_attempt_at = ?"
            params: tuple[object, ...] = (until_bound,)
            if sent is not None:  # None: nobody decided yet (e.g. OutboxRepository.claim)
                sql, params = sql + ", number_sent = ?", (until_bound, sent)
            execute_in(connection, sql + " WHERE id IN ({marks})", ids, params)
        rekeyed = [(item.idempotency_key, item.id) for item in items if item.rekeyed]
        if rekeyed:
            mark = placeholder(connection.dialect)
            connection.exec_driver_sql(
                f"UPDATE outbox SET idempotency_key = {mark} WHERE id = {mark}",  # noqa: S608
                rekeyed,
            )

    def still_due(self, ids: Sequence[int], now: datetime) -> bool:
        """Whether every item of ``ids`` is still pending and due at ``now`` (claimed by
        nobody since it was read); on PostgreSQL the rows stay locked until commit."""
        connection = self.session.connection()
        query = (
            "SELECT id FROM outbox WHERE status = ? AND next_attempt_at <= ? AND id IN ({marks})"
        )
        if connection.dialect.name == "postgresql":
            query += " FOR UPDATE"
        rows = rows_in(
            connection,
            query,
            sorted(ids),
            (PENDING, time_binder(connection.dialect)(now)),
        )
        return len(rows) == len(set(ids))

    def held(self, items: Sequence[QueuedItem]) -> set[int]:
        """The ids of ``items`` still under the lease this claimant wrote (:meth:`lease`):
        pending, and due when it said. An item whose lease ran out while it was being
        pushed may have been claimed by another worker meanwhile (its lease replaced this
        one), or finished by it: its state is that claimant's to write now, not ours. On
        PostgreSQL the rows stay locked until commit, so no one takes them in between."""
        leased = {item.id: item.leased_until for item in items if item.leased_until is not None}
        if not leased:
            return set()
        connection = self.session.connection()
        query = "SELECT id, next_attempt_at FROM outbox WHERE status = ? AND id IN ({marks})"
        if connection.dialect.name == "postgresql":
            query += " FOR UPDATE"
        rows = rows_in(connection, query, sorted(leased), (PENDING,))
        return {rid for rid, due in rows if read_time(due) == leased[rid]}

    def written(self, items: Sequence[QueuedItem]) -> bool:
        """Whether some of ``items`` is stored exactly as this claimant settled it (state,
        attempts, due and finish time, to the microsecond): its write of their results
        was committed, though the answer to its commit was lost with the connection."""
        if not items:
            return False
        connection = self.session.connection()
        rows = rows_in(
            connection,
            "SELECT id, status, attempts, next_attempt_at, finished_at FROM outbox "
            "WHERE id IN ({marks})",
            sorted({item.id for item in items}),
        )
        settled = {
            item.id: (item.status, item.attempts, item.next_attempt_at, item.finished_at)
            for item in items
        }
        return any(
            settled[rid]
            == (status, attempts, read_time(due), None if done is None else read_time(done))
            for rid, status, attempts, due, done in rows
        )

    def _put_off_beyond_reach(self, now: datetime) -> tuple[Any, ...]:
        return (
            OutboxItem.status == PENDING,
            OutboxItem.next_attempt_at > now + MAX_RETRY_AFTER + CLOCK_SLACK,
        )

    def any_put_off_beyond_reach(self, now: datetime) -> bool:
        """Whether a pending transfer is due later than any put-off makes one (a day, plus
        :data:`CLOCK_SLACK`): put off while the clock was ahead. One index look-up."""
        query = select(OutboxItem.id).where(*self._put_off_beyond_reach(now)).limit(1)
        return self.session.execute(query).first() is not None

    def due_now_if_put_off_beyond_reach(self, now: datetime) -> int:
        """Make the transfers :meth:`any_put_off_beyond_reach` finds due at ``now``
        (otherwise they would wait for the date the wrong clock gave them); how many."""
        result = self.session.execute(
            update(OutboxItem).where(*self._put_off_beyond_reach(now)).values(next_attempt_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def _queued_ahead(self, now: datetime) -> tuple[Any, ...]:
        return (
            OutboxItem.status == PENDING,
            OutboxItem.next_attempt_at > now + QUEUE_SLACK,
            OutboxItem.attempts == 0,
            OutboxItem.next_attempt_at == OutboxItem.created_at,  # queued, never claimed
        )

    def any_queued_ahead(self, now: datetime) -> bool:
        """Whether a transfer never claimed yet was queued due later than ``now`` (the
        database's time) and :data:`QUEUE_SLACK`: by `evi sync` on a host whose clock is
        ahead of the database server's.
        Queued means due at once. One index look-up (the rows due after ``now``)."""
        query = select(OutboxItem.id).where(*self._queued_ahead(now)).limit(1)
        return self.session.execute(query).first() is not None

    def due_now_if_queued_ahead(self, now: datetime) -> int:
        """Make the transfers :meth:`any_queued_ahead` finds due at ``now``; how many."""
        result = self.session.execute(
            update(OutboxItem).where(*self._queued_ahead(now)).values(next_attempt_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def release(self, ids: Sequence[int], now: datetime) -> None:
        """End the lease of claimed items that were not attempted (e.g. on shutdown)."""
        if ids:
            self.session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(list(ids)), OutboxItem.status == PENDING)
                .values(next_attempt_at=now)
            )

    @staticmethod
    def finish(item: QueuedItem, status: str, now: datetime, error: str | None = None) -> None:
        """Mark ``item`` done (written by :meth:`save`)."""
        item.status = status
        item.finished_at = now
        item.last_error = error

    @staticmethod
    def retry_later(
        item: QueuedItem, now: datetime, error: str, retry_after: float | None = None
    ) -> None:
        """Schedule another attempt after a failed one (``attempts`` already counted).

        Exponential backoff, 1 min, 2, 4, … at most 1 h, or the authority's
        ``Retry-After`` when that is longer, but never more than :data:`MAX_RETRY_AFTER`
        (an authority cannot park a transfer for years, nor make the date overflow).
        Written by :meth:`save`.
        """
        backoff = min(timedelta(minutes=2 ** min(max(item.attempts - 1, 0), 6)), _MAX_BACKOFF)
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            backoff = max(backoff, timedelta(seconds=min(retry_after, _MAX_WAIT_SECONDS)))
        item.last_error = error
        item.next_attempt_at = now + backoff

    def save(self, items: Sequence[QueuedItem]) -> None:
        """Write the state of claimed items back, in one statement."""
        if not items:
            return
        connection = self.session.connection()
        when = time_binder(connection.dialect)
        mark = placeholder(connection.dialect)
        connection.exec_driver_sql(
            f"UPDATE outbox SET status = {mark}, attempts = {mark}, next_attempt_at = {mark}, "  # noqa: S608 - placeholders only
            f"last_error = {mark}, finished_at = {mark} WHERE id = {mark}",
            [
                (
                    item.status,
                    item.attempts,
                    when(item.next_attempt_at),
                    item.last_error,
                    None if item.finished_at is None else when(item.finished_at),
                    item.id,
                )
                for item in items
            ],
        )

    def dead_letters(self) -> Sequence[OutboxItem]:
        return self.session.scalars(
            select(OutboxItem).where(OutboxItem.status == DEAD).order_by(OutboxItem.id)
        ).all()

    def revive(
        self, ids: Sequence[int] | None, now: datetime, *, recipient: str | None = None
    ) -> int:
        """Put dead letters (all, all to ``recipient``, or these ids) back in the queue with
        a fresh attempt budget."""
        stmt = update(OutboxItem).where(OutboxItem.status == DEAD)
        if ids is not None:
            stmt = stmt.where(OutboxItem.id.in_(ids))
        if recipient is not None:
            stmt = stmt.where(OutboxItem.recipient == recipient)
        result = self.session.execute(
            stmt.values(status=PENDING, attempts=0, next_attempt_at=now, finished_at=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def counts(self) -> dict[str, int]:
        rows = self.session.execute(
            select(OutboxItem.status, func.count()).group_by(OutboxItem.status)
        ).all()
        return {status: int(n) for status, n in rows}


def utcnow() -> datetime:
    return datetime.now(UTC)


def database_clock(db: Database) -> Callable[[], datetime]:
    """The clock leases, put-offs and sync locks are read by: on PostgreSQL the database
    server's (``statement_timestamp()``), one clock for every host that claims from the
    outbox; on SQLite, which only processes of one host share, this host's.

    Workers on hosts whose clocks disagree would otherwise each read a lease by their
    own: one ahead takes over leases still running (a transfer pushed twice at once), one
    behind sees nothing due until its clock catches up."""
    if db.dialect != "postgresql":
        return utcnow

    def now() -> datetime:
        with db.session() as session:
            return read_time(session.scalar(text("SELECT statement_timestamp()")))

    return now
