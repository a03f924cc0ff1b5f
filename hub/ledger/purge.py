"""Retention: remove the content of old entries but keep their place in the tree.

A purged entry keeps ``seq``, ``time``, ``action`` and its leaf hash (in the entry and in
``ledger_tile``), so every root, proof and checkpoint still verifies; its canonical bytes
and every other search column (participant pseudonym, parties, actor…) are cleared.
``evi log verify`` reports purged ranges as such.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.store.tables.ledger import LedgerEntryRow

CLEARED = (
    "decision",
    "outcome",
    "origin",
    "recipient",
    "actor",
    "participant",
    "correlation_id",
    "canonical",
)


def count_purgeable(session: Session, before: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(LedgerEntryRow)
            .where(LedgerEntryRow.time < before, LedgerEntryRow.canonical.is_not(None))
        )
        or 0
    )


def purge_before(session: Session, before: datetime, now: datetime) -> int:
    """Purge every entry recorded before ``before`` that still holds content; returns how
    many. Never commits."""
    values: dict[str, object] = {name: None for name in CLEARED}
    values["purged_at"] = now
    result = session.execute(
        update(LedgerEntryRow)
        .where(LedgerEntryRow.time < before, LedgerEntryRow.canonical.is_not(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
