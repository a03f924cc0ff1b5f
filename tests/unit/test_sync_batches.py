"""Inbound batches in two steps (prepared, then stored) and deliveries split by person.

A batch is prepared (mapped, gated, routed, encoded) outside the write transaction and
stored inside it; what a privacy officer relies on is that nothing is stored on a
decision the consents as committed would not make. These tests change the consents
between the two steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sync_support import a_day_earlier, inbound_batch, sync_options

from hub.connector.base import Connector
from hub.connector.service import build_connector
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget, transports
from hub.model.records import NativeRecord
from hub.store.participants import ParticipantRepository
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, StoredRecord
from hub.sync.batch import InboundCounts
from hub.sync.job import run_sync
from hub.sync.outbox import OutboxRepository
from hub.sync.subscriptions import subscribed_identities


@pytest.fixture
def kommun(demo: Hub, targets: dict[str, SandboxTarget]) -> Iterator[Connector]:
    run_sync(demo, sync_options(targets, deliver=False))
    with build_connector(demo, "kommun", transport=transports(targets)["kommun"]) as connector:
        yield connector


def _changed_records(demo: Hub, connector: Connector) -> tuple[list[NativeRecord], int]:
    """Every stored kommun record about one person, each with a date moved (so each is a
    new version to store and route), and that person's participant id."""
    with demo.db.session() as session:
        natives = list(connector.pull(None, subscribed_identities(session, demo.keys, "kommun")))
        stored = dict(
            session.execute(
                select(StoredRecord.source_id, StoredRecord.participant_id).where(
                    StoredRecord.source == "kommun"
                )
            ).all()
        )
    person = next(stored[n.source_id] for n in natives if n.source_id in stored)
    changed = [a_day_earlier(n) for n in natives if stored.get(n.source_id) == person]
    return changed, person


def _digests(demo: Hub, source_ids: list[str]) -> dict[str, str]:
    with demo.db.session() as session:
        return dict(
            session.execute(
                select(StoredRecord.source_id, StoredRecord.payload_sha256).where(
                    StoredRecord.source == "kommun", StoredRecord.source_id.in_(source_ids)
                )
            ).all()
        )


def test_a_consent_withdrawn_between_preparing_and_storing_a_batch_is_decided_again(
    demo: Hub, kommun: Connector
) -> None:
    batch, person = _changed_records(demo, kommun)
    source_ids = [n.source_id for n in batch]
    before = _digests(demo, source_ids)
    inbound = inbound_batch(demo, kommun)
    with demo.db.session() as session:
        prepared = inbound.prepare(session, batch)
    assert prepared.counts.stored == len(batch) > 0  # as things stood: every version stored
    with demo.db.session() as session:
        row = session.get(ParticipantRow, person)
        assert row is not None
        identity = ParticipantRepository(session, demo.keys).identity_of(row)
        pseudonym = row.pseudonym
    ConsentService(demo).withdraw(identity, actor="test")
    withdrawn = datetime.now(UTC)

    counts = InboundCounts()
    with demo.db.session(write_lock=True) as session:
        assert not inbound.store(session, prepared, counts), "stored on a stale decision"
        assert counts == InboundCounts()  # nothing counted, nothing written
        inbound.run(session, batch, counts)  # decided again, on the consents as committed

    assert counts.stored == 0 and counts.refused == len(batch)
    assert _digests(demo, source_ids) == before, "a version stored after the withdrawal"
    with demo.db.session() as session:
        decisions = session.scalars(
            select(LedgerEntryRow).where(
                LedgerEntryRow.participant == pseudonym,
                LedgerEntryRow.actor == "test",
                LedgerEntryRow.action == "decision",
            )
        ).all()
        queued = session.scalars(
            select(OutboxItem).where(
                OutboxItem.participant_id == person, OutboxItem.created_at >= withdrawn
            )
        ).all()
    assert len(decisions) == len(batch)
    assert all(d.decision == "deny" and b'"reason":"withdrawn"' in d.canonical for d in decisions)
    assert queued == []


def test_a_batch_prepared_before_a_refused_person_was_registered_is_decided_again(
    demo: Hub, kommun: Connector
) -> None:
    batch, person = _changed_records(demo, kommun)
    inbound = inbound_batch(demo, kommun)
    with demo.db.session() as session:
        row = session.get(ParticipantRow, person)
        assert row is not None
        prepared = inbound.prepare(session, batch)
        # As if this person had been unknown when the batch was prepared.
        prepared.unknown.append(row.pnr_lookup)
    with demo.db.session(write_lock=True) as session:
        assert not inbound.store(session, prepared, InboundCounts())


def test_deliveries_split_by_person_claim_every_due_transfer_exactly_once(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    run_sync(demo, sync_options(targets, deliver=False))
    now = datetime.now(UTC)
    with demo.db.session() as session:
        due = {
            (i, p)
            for i, p in session.execute(
                select(OutboxItem.id, OutboxItem.participant_id).where(
                    OutboxItem.status == "pending"
                )
            ).all()
        }
    assert len({p for _, p in due}) > 3, "too few people queued to split"
    shares = 3
    claimed: dict[int, set[tuple[int, int]]] = {}
    for share in range(shares):
        with demo.db.session(write_lock=True) as session:
            items = OutboxRepository(session).claim(
                now, timedelta(minutes=10), 10_000, share=(share, shares)
            )
        claimed[share] = {(item.id, item.participant_id) for item in items}
        assert all(pid % shares == share for _, pid in claimed[share])
    assert set().union(*claimed.values()) == due
    assert sum(map(len, claimed.values())) == len(due)
    with demo.db.session(write_lock=True) as session:  # all leased now: nothing is due
        assert OutboxRepository(session).claim(now, timedelta(minutes=10), 10_000) == []
