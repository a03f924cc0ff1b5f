"""Retention: remove the content of old entries but keep their place in the tree.

A purged entry keeps ``seq``, ``time``, ``action`` and its leaf hash (in the entry and in
``ledger_tile``), so every root, proof and checkpoint still verifies; its canonical bytes
and every other search column (participant pseudonym, parties, actor…) are cleared.
``evi log verify`` reports purged ranges as such. On SQLite the cleared content is
overwritten in the file (:mod:`hub.store.erasure`).

The log is kept to show who disclosed or read what, so its content has a floor: entries
keep it for at least ``[ledger] minimum_retention_days`` (:func:`require_minimum_retention`),
whatever cut-off a purge is given; only a change to the configuration lowers it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.clock import cut_off_text, parse_cut_off, swedish_local
from hub.errors import InputError
from hub.ledger.records import block_spans
from hub.store.erasure import overwritten
from hub.store.tables.ledger import SEARCH_COLUMNS, LedgerEntryRow

CLEARED = (*(name for name in SEARCH_COLUMNS if name != "action"), "canonical")


def latest_cut_off(now: datetime, days: int) -> date | None:
    """The latest day a purge may be given at ``now`` when entries keep their content for
    at least ``days`` days: the Swedish date ``days`` days before today in Sweden (a purge
    before the start of that day leaves every entry of the last ``days`` calendar days);
    None for ``days`` 0, no minimum."""
    if days == 0:
        return None
    return swedish_local(now)[0].date() - timedelta(days=days)


def require_minimum_retention(before: datetime, now: datetime, days: int) -> None:
    """:class:`InputError` (exit 2) when a purge of the entries recorded before ``before``
    would reach into the last ``days`` days: naming the setting, the latest day allowed,
    and how the minimum is lowered (a configuration change, never an option)."""
    latest = latest_cut_off(now, days)
    if latest is None or before <= parse_cut_off(latest.isoformat()):
        return
    raise InputError(
        f"--before {cut_off_text(before)} is within the transfer log's minimum retention: "
        f"entries keep their content for at least {days} days ([ledger] "
        f"minimum_retention_days), so those recorded from {latest.isoformat()} on stay; "
        f"give --before {latest.isoformat()} or earlier. Nothing was purged; the minimum is "
        "lowered only in evi.toml or EVI_LEDGER__MINIMUM_RETENTION_DAYS"
    )


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
