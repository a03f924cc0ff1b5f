"""Tables of the nightly sync: stored records, cursors, subscriptions, outbox, runs, locks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import ColumnElement

from hub.model.records import MAX_CURSOR_LENGTH
from hub.store.base import Base, UTCDateTime

WALK = {
    "sqlite": (
        "CASE WHEN kind = 'referral' THEN json_extract(body, '$.received_on') || '0' "
        "WHEN kind = 'closure' THEN json_extract(body, '$.closed_on') || '1' END"
    ),
    "postgresql": (
        "CASE WHEN kind = 'referral' THEN (body ->> 'received_on') || '0' "
        "WHEN kind = 'closure' THEN (body ->> 'closed_on') || '1' END"
    ),
}
"""``record.walk``, per dialect: a referral's or closure's place in its person's walk of
cases (:mod:`hub.stats.cases`), its date (ISO, so it sorts as text) then ``0`` for a
referral, ``1`` for a closure (referrals first on the same day); ``NULL`` for other
kinds."""


class _Walk(ColumnElement[str]):
    """:data:`WALK` in the dialect's own SQL (a generated column has one expression)."""

    inherit_cache = True
    type = String()


@compiles(_Walk)
def _walk_sql(element: _Walk, compiler: Any, **kw: Any) -> str:
    return WALK.get(compiler.dialect.name, WALK["postgresql"])


class StoredRecord(Base):
    """A fact received from an authority, upserted by ``(source, source_id)``."""

    __tablename__ = "record"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        # who referred each person, read by routing from the index alone (revision 0008)
        Index(
            "ix_record_referring_party",
            "participant_id",
            "referring_party",
            sqlite_where=text("referring_party IS NOT NULL"),
            postgresql_where=text("referring_party IS NOT NULL"),
        ),
        # each person's referrals and closures in walk order: the follow-up statistics
        # find who had a case in a period with two looks per person (revision 0009)
        Index(
            "ix_record_walk",
            "participant_id",
            "walk",
            sqlite_where=text("walk IS NOT NULL"),
            postgresql_where=text("walk IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(200))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    unmapped: Mapped[list[Any]] = mapped_column(JSON, default=list)
    mapping_version: Mapped[str | None] = mapped_column(String(40))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # a referral's body["referring_party"], else None (see referring_party_of)
    referring_party: Mapped[str | None] = mapped_column(String(32))
    # worked out by the database from kind and body (see WALK): never written, so the
    # sync's bulk statements and `evi db copy` leave it out; SQLite keeps it VIRTUAL when
    # revision 0009 added it to an existing table
    walk: Mapped[str | None] = mapped_column(String, Computed(_Walk(), persisted=True))


def referring_party_of(kind: str, body: Mapping[str, Any]) -> str | None:
    """What ``record.referring_party`` holds for a record of ``kind`` with ``body``."""
    if kind != "referral":
        return None
    party = body.get("referring_party")
    return None if party is None else str(party)


@event.listens_for(StoredRecord, "before_insert")
@event.listens_for(StoredRecord, "before_update")
def _keep_referring_party(_mapper: Any, _connection: Any, record: StoredRecord) -> None:
    """Records written through the ORM get the column as the sync's bulk writes give it."""
    record.referring_party = referring_party_of(record.kind, record.body or {})


class SyncCursor(Base):
    """Where the next pull from a connector starts (inclusive); moved only with the data."""

    __tablename__ = "sync_cursor"

    connector: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(MAX_CURSOR_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Subscription(Base):
    """A consented person registered with an authority, so it reports about them."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("participant_id", "party"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    party: Mapped[str] = mapped_column(String(32), index=True)
    active: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxItem(Base):
    """One disclosure waiting for, or done with, delivery to one recipient."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # One person's transfers: the register extract's queued ones, retention's removal,
        # and PostgreSQL's check of this foreign key when a participant is removed.
        Index("ix_outbox_participant_status", "participant_id", "status"),
        # Dead letters paged by id (`evi transfers failed --after`, /admin), without
        # walking every delivered row before them.
        Index("ix_outbox_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("record.id"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    origin: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(20))
    # pending -> delivered | denied | dead | superseded ; retried items stay pending with a
    # later due time
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Whether the transfer went with the person's number when last claimed for a push
    # (None: never claimed). A body never changes under a key: when the gate's answer on
    # the number changes between two attempts, the row gets a new key (routing.rekeyed).
    number_sent: Mapped[bool | None] = mapped_column(Boolean)


class SyncRun(Base):
    """One connector's part of one `evi sync` run, for `evi sync history`."""

    __tablename__ = "sync_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connector: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class SyncLock(Base):
    """Who is syncing a connector right now (one sync per connector at a time)."""

    __tablename__ = "sync_lock"

    connector: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
