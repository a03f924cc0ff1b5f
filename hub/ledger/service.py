"""The ledger's use cases, each in its own transaction: what `evi log …` (and the web
review pages) call.

Reads of the log are themselves logged: a search, an export and a person's extract each
append an entry (action ``ledger_search``/``ledger_export``/``ledger_extract``) naming
who read and with which filters, before anything is shown: a person's extract in the
transaction that reads it; a search and an export in a short transaction of their own,
the entries then read in another that takes no write lock. Personal identity numbers are
turned into the pseudonym at the edge (:func:`pseudonym_for`) and go no further, except
into the person's own extract.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.clock import Clock, cut_off_text, parse_cut_off, utc_now
from hub.context import Hub
from hub.errors import ConfigError, InputError, NotFoundError
from hub.ledger import restore
from hub.ledger.checkpoint import Checkpoint, latest_checkpoint, write_checkpoint
from hub.ledger.event import IDENTITY_NUMBER, ON_BEHALF, Action, ActorRole, LedgerEvent
from hub.ledger.extract import Extract, ProvenEntry
from hub.ledger.purge import count_purgeable, purge_before, require_minimum_retention
from hub.ledger.records import EntryRecord, LedgerQuery, find_entries
from hub.ledger.signing import NoteVerifier, check_signer, load_signer
from hub.ledger.tree import StoredTree
from hub.ledger.verify import Problem, VerifyReport, verify_ledger
from hub.ledger.witness import read_witness_directory, witness_directory
from hub.ledger.writer import append
from hub.model.identity import PersonalIdentity, identity_input
from hub.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ACTOR_HELP = (
    "On whose behalf, for the transfer log, which records 'NAME via cli:USER', USER being "
    "your operating-system user (without --actor: 'cli:USER')."
)
"""The help of every command's ``--actor`` option."""


def cli_actor(on_behalf_of: str | None = None) -> str:
    """Who ran a CLI command, as the transfer log records it: the one place this is made.

    ``cli:<operating-system user>``; with a name given (``--actor NAME``), ``NAME via
    cli:<operating-system user>``: the name says on whose behalf, the part after `` via ``
    who really ran the command, which no option can change (a name has no spaces). Raises
    :class:`InputError` for a name that is not one (spaces, a spreadsheet formula, an
    identity number: it would go into the log), without repeating it.
    """
    try:
        runner = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment (some containers)
        runner = "cli:unknown"
    if on_behalf_of is None:
        return runner
    if not ON_BEHALF.fullmatch(on_behalf_of) or IDENTITY_NUMBER.search(on_behalf_of):
        raise InputError(
            "--actor: give the name of whoever this is done for, e.g. anna.af: a letter or "
            "digit, then letters, digits, '.', '_', ':', '@' or '-', at most 48 characters, "
            "no identity number"
        )
    return f"{on_behalf_of} via {runner}"


def parse_span(
    since: str | None, until: str | None, names: tuple[str, str]
) -> tuple[datetime | None, datetime | None]:
    """A filter's period, from ``since`` up to (not including) ``until``, each read as
    :func:`hub.clock.parse_cut_off` reads a cut-off (as every date of the CLI is read): a
    date ``YYYY-MM-DD`` is the start of that day in Sweden, so ``--from 2026-03-01 --to
    2026-03-02`` is the Swedish day of 1 March (23 hours on the day summer time begins, 25
    on the day it ends); a time with an offset is that instant, one without it Swedish
    time. An error when the period holds no time at all (``until`` not after ``since``),
    which would only ever match nothing. ``names`` are the two options or fields, for the
    message."""
    start = None if since is None else parse_cut_off(since, names[0])
    end = None if until is None else parse_cut_off(until, names[1])
    if start is not None and end is not None and end <= start:
        raise InputError(
            f"{names[1]} {until} is not after {names[0]} {since}: the period runs from "
            f"{names[0]} up to, not including, {names[1]}; give a {names[1]} after {names[0]}"
        )
    return start, end


def pseudonym_for(hub: Hub, text: str) -> str:
    """The participant pseudonym for a personnummer/samordningsnummer given on the CLI."""
    return hub.keys.pseudonym(identity_input(text).number)


REVIEWER_ROLE = ActorRole.LOG_REVIEWER.value
"""The ``role`` of entries recording a read of the log from the CLI."""


def _read_event(
    action: Action,
    actor: str,
    reason: str,
    participant: str | None,
    role: str = REVIEWER_ROLE,
) -> LedgerEvent:
    return LedgerEvent(
        action=action, actor=actor, role=role, reason=reason, participant=participant
    )


MAX_SEARCH = 10_000
"""The most entries one search answers (``limit``); past that, narrow the search or page on
(``after``), or export."""


def search(
    hub: Hub,
    query: LedgerQuery,
    actor: str,
    *,
    role: str = REVIEWER_ROLE,
    one_more: bool = False,
) -> Iterator[EntryRecord]:
    """Entries matching ``query`` (at most ``limit``, 1 to :data:`MAX_SEARCH`), as they are
    read; the search itself is logged before anything is read.

    ``actor`` and ``role`` say who searched: the CLI's OS user as a log reviewer, or a web
    user in their web role (``privacy_officer``). The search's entry is appended and
    committed in a transaction of its own that holds the write lock only for that; the
    entries are then read, as the iterator is consumed, in another that takes no write
    lock (writers do not wait for it), and only from before the search's own entry: the
    answer is the log as it stood when the search was recorded. ``one_more`` reads one entry past
    ``limit`` (never more), so a page can tell whether more match.
    """
    if query.limit is None or not 1 <= query.limit <= MAX_SEARCH:
        raise InputError(
            f"limit: 1 to {MAX_SEARCH:,} entries a search; narrow the search, or use "
            "`evi log export` for more"
        )
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        logged = append(
            session,
            _read_event(Action.LEDGER_SEARCH, actor, query.describe(), query.participant, role),
        )
    before = logged if query.before is None else min(query.before, logged)
    limit = query.limit + 1 if one_more else query.limit
    return _read(hub, replace(query, before=before, limit=limit))


def _read(hub: Hub, query: LedgerQuery) -> Iterator[EntryRecord]:
    with hub.db.session() as session:  # reading only: appends go on meanwhile
        yield from find_entries(session, query)


def export(hub: Hub, query: LedgerQuery, actor: str, fmt: str) -> Iterator[EntryRecord]:
    """Stream entries for an export. The export is logged (and committed) first, so an
    export that is interrupted is still on record."""
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        append(
            session,
            _read_event(
                Action.LEDGER_EXPORT, actor, f"format={fmt}; {query.describe()}", query.participant
            ),
        )
    with hub.db.session() as session:
        yield from find_entries(session, query)


def extract(
    hub: Hub, identity: PersonalIdentity, actor: str, *, role: str = REVIEWER_ROLE
) -> Extract:
    """The person's extract, proven against a checkpoint written for it; ``actor`` and
    ``role`` say who made it (as for :func:`search`)."""
    hub.require_schema()
    participant = hub.keys.pseudonym(identity.number)
    with hub.db.session(write_lock=True) as session:
        records = list(find_entries(session, LedgerQuery(participant=participant)))
        append(
            session,
            _read_event(Action.LEDGER_EXTRACT, actor, "registerutdrag", participant, role),
        )
        checkpoint = write_checkpoint(session, hub.settings, hub.plugins)
        tree = StoredTree(session)
        entries = [
            ProvenEntry(record, tree.inclusion_proof(record.seq, checkpoint.size))
            for record in records
        ]
        vkey = load_signer(session, hub.settings).verifier.vkey
    return Extract(
        identity=identity,
        participant=participant,
        generated_at=datetime.now(UTC),
        checkpoint=checkpoint,
        verifier_key=vkey,
        entries=entries,
    )


def check_signing(hub: Hub) -> None:
    """Before a sync or worker does any work: the checkpoint it ends with could be signed
    (the origin and key on record; see :func:`hub.ledger.signing.check_signer`), and the
    log is not shorter than its witness copies without a recorded restore
    (:func:`hub.ledger.restore.require_no_unrecorded_restore`)."""
    with hub.db.session() as session:
        check_signer(session, hub.settings)
    restore.require_no_unrecorded_restore(hub)


def new_checkpoint(hub: Hub) -> Checkpoint:
    hub.require_schema()
    # It reads (the signing key) before it takes the writer lock: on SQLite that read
    # would go stale if another writer committed in between, so take the lock first.
    with hub.db.session(write_lock=True) as session:
        return write_checkpoint(session, hub.settings, hub.plugins)


def current_checkpoint(hub: Hub) -> Checkpoint:
    hub.require_schema()
    with hub.db.session() as session:
        checkpoint = latest_checkpoint(session)
    if checkpoint is None:
        raise NotFoundError(
            "the ledger has no checkpoint yet; write one with `evi log checkpoint --new`"
        )
    return checkpoint


def verifier(hub: Hub) -> NoteVerifier:
    """The public key of this hub's ledger (from its signing key, checked against the
    fingerprint on record)."""
    hub.require_schema()
    with hub.db.session() as session:
        return load_signer(session, hub.settings).verifier


def _size_to_prove(hub: Hub, size: int | None) -> int:
    if size is not None:
        return size
    return current_checkpoint(hub).size


def prove(hub: Hub, seq: int, size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of entry ``seq`` in the tree of ``size`` (default: the latest
    checkpoint's size), as the documented JSON object."""
    tree_size = _size_to_prove(hub, size)
    if size is None and seq >= tree_size:
        raise InputError(
            f"entry {seq} is newer than the latest checkpoint (size {tree_size}); "
            "write one with `evi log checkpoint --new` or give --size"
        )
    with hub.db.session() as session:
        hashes = StoredTree(session).inclusion_proof(seq, tree_size)
    return {"leaf_index": seq, "tree_size": tree_size, "hashes": [h.hex() for h in hashes]}


def consistency(hub: Hub, first: int, second: int | None = None) -> dict[str, Any]:
    """The consistency proof from size ``first`` to ``second`` (default: the latest
    checkpoint's size), as the documented JSON object."""
    to = _size_to_prove(hub, second)
    with hub.db.session() as session:
        hashes = StoredTree(session).consistency_proof(first, to)
    return {"from": first, "to": to, "hashes": [h.hex() for h in hashes]}


def verify(hub: Hub, given: NoteVerifier | None = None) -> VerifyReport:
    """Verify everything (see :mod:`hub.ledger.verify`), with this hub's public key unless
    ``given``, and the copies in the configured witness directory."""
    hub.require_schema()
    with hub.db.session() as session:
        return verify_in(session, hub.settings, given)


def verify_in(
    session: Session, settings: Settings, given: NoteVerifier | None = None
) -> VerifyReport:
    """:func:`verify` on what ``session`` sees (also what it has written and not committed:
    `evi db copy` verifies the copy before it commits)."""
    key = given
    if key is None:
        try:
            key = load_signer(session, settings).verifier
        except ConfigError:
            if latest_checkpoint(session) is not None:
                raise
            key = None  # no checkpoint and no key yet: nothing is signed to check
    directory = witness_directory(settings)
    acknowledged = restore.recorded(session)
    report = verify_ledger(session, key, read_witness_directory(directory), superseded=acknowledged)
    report.problems.extend(Problem(None, p) for p in restore.check_recorded(session, acknowledged))
    if directory is not None and not directory.is_dir() and report.checkpoints:
        # Copies are written there with every checkpoint: a missing directory (a share
        # unmounted or renamed) would otherwise read as "no copies" and hide a truncation.
        report.problems.append(
            Problem(
                None,
                f"the witness directory {directory} is configured but is not there (or not a "
                "directory): its copies cannot be compared; mount or restore it",
            )
        )
    return report


@dataclass(frozen=True)
class PurgeResult:
    purged: int
    checkpoint: Checkpoint


def purge(
    hub: Hub, before: datetime, actor: str, *, confirmed: bool, clock: Clock = utc_now
) -> PurgeResult:
    """Purge entries recorded before ``before``. Refused (:class:`InputError`, nothing
    changed) for a ``before`` in the future or within ``[ledger] minimum_retention_days``
    of today (:func:`hub.ledger.purge.require_minimum_retention`), confirmed or not.
    Unconfirmed, only counts and raises :class:`InputError` saying how many would go. A
    checkpoint is signed first, so the purged range stays covered by a signed root; the
    purge itself is logged."""
    now = clock()
    if before > now:
        raise InputError("--before is in the future; purging is only for old entries")
    require_minimum_retention(before, now, hub.settings.ledger.minimum_retention_days)
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        count = count_purgeable(session, before)
        if not confirmed:
            raise InputError(
                f"this would purge {count} entries recorded before {cut_off_text(before)}; "
                "rerun with --yes to purge them"
            )
        checkpoint = write_checkpoint(session, hub.settings, hub.plugins)
        purged = purge_before(session, before, clock())
        append(
            session,
            LedgerEvent(
                action=Action.LEDGER_PURGE,
                actor=actor,
                role=REVIEWER_ROLE,
                reason=f"purged {purged} entries recorded before {before.isoformat()}",
            ),
        )
    return PurgeResult(purged, checkpoint)
