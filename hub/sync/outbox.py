"""The outbox: disclosures waiting for delivery. A repository: it never commits.

Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number
of `evi worker` processes can drain one outbox; the row lock is the claim, and it dies
with the worker's connection, so a killed worker's item simply becomes claimable again.
SQLite ignores ``FOR UPDATE``; there the job runs in one process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from hub.store.base import Base
from hub.store.tables.sync import OutboxItem

PENDING = "pending"
DELIVERED = "delivered"
DENIED = "denied"
DEAD = "dead"

_OUTBOX: Table = Base.metadata.tables[OutboxItem.__tablename__]


_QUEUED = (
    "id",
    "idempotency_key",
    "record_id",
    "participant_id",
    "origin",
    "recipient",
    "purpose",
    "category",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "finished_at",
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
    finished_at: datetime | None


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._pending: dict[str, dict[str, object]] = {}

    def enqueue(
        self,
        *,
        key: str,
        record_id: int,
        participant_id: int,
        origin: str,
        recipient: str,
        purpose: str,
        category: str,
        now: datetime,
    ) -> bool:
        """Queue a delivery unless one with this idempotency key exists; True if queued.

        Items are held until :meth:`flush`, which checks the keys in bulk: a key queued
        before (a record read again after a crash) is never queued twice.
        """
        if key in self._pending:
            return False
        self._pending[key] = {
            "idempotency_key": key,
            "record_id": record_id,
            "participant_id": participant_id,
            "origin": origin,
            "recipient": recipient,
            "purpose": purpose,
            "category": category,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        return True

    def flush(self) -> int:
        """Insert the held items whose keys are new (one statement); returns how many."""
        keys = sorted(self._pending)
        known: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            known.update(
                self.session.scalars(
                    select(OutboxItem.idempotency_key).where(OutboxItem.idempotency_key.in_(chunk))
                )
            )
        fresh = [item for key, item in self._pending.items() if key not in known]
        if fresh:
            self.session.execute(insert(_OUTBOX), fresh)  # Core: no ORM bookkeeping
        self._pending.clear()
        return len(fresh)

    def claim(
        self, now: datetime, lease: timedelta, limit: int, recipients: Iterable[str] | None = None
    ) -> list[QueuedItem]:
        """Claim up to ``limit`` due items for ``lease``: not due again until it ends.

        The row locks (``SKIP LOCKED``) keep two workers from claiming the same item; the
        lease keeps it claimed after this transaction commits, while the push runs. A
        worker that dies mid-push leaves its items due again when their lease runs out.
        """
        o = _OUTBOX.c
        query = (
            select(*(o[name] for name in _QUEUED))
            .where(o.status == PENDING, o.next_attempt_at <= now)
            .order_by(o.next_attempt_at, o.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if recipients is not None:
            query = query.where(o.recipient.in_(list(recipients)))
        items = [QueuedItem(*row) for row in self.session.connection().execute(query)]
        ids = [item.id for item in items]
        for start in range(0, len(ids), 500):
            self.session.execute(
                update(_OUTBOX)
                .where(o.id.in_(ids[start : start + 500]))
                .values(next_attempt_at=now + lease)
            )
        for item in items:
            item.next_attempt_at = now + lease
        return items

    def release(self, ids: Sequence[int], now: datetime) -> None:
        """End the lease of claimed items that were not attempted (e.g. on shutdown)."""
        if ids:
            self.session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(list(ids)), OutboxItem.status == PENDING)
                .values(next_attempt_at=now)
            )

    def finish(
        self, item: QueuedItem, status: str, now: datetime, error: str | None = None
    ) -> None:
        """Mark ``item`` done (written by :meth:`save`)."""
        item.status = status
        item.finished_at = now
        item.last_error = error

    def retry_later(
        self, item: QueuedItem, now: datetime, error: str, retry_after: float | None = None
    ) -> None:
        """Schedule another attempt after a failed one (``attempts`` already counted).

        Exponential backoff, 1 min, 2, 4, … at most 1 h, or the authority's
        ``Retry-After`` when that is longer. Written by :meth:`save`.
        """
        backoff = min(timedelta(minutes=2 ** max(item.attempts - 1, 0)), timedelta(hours=1))
        if retry_after:
            backoff = max(backoff, timedelta(seconds=retry_after))
        item.last_error = error
        item.next_attempt_at = now + backoff

    def save(self, items: Sequence[QueuedItem]) -> None:
        """Write the state of claimed items back, in one statement."""
        if not items:
            return
        o = _OUTBOX.c
        self.session.execute(
            update(_OUTBOX)
            .where(o.id == bindparam("item_id"))
            .values(
                status=bindparam("new_status"),
                attempts=bindparam("new_attempts"),
                next_attempt_at=bindparam("new_next"),
                last_error=bindparam("new_error"),
                finished_at=bindparam("new_finished"),
            ),
            [
                {
                    "item_id": item.id,
                    "new_status": item.status,
                    "new_attempts": item.attempts,
                    "new_next": item.next_attempt_at,
                    "new_error": item.last_error,
                    "new_finished": item.finished_at,
                }
                for item in items
            ],
        )

    def dead_letters(self) -> Sequence[OutboxItem]:
        return self.session.scalars(
            select(OutboxItem).where(OutboxItem.status == DEAD).order_by(OutboxItem.id)
        ).all()

    def revive(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Put dead letters (all, or these ids) back in the queue with a fresh attempt budget."""
        stmt = update(OutboxItem).where(OutboxItem.status == DEAD)
        if ids is not None:
            stmt = stmt.where(OutboxItem.id.in_(ids))
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
