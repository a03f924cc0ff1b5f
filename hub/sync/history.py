"""Reading sync history and dead letters for administrators (no personal data)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from hub.context import Hub
from hub.errors import InputError, NotFoundError
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, SyncRun
from hub.sync.outbox import DEAD, OutboxRepository


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
                "status": run.status if run.finished_at else "interrupted_or_running",
                "counts": run.counts,
                "error": run.error,
            }
            for run in session.scalars(query)
        ]


def dead_letters(hub: Hub) -> list[dict[str, Any]]:
    hub.require_schema()
    with hub.db.session() as session:
        rows = session.execute(
            select(OutboxItem, ParticipantRow.pseudonym)
            .join(ParticipantRow, ParticipantRow.id == OutboxItem.participant_id)
            .where(OutboxItem.status == DEAD)
            .order_by(OutboxItem.id)
        ).all()
        return [
            {
                "id": item.id,
                "origin": item.origin,
                "recipient": item.recipient,
                "category": item.category,
                "purpose": item.purpose,
                "participant": pseudonym,
                "attempts": item.attempts,
                "failed_at": item.finished_at.isoformat() if item.finished_at else None,
                "reason": item.last_error,
                "idempotency_key": item.idempotency_key,
            }
            for item, pseudonym in rows
        ]


def retry(hub: Hub, ids: Sequence[int] | None) -> int:
    """Queue dead letters again (all when ``ids`` is None); returns how many."""
    if ids is not None and not ids:
        raise InputError(
            "name the transfers to retry (IDs from `evi transfers failed`) or use --all"
        )
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        if ids is not None:
            dead = set(
                session.scalars(
                    select(OutboxItem.id).where(OutboxItem.id.in_(ids), OutboxItem.status == DEAD)
                )
            )
            missing = sorted(set(ids) - dead)
            if missing:
                raise NotFoundError(
                    f"no dead letter with id {', '.join(map(str, missing))}; "
                    "see `evi transfers failed`"
                )
        return OutboxRepository(session).revive(ids, datetime.now(UTC))
