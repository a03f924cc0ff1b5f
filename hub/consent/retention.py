"""Retention of stored records (gallring): what the hub keeps once a person's consent ends.

The hub stores an authority's record only while a consent covers it. Once every consent a
person gave has ended (expired, or withdrawn as a whole), nothing about them can be
disclosed any more, and after the deployment's retention time their records have no
purpose left. :func:`purge_records` removes the stored records, and the outbox rows made
from them, of every participant whose consent ended before a given instant (or who has no
consent at all), and logs one ``records_purged`` entry per person, by pseudonym, saying how
many records went.

Kept at first: the participant (pseudonym and encrypted number: the person may still ask
for their log extract), their consents, withdrawals and blocks (the evidence that earlier
disclosures were lawful), the transfer log and the sync history. A consent withdrawn party
by party, or still running, keeps its records (:meth:`Snapshot.consent_ends_at`).

The final step removes a person entirely once that evidence has nothing left to prove:
every consent ended before the instant, the hub holds no records and no outbox rows about
them, no authority has them registered any more (a sync cancels that first), and no
transfer-log entry about their pseudonym still has readable content (all
purged by ``evi log purge``). Their subscriptions, withdrawals, blocks, consent versions
(with the sealed evidence), consents and the participant row are deleted, and one
``records_purged`` entry by pseudonym says so: the log extract, made from the number's
pseudonym, still shows it. People whose records go in a run keep their participant row
until a later run (their ``records_purged`` entry is readable until the log is purged).

Deleted rows are overwritten in a SQLite file (:func:`~hub.store.erasure.overwritten`).
A confirmed purge waits for a running sync (:class:`~hub.errors.LockHeldError`, exit 3):
the night may have read records of these people and be about to store them.

Without ``confirmed`` nothing changes: the call counts and says how many would go. The
participants are read ``FOR UPDATE`` on PostgreSQL (SQLite: the write lock), so a consent
registered meanwhile waits for the purge, then applies to records stored after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from hub.clock import cut_off_text
from hub.consent.snapshots import load_snapshots
from hub.context import Hub
from hub.errors import InputError
from hub.ledger.event import Action, ActorRole, LedgerEvent
from hub.ledger.records import block_spans
from hub.ledger.writer import append_many
from hub.store.bulk import execute_in, rows_in
from hub.store.erasure import overwritten
from hub.store.participants import ParticipantColumns
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.participant import ParticipantRow
from hub.sync.lock import require_no_sync

_CHUNK = 500


@dataclass(frozen=True)
class RecordsPurged:
    """What a purge removed."""

    people: int
    records: int
    outbox_rows: int
    correlation_id: str
    """Shared by the run's ``records_purged`` entries."""
    removed: int = 0
    """People removed entirely (participant, consents, withdrawals, blocks, subscriptions)."""


def purge_records(
    hub: Hub, ended_before: datetime, actor: str, *, confirmed: bool
) -> RecordsPurged:
    """Remove the stored records of everyone whose consent ended before ``ended_before``.

    Raises :class:`InputError` for an instant in the future, and, unconfirmed, an
    :class:`InputError` saying how many people and records would go (nothing changed).
    """
    if ended_before.tzinfo is None:
        raise ValueError("ended_before must be timezone-aware")
    if ended_before > datetime.now(UTC):
        raise InputError(
            "--consent-ended-before is in the future; retention is only for consents that "
            "have already ended"
        )
    hub.require_schema()
    if confirmed:  # a night in progress may hold records of these people, prepared to store
        require_no_sync(hub.db, "a retention purge")
    with hub.db.session(write_lock=True) as session:
        due = _due(session, ended_before)
        records = sum(count for _, count in due)
        ids = [person.id for person, _ in due]
        outbox = _outbox_rows(session, ids)
        gone = _removable(session, ended_before)
        if not confirmed:
            raise InputError(
                f"this would remove {records} stored records ({outbox} outbox rows) of "
                f"{people(len(due))} whose consent ended before {cut_off_text(ended_before)}, "
                f"and {people(len(gone))} entirely ({_ENTIRELY}); "
                "rerun with --yes to remove them"
            )
        connection = session.connection()
        with overwritten(connection):
            execute_in(connection, _DELETE_OUTBOX, ids)
            execute_in(connection, "DELETE FROM record WHERE participant_id IN ({marks})", ids)
            for statement in _DELETE_PERSON if gone else ():
                execute_in(connection, statement, [person.id for person in gone])
        when = cut_off_text(ended_before)
        correlation_id = f"purge-{uuid.uuid4()}"
        removed = (
            f"participant removed with their consents, withdrawals, blocks and subscriptions, "
            f"consent ended before {when}; no stored records or readable log entries left"
        )
        append_many(
            session,
            [
                _purged(
                    person.pseudonym,
                    f"{count} stored records removed, consent ended before {when}",
                    actor,
                    correlation_id,
                )
                for person, count in due
            ]
            + [_purged(person.pseudonym, removed, actor, correlation_id) for person in gone],
        )
    return RecordsPurged(
        people=len(due),
        records=records,
        outbox_rows=outbox,
        correlation_id=correlation_id,
        removed=len(gone),
    )


def _purged(pseudonym: str, what: str, actor: str, correlation_id: str) -> LedgerEvent:
    """The ``records_purged`` entry of one person's part in a retention run."""
    return LedgerEvent(
        action=Action.RECORDS_PURGED,
        actor=actor,
        role=ActorRole.ADMINISTRATOR,
        participant=pseudonym,
        correlation_id=correlation_id,
        reason=f"retention: {what}",
    )


def people(count: int) -> str:
    """``1 person``, ``3 people``."""
    return f"{count} {'person' if count == 1 else 'people'}"


def _due(session: Session, ended_before: datetime) -> list[tuple[ParticipantColumns, int]]:
    """The people with stored records whose consent ended before ``ended_before``, each
    with how many records they have; their participant rows locked on PostgreSQL."""
    held = {
        pid: count
        for pid, count in session.connection()
        .exec_driver_sql("SELECT participant_id, COUNT(*) FROM record GROUP BY participant_id")
        .all()
    }
    return [
        (person, held[person.id]) for person in _consent_ended(session, sorted(held), ended_before)
    ]


def _removable(session: Session, ended_before: datetime) -> list[ParticipantColumns]:
    """The people to remove entirely: every consent ended before ``ended_before``, no
    stored records or outbox rows, registered at no authority any more, and no log entry
    about them with readable content; their participant rows locked on PostgreSQL.

    A registration still in force waits for the next sync to cancel it at the authority
    (it knows the person by their number, which removal deletes): removed first, the
    person would stay registered there, and the authority would go on sending about them.
    """
    connection = session.connection()
    held = {pid for query in _HELD for (pid,) in connection.exec_driver_sql(query)}
    ids = [
        pid
        for (pid,) in connection.exec_driver_sql("SELECT id FROM participant ORDER BY id")
        if pid not in held
    ]
    ended = list(_consent_ended(session, ids, ended_before))
    logged = _readable_in_log(session, [person.pseudonym for person in ended])
    return [person for person in ended if person.pseudonym not in logged]


def _consent_ended(
    session: Session, ids: list[int], ended_before: datetime
) -> Iterator[ParticipantColumns]:
    """Those of the participants ``ids`` whose every consent ended before ``ended_before``
    (or who have none), read :data:`_CHUNK` at a time, their rows locked on PostgreSQL."""
    for start in range(0, len(ids), _CHUNK):
        chunk = _locked(session, ids[start : start + _CHUNK])
        snapshots = load_snapshots(session, chunk)
        for person in chunk:
            ends = snapshots[person.id].consent_ends_at()
            if ends is None or ends < ended_before:
                yield person


def _readable_in_log(session: Session, pseudonyms: list[str]) -> set[str]:
    """Those of ``pseudonyms`` that some log entry with readable content is about.

    A purge clears an entry's participant column with its content, so this asks the
    participant column only (one query per span of blocks), never the entries' bytes. On
    SQLite the per-block participant index answers :data:`_CHUNK` pseudonyms at a time
    (its bound variables are limited); PostgreSQL reads the table once for all of them,
    as one array parameter, where a query per chunk was a whole scan each (measured: 0.4
    to 0.8 s per 500 people at 4M entries, so over a minute for 50,000).
    """
    found: set[str] = set()
    e = LedgerEntryRow
    postgres = session.get_bind().dialect.name == "postgresql"
    size = max(len(pseudonyms), 1) if postgres else _CHUNK
    for start in range(0, len(pseudonyms), size):
        part = pseudonyms[start : start + size]
        for blocks in block_spans(session):
            wanted = [p for p in part if p not in found]
            if not wanted:
                break
            about = (
                e.participant == any_(bindparam("wanted", wanted, type_=ARRAY(String)))
                if postgres
                else e.participant.in_(wanted)
            )
            found.update(
                session.scalars(
                    select(e.participant).distinct().where(e.seq_block.in_(blocks), about)
                )
            )
    return found


_HELD = (
    "SELECT DISTINCT participant_id FROM record",
    "SELECT DISTINCT participant_id FROM outbox",
    "SELECT DISTINCT participant_id FROM subscription WHERE active",
)
"""Who cannot be removed entirely yet, whatever their consent: records or transfers still
held, or a registration at an authority still in force."""

_ENTIRELY = "participant and consents; no stored records or readable log entries left"

_CONSENTS_OF = "SELECT id FROM consent WHERE participant_id IN ({marks})"
_DELETE_PERSON = (
    "DELETE FROM subscription WHERE participant_id IN ({marks})",
    f"DELETE FROM consent_withdrawal WHERE consent_id IN ({_CONSENTS_OF})",  # noqa: S608
    "DELETE FROM consent_block WHERE participant_id IN ({marks})",
    "DELETE FROM consent_party WHERE version_id IN "  # noqa: S608
    f"(SELECT id FROM consent_version WHERE consent_id IN ({_CONSENTS_OF}))",
    f"DELETE FROM consent_version WHERE consent_id IN ({_CONSENTS_OF})",  # noqa: S608
    "DELETE FROM consent WHERE participant_id IN ({marks})",
    "DELETE FROM participant WHERE id IN ({marks})",
)
"""Removing a person entirely, in foreign-key order; ``{marks}`` is the list of ids."""


def _locked(session: Session, ids: list[int]) -> list[ParticipantColumns]:
    p = ParticipantRow
    rows = session.execute(
        select(p.id, p.pseudonym, p.protected_identity, p.consent_revision, p.pnr_ciphertext)
        .where(p.id.in_(ids))
        .order_by(p.id)
        .with_for_update()
    )
    return [ParticipantColumns._make(row) for row in rows]


# outbox is indexed by record_id, not participant_id: reach it through the records
_DELETE_OUTBOX = (
    "DELETE FROM outbox "
    "WHERE record_id IN (SELECT id FROM record WHERE participant_id IN ({marks}))"
)
_COUNT_OUTBOX = (
    "SELECT COUNT(*) FROM outbox "
    "WHERE record_id IN (SELECT id FROM record WHERE participant_id IN ({marks}))"
)


def _outbox_rows(session: Session, ids: list[int]) -> int:
    return sum(row[0] for row in rows_in(session.connection(), _COUNT_OUTBOX, ids))
