"""Reading sync history and dead letters for administrators (no personal data)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from hub.context import Hub
from hub.errors import InputError, NotFoundError
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, SyncRun
from hub.sync.outbox import DEAD, PENDING, OutboxRepository, database_clock
from hub.sync.report import INTERRUPTED


def history(hub: Hub, limit: int, connector: str | None = None) -> list[dict[str, Any]]:
    hub.require_schema()
    with hub.db.session() as session:
        query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
        if connector:
            query = query.where(SyncRun.connector == connector)
        return [
            {
                "id": run.id,
                "connector": run.connector,
                "started_at": run.started_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "status": _status(run),
                "counts": run.counts,
                "error": run.error,
            }
            for run in session.scalars(query)
        ]


def _status(run: SyncRun) -> str:
    """A run's outcome; a row with no end is still running, or was stopped and the next
    run of its connector has not come yet (which marks it ``interrupted``)."""
    if run.finished_at or run.status == INTERRUPTED:
        return run.status
    return "interrupted_or_running"


MAX_ID = 2**31 - 1
"""The largest id the outbox's integer column holds (PostgreSQL refuses a larger one in a
query): an id above it is no transfer's, never a database error."""

PAGE_ROWS = 100
"""Dead letters in a page unless asked otherwise (`evi transfers failed`, the API, /admin)."""
PAGE_MAX = 1000
"""The most a page may hold: page through the rest by id (``after``)."""
SUMMARY_REASONS = 100
"""The most (recipient, reason) groups a summary lists, the largest first."""


def page_size(limit: int, *, option: str = "limit", after: str = "after=ID") -> int:
    """``limit`` if a page may hold that many dead letters, else an error saying what to do
    (``option`` and ``after`` name the caller's own parameters: ``--limit``, ``--after ID``)."""
    if not 1 <= limit <= PAGE_MAX:
        shown = option if _identity_like(limit) else f"{option} {limit}"
        raise InputError(
            f"{shown}: a page holds 1 to {PAGE_MAX} dead letters (default "
            f"{PAGE_ROWS}); page through the rest with {after}, the id of the last one shown, "
            "or narrow them to one recipient or reason"
        )
    return limit


def dead_letter_summary(hub: Hub) -> dict[str, Any]:
    """How many dead letters there are, per recipient and per recipient and reason.

    Two grouping queries, never the rows: ``total``; ``recipients``, each with its
    ``count`` (by name); ``reasons``, each ``recipient`` and ``reason`` with its ``count``,
    the ``first_id`` and ``last_id`` and when the first and last of them failed, the
    largest :data:`SUMMARY_REASONS` groups first; ``more_reasons`` says some were left out.
    """
    hub.require_schema()
    dead = OutboxItem.status == DEAD
    count = func.count().label("count")
    with hub.db.session() as session:
        recipients = session.execute(
            select(OutboxItem.recipient, count)
            .where(dead)
            .group_by(OutboxItem.recipient)
            .order_by(OutboxItem.recipient)
        ).all()
        reasons = session.execute(
            select(
                OutboxItem.recipient,
                OutboxItem.last_error,
                count,
                func.min(OutboxItem.id),
                func.max(OutboxItem.id),
                func.min(OutboxItem.finished_at),
                func.max(OutboxItem.finished_at),
            )
            .where(dead)
            .group_by(OutboxItem.recipient, OutboxItem.last_error)
            .order_by(count.desc(), OutboxItem.recipient, OutboxItem.last_error)
            .limit(SUMMARY_REASONS + 1)
        ).all()
    return {
        "total": sum(int(n) for _, n in recipients),
        "recipients": [{"recipient": name, "count": int(n)} for name, n in recipients],
        "reasons": [
            {
                "recipient": recipient,
                "reason": reason,
                "count": int(n),
                "first_id": first_id,
                "last_id": last_id,
                "first_failed_at": _iso(first_at),
                "last_failed_at": _iso(last_at),
            }
            for recipient, reason, n, first_id, last_id, first_at, last_at in reasons[
                :SUMMARY_REASONS
            ]
        ],
        "more_reasons": len(reasons) > SUMMARY_REASONS,
    }


def queue_summary(hub: Hub) -> dict[str, Any]:
    """The transfers waiting to go (``pending``): how many per recipient, how many of them
    an authority already failed to take (``retrying``: tried at least once, due again
    later), since when the oldest waits and when the next is due; then the retrying ones
    by their last error, the largest :data:`SUMMARY_REASONS` groups first. What an
    operator looks at after an outage, before any of it is given up on (dead letters).
    Two grouping queries over the due index, never the rows."""
    hub.require_schema()
    waiting = OutboxItem.status == PENDING
    count = func.count().label("count")
    with hub.db.session() as session:
        recipients = session.execute(
            select(
                OutboxItem.recipient,
                count,
                func.sum(case((OutboxItem.attempts > 0, 1), else_=0)),
                func.min(OutboxItem.created_at),
                func.min(OutboxItem.next_attempt_at),
            )
            .where(waiting)
            .group_by(OutboxItem.recipient)
            .order_by(OutboxItem.recipient)
        ).all()
        errors = session.execute(
            select(OutboxItem.recipient, OutboxItem.last_error, count)
            .where(waiting, OutboxItem.attempts > 0)
            .group_by(OutboxItem.recipient, OutboxItem.last_error)
            .order_by(count.desc(), OutboxItem.recipient, OutboxItem.last_error)
            .limit(SUMMARY_REASONS + 1)
        ).all()
    return {
        "total": sum(int(n) for _, n, *_rest in recipients),
        "recipients": [
            {
                "recipient": name,
                "count": int(n),
                "retrying": int(retrying or 0),
                "waiting_since": _iso(oldest),
                "next_attempt_at": _iso(due),
            }
            for name, n, retrying, oldest, due in recipients
        ],
        "errors": [
            {"recipient": name, "last_error": error, "count": int(n)}
            for name, error, n in errors[:SUMMARY_REASONS]
        ],
        "more_errors": len(errors) > SUMMARY_REASONS,
    }


def _identity_like(number: int) -> bool:
    """Whether a number typed as an id or a count could be an identity number (10 digits
    or more; no transfer id or page size comes near): it is never repeated in a message."""
    return abs(number) >= 10**9


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def dead_letters(
    hub: Hub,
    *,
    after: int = 0,
    limit: int = PAGE_ROWS,
    recipient: str | None = None,
    reason: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of dead letters, oldest (lowest id) first: those with an id above
    ``after``, at most ``limit`` (1 to :data:`PAGE_MAX`), only to ``recipient`` and with
    ``reason`` when given; and whether more follow (ask again with ``after`` set to the
    last id of this page). Paging by id, so a page never repeats or skips one, whatever
    is retried or dead-lettered meanwhile."""
    page_size(limit)
    hub.require_schema()
    query = (
        select(OutboxItem, ParticipantRow.pseudonym)
        .join(ParticipantRow, ParticipantRow.id == OutboxItem.participant_id)
        .where(OutboxItem.status == DEAD, OutboxItem.id > min(max(after, 0), MAX_ID))
        .order_by(OutboxItem.id)
        .limit(limit + 1)
    )
    if recipient is not None:
        query = query.where(OutboxItem.recipient == recipient)
    if reason is not None:
        query = query.where(OutboxItem.last_error == reason)
    with hub.db.session() as session:
        rows = session.execute(query).all()
        return [
            {
                "id": item.id,
                "origin": item.origin,
                "recipient": item.recipient,
                "category": item.category,
                "purpose": item.purpose,
                "participant": pseudonym,
                "attempts": item.attempts,
                "failed_at": _iso(item.finished_at),
                "reason": item.last_error,
                "idempotency_key": item.idempotency_key,
            }
            for item, pseudonym in rows[:limit]
        ], len(rows) > limit


def retry(hub: Hub, ids: Sequence[int] | None, *, recipient: str | None = None) -> int:
    """Queue dead letters again (all when ``ids`` is None, or all to ``recipient``);
    returns how many. One UPDATE, however many: no row is read into memory."""
    if ids is not None and not ids:
        raise InputError(
            "name the transfers to retry (IDs from `evi transfers failed`) or use --all"
        )
    if ids is not None and recipient is not None:
        raise InputError("a recipient goes with retrying all, not with ids")
    hub.require_schema()
    now = database_clock(hub.db)()  # due now for every worker host (PostgreSQL's clock)
    with hub.db.session(write_lock=True) as session:
        if ids is not None:
            possible = [i for i in ids if 1 <= i <= MAX_ID]  # others overflow the column
            dead = set(
                session.scalars(
                    select(OutboxItem.id).where(
                        OutboxItem.id.in_(possible), OutboxItem.status == DEAD
                    )
                )
            )
            missing = sorted(set(ids) - dead)
            if missing:
                named = [str(i) for i in missing if not _identity_like(i)]
                which = f"id {', '.join(named)}" if named else "those ids"
                if len(named) < len(missing):  # never repeat an identity number typed there
                    which += f" (and {len(missing) - len(named)} shaped like identity numbers)"
                raise NotFoundError(f"no dead letter with {which}; see `evi transfers failed`")
        return OutboxRepository(session).revive(ids, now, recipient=recipient)
