"""What the two steps of an inbound batch share: its counts, the run's caches, and the
batch as prepared (see :mod:`hub.sync.inbound`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.consent.snapshots import SnapshotCache
from hub.ledger.writer import PreparedEntries
from hub.store.bulk import rows_in
from hub.sync.routing import RoutingCache


@dataclass
class InboundCounts:
    pulled: int = 0
    stored: int = 0
    refused: int = 0
    invalid: int = 0
    unmapped: int = 0
    queued: int = 0
    denied: int = 0
    decisions: dict[str, int] = field(default_factory=dict)

    def tally(self, decision: str, reason: str) -> None:
        key = f"{decision}:{reason}"
        self.decisions[key] = self.decisions.get(key, 0) + 1

    def add(self, other: InboundCounts) -> None:
        for name in ("pulled", "stored", "refused", "invalid", "unmapped", "queued", "denied"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, n in other.decisions.items():
            self.decisions[key] = self.decisions.get(key, 0) + n


@dataclass
class InboundRun:
    """What the batches of one run share (see the module docstring)."""

    snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    routing: RoutingCache = field(default_factory=RoutingCache)


@dataclass(slots=True)
class StagedRecord:
    """A record to insert or update in this batch, and route afterwards."""

    id: int | None
    source: str
    source_id: str
    participant_id: int
    kind: str
    category: str
    payload_sha256: str
    restricted: bool
    updated_at: datetime  # the authority's time of this version (part of its keys)
    body: dict[str, Any]
    row: tuple[Any, ...]  # the record's columns, in RECORD_COLUMNS order


Queued = tuple[StagedRecord, str, str, str]
"""(record, idempotency key, recipient, purpose): one outbox row to write."""


@dataclass
class PreparedBatch:
    """Everything a batch will write, worked out before the write transaction."""

    counts: InboundCounts
    cursor: str | None
    people: dict[int, tuple[int, bool]]  # id -> (consent_revision, protected) as decided on
    unknown: list[str]  # lookup digests of people refused for lack of consent
    protect: list[int]  # people an authority reported as having a protected identity
    records: list[StagedRecord]
    queued: list[Queued]
    entries: PreparedEntries


def existing_records(
    session: Session, source: str, source_ids: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """``source_id → (id, payload_sha256)`` of ``source``'s records already stored."""
    rows = rows_in(
        session.connection(),
        "SELECT source_id, id, payload_sha256 FROM record "
        "WHERE source = ? AND source_id IN ({marks})",
        sorted(set(source_ids)),
        (source,),
    )
    return {source_id: (record_id, digest) for source_id, record_id, digest in rows}
