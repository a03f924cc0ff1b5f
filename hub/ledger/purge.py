"""Retention: remove the content of old entries but keep their place in the tree.

A purged entry keeps ``seq``, ``time``, ``action`` and its leaf hash (in the entry and in
``ledger_tile``), so every root, proof and checkpoint still verifies; its canonical bytes
and every other search column (participant pseudonym, parties, actor…) are cleared.
``evi log verify`` reports purged ranges as such. On SQLite the cleared content is
overwritten in the file (:mod:`hub.store.erasure`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.ledger.records import block_spans
from hub.store.erasure import overwritten
from hub.store.tables.ledger import SEARCH_COLUMNS, LedgerEntryRow

CLEARED = (*(name for name in SEARCH_COLUMNS if name != "action"), "canonical")


def count_purgeable(session: Session, before: datetime) -> int:
    return sum(
        int(
            session.scalar(
                select(func.count())
                .select_from(LedgerEntryRow)
                .where(
                    LedgerEntryRow.seq_block.in_(blocks),  # the time index is per block
                    LedgerEntryRow.time < before,
                    LedgerEntryRow.canonical.is_not(None),
                )
            )
            or 0
        )
        for blocks in block_spans(session)
    )


def purge_before(session: Session, before: datetime, now: datetime) -> int:
    """Purge every entry recorded before ``before`` that still holds content; returns how
    many. Never commits."""
    values: dict[str, object] = {name: None for name in CLEARED}
    values["purged_at"] = now
    purged = 0
    with overwritten(session.connection()):
        for blocks in list(block_spans(session)):
            result = session.execute(
                update(LedgerEntryRow)
                .where(
                    LedgerEntryRow.seq_block.in_(blocks),  # the time index is per block
                    LedgerEntryRow.time < before,
                    LedgerEntryRow.canonical.is_not(None),
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            purged += int(result.rowcount)  # type: ignore[attr-defined]
    return purged
