"""What the log's own history says must be there, checked by `evi log verify`.

The tree proves that no entry's hash changed, but two things leave every hash in place:
content removed by hand the way a purge removes it (``canonical`` cleared, the leaf hash
kept), and every checkpoint deleted (with no witness copy, nothing signed is left to
compare against). The log records both of the legitimate ones: each purge is a
``ledger_purge`` entry naming its cut-off, and the database records the signing key's
fingerprint with the first checkpoint. So a purged entry must be older than the cut-off of
a purge logged after it, and a database that has signed must still hold a checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.ledger.canonical import read_document
from hub.ledger.event import Action
from hub.ledger.signing import META_KEY
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.meta import HubMeta

_CUT_OFF = re.compile(r"^purged \d+ entries recorded before (\S+)$")

Problem = Callable[..., None]


def check_purges(session: Session, problem: Problem) -> None:
    """Report the first purged entry of each stretch that no logged purge covers: one
    recorded at or after the latest cut-off of the purges logged after it (or after the
    last purge). A few range queries, one per logged purge."""
    purges: list[tuple[int, datetime]] = []
    query = (
        select(LedgerEntryRow.seq, LedgerEntryRow.canonical)
        .where(LedgerEntryRow.action == Action.LEDGER_PURGE.value)
        .where(LedgerEntryRow.canonical.is_not(None))
        .order_by(LedgerEntryRow.seq)
    )
    for seq, canonical in session.execute(query):
        reason = str((read_document(bytes(canonical or b"")) or {}).get("reason") or "")
        said = _CUT_OFF.match(reason)
        if said:
            try:
                purges.append((int(seq), datetime.fromisoformat(said.group(1))))
            except ValueError:
                continue
    # Stretches [previous purge, this purge): covered by the latest cut-off logged after.
    bounds = [0, *(seq for seq, _ in purges)]
    cut_offs: list[datetime] = []
    for _, logged in reversed(purges):
        cut_offs.append(max(logged, cut_offs[-1]) if cut_offs else logged)
    cut_offs.reverse()
    stretches: list[tuple[int, int | None, datetime | None]] = [
        (bounds[i], bounds[i + 1], cut_offs[i]) for i in range(len(purges))
    ]
    stretches.append((bounds[-1], None, None))  # after the last purge nothing may be purged
    for start, end, covered_before in stretches:
        found = session.execute(_uncovered(start, end, covered_before)).first()
        if found is not None:
            seq, time = found.seq, found.time
            problem(
                int(seq),
                f"entry {seq} has no content, but no purge in the log covers it (recorded "
                f"{time.isoformat()}; a logged purge removes only entries recorded before its "
                "cut-off): its content was removed outside `evi log purge`",
            )


def _uncovered(
    start: int, end: int | None, cut_off: datetime | None
) -> Any:  # a Select of (seq, time)
    entry = LedgerEntryRow
    query = select(entry.seq, entry.time).where(entry.canonical.is_(None), entry.seq >= start)
    if end is not None:
        query = query.where(entry.seq < end)
    if cut_off is not None:
        query = query.where(entry.time >= cut_off)
    return query.order_by(entry.seq).limit(1)


def check_signed_before(session: Session, checkpoints: int, problem: Problem) -> None:
    """A database that recorded its signing key (with its first checkpoint) and holds no
    checkpoint had them deleted."""
    if checkpoints:
        return
    if session.get(HubMeta, META_KEY) is not None:
        problem(
            None,
            "no checkpoint is stored, though this database recorded the ledger's signing key "
            "with its first checkpoint: its checkpoints were deleted",
        )
