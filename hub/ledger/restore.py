"""A restore from a backup, recorded: the witness copies it left behind, acknowledged.

Witness copies of checkpoints (``[ledger] witness_dir``, kept where the hub cannot change
them) are what makes a rolled-back log visible: after the database is restored from a
backup, the newest copies cover entries the restored log no longer has, and once the hub
writes again, entries at those sizes give other roots. `evi log verify` rightly reports
both, at every run, for ever; the copies cannot be removed from write-once storage, and
should not be.

``evi log restored --yes`` is how an operator says so, after checking: it appends one
``log_restored`` entry naming every copy the stored log no longer matches (too large, or
another root at its size), records each copy in ``hub_meta``
(``witness_superseded:NAME`` = that entry's sequence number) and signs a checkpoint.
`evi log verify` then lists those copies as superseded by that entry, with its number,
instead of failing on them; the entry's ``action`` column outlives a log purge, so the
acknowledgment does too. A copy named in ``hub_meta`` whose entry is no ``log_restored``
entry is a problem. Until the restore is recorded, `evi sync` and `evi worker` refuse to
start (:func:`require_no_unrecorded_restore`), so a restored hub does not write over a
history it has lost without anyone saying so.

A copy's file name gives its size and the first 16 hex digits of its root
(``plugins/witness_directory.py``), which is all the comparison here needs; `evi log
verify` checks each note's signature.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.context import Hub
from hub.errors import ConfigError, InputError
from hub.ledger.event import Action, ActorRole, LedgerEvent
from hub.ledger.tree import StoredTree
from hub.ledger.witness import SUFFIX, witness_directory
from hub.ledger.writer import append
from hub.store.meta import set_meta
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.meta import HubMeta

META_PREFIX = "witness_superseded:"

_NAME = re.compile(rf"(\d{{12}})-([0-9a-f]{{16}}){re.escape(SUFFIX)}")


@dataclass(frozen=True)
class WitnessCopy:
    """A witness copy as its file name describes it."""

    name: str
    size: int
    root_prefix: str


def witness_copies(directory: Path | None) -> list[WitnessCopy]:
    """The copies in ``directory`` whose names have the plugin's form, smallest first."""
    if directory is None or not directory.is_dir():
        return []
    copies = []
    for path in directory.glob(f"*{SUFFIX}"):
        if found := _NAME.fullmatch(path.name):
            copies.append(WitnessCopy(path.name, int(found[1]), found[2]))
    return sorted(copies, key=lambda c: (c.size, c.name))


def recorded(session: Session) -> dict[str, int]:
    """The copies already recorded as superseded: name -> the ``log_restored`` entry."""
    rows = session.execute(
        select(HubMeta.key, HubMeta.value).where(HubMeta.key.startswith(META_PREFIX))
    )
    return {key.removeprefix(META_PREFIX): int(value) for key, value in rows}


def unmatched(session: Session, copies: list[WitnessCopy]) -> list[WitnessCopy]:
    """The copies the stored log no longer gives: larger than it, or another root."""
    tree = StoredTree(session)
    size = tree.size()
    return [
        copy
        for copy in copies
        if copy.size > size or tree.root(copy.size).hex()[:16] != copy.root_prefix
    ]


def check_recorded(session: Session, acknowledged: Mapping[str, int]) -> list[str]:
    """Problems with ``hub_meta``'s acknowledgments: each must name a ``log_restored``
    entry (its action column survives a purge)."""
    problems = []
    for name, seq in sorted(acknowledged.items()):
        action = session.scalar(select(LedgerEntryRow.action).where(LedgerEntryRow.seq == seq))
        if action != Action.LOG_RESTORED:
            problems.append(
                f"witness copy {name} is recorded as superseded by entry {seq}, which is no "
                "log_restored entry"
            )
    return problems


@dataclass(frozen=True)
class RestoreRecorded:
    seq: int
    copies: list[str]


def record_restore(hub: Hub, actor: str, *, confirmed: bool) -> RestoreRecorded | None:
    """Record that the database was restored: one ``log_restored`` entry naming every
    witness copy the stored log no longer gives, not yet recorded; ``None`` when there is
    none. Unconfirmed, raises :class:`InputError` naming them (nothing written)."""
    from hub.ledger.service import new_checkpoint

    hub.require_schema()
    directory = witness_directory(hub.settings)
    if directory is None:
        raise InputError(
            "no [ledger] witness_dir is configured: there are no witness copies to record"
        )
    with hub.db.session(write_lock=True) as session:
        done = recorded(session)
        copies = [c for c in unmatched(session, witness_copies(directory)) if c.name not in done]
        if not copies:
            return None
        size = StoredTree(session).size()
        names = ", ".join(c.name for c in copies)
        if not confirmed:
            raise InputError(
                f"the log holds {size} entries and these witness copies no longer match it: "
                f"{names}; if the database was restored from a backup, rerun with --yes to "
                "record that (logged)"
            )
        seq = append(
            session,
            LedgerEvent(
                action=Action.LOG_RESTORED,
                actor=actor,
                role=ActorRole.ADMINISTRATOR,
                reason=f"restored from a backup holding {size} entries; superseded witness "
                f"copies: {names}"[:2000],
            ),
        )
        for copy in copies:
            set_meta(session, META_PREFIX + copy.name, str(seq))
    new_checkpoint(hub)  # signs the log with the record in it (a new witness copy too)
    return RestoreRecorded(seq, [c.name for c in copies])


def require_no_unrecorded_restore(hub: Hub) -> None:
    """Refuse (ConfigError, exit 2) to start a sync or worker on a log that no longer gives
    its largest witness copy (shorter than it, or another root at its size: a restore the
    hub has written after), unless that restore is recorded. Reads file names and one
    tree head."""
    directory = witness_directory(hub.settings)
    copies = witness_copies(directory)
    if not copies:
        return
    largest = copies[-1]
    with hub.db.session() as session:
        if largest.name in recorded(session) or not unmatched(session, [largest]):
            return
        size = StoredTree(session).size()
    held = (
        f"holds {size} entries, but witness copy {largest.name} in {directory} covers "
        f"{largest.size}"
        if largest.size > size
        else f"no longer gives the root of witness copy {largest.name} in {directory}"
    )
    raise ConfigError(
        f"the transfer log {held}: the database was restored from a backup, or entries "
        "were removed or altered. Check which; after a restore record it with `evi log "
        "restored --yes` (logged), then run again"
    )
