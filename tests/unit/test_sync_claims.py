"""Delivery claims in two steps on SQLite: decided while reading, taken in a short write.

A privacy officer relies on every send having passed the gate on the consents as
committed when it was claimed; an operator relies on no transfer being claimed twice.
These tests change the consents, or claim the items, between the two steps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sync_support import sync_options

from hub.consent.service import ConsentService
from hub.consent.snapshots import SnapshotCache
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget
from hub.store.participants import ParticipantRepository
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem
from hub.sync.claims import ClaimPlan, claim_due, plan_claim, take_claim
from hub.sync.job import run_sync
from hub.sync.outbox import DENIED, PENDING

LEASE = timedelta(minutes=10)
RECIPIENTS = ["af", "fk", "kommun", "region", "team"]


@pytest.fixture
def queued(demo: Hub, targets: dict[str, SandboxTarget]) -> Hub:
    run_sync(demo, sync_options(targets, deliver=False))
    return demo


def _plan(hub: Hub, now: datetime) -> ClaimPlan:
    with hub.db.session() as session:
        plan = plan_claim(
            session,
            hub.keys,
            SnapshotCache(),
            now,
            limit=10_000,
            recipients=RECIPIENTS,
            share=None,
            actor="test",
        )
    assert plan is not None, "nothing was queued"
    return plan


def _ledger_size(hub: Hub) -> int:
    with hub.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0)


def _due(hub: Hub, now: datetime) -> int:
    with hub.db.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxItem)
                .where(OutboxItem.status == PENDING, OutboxItem.next_attempt_at <= now)
            )
            or 0
        )


def test_a_claim_decided_while_reading_is_taken_when_nothing_changed(queued: Hub) -> None:
    now = datetime.now(UTC)
    due, before = _due(queued, now), _ledger_size(queued)
    plan = _plan(queued, now)
    assert _due(queued, now) == due, "deciding alone must claim nothing"
    assert _ledger_size(queued) == before, "deciding alone must write nothing"
    with queued.db.session(write_lock=True) as session:
        taken = take_claim(session, plan, LEASE)
    assert taken is not None
    assert taken.handled == len(plan.items) == due
    assert _due(queued, now) == 0, "every planned item is leased"
    assert _ledger_size(queued) == before + len(plan.items), "one decision entry per item"


def test_a_withdrawal_between_deciding_and_taking_is_obeyed(queued: Hub) -> None:
    now = datetime.now(UTC)
    plan = _plan(queued, now)
    person = plan.claimed.claims[0].item.participant_id
    mine = [c.item.id for c in plan.claimed.claims if c.item.participant_id == person]
    with queued.db.session() as session:
        identity = ParticipantRepository(session, queued.keys).identity_of(
            session.get(ParticipantRow, person)
        )
    ConsentService(queued).withdraw(identity, actor="test")
    before = _ledger_size(queued)
    with queued.db.session(write_lock=True) as session:
        assert take_claim(session, plan, LEASE) is None
        assert _ledger_size(queued) == before  # its own read: nothing written by the take
        done = claim_due(
            session,
            queued.keys,
            SnapshotCache(),
            datetime.now(UTC),
            lease=LEASE,
            limit=10_000,
            recipients=RECIPIENTS,
            share=None,
            actor="test",
        )
    assert {c.item.participant_id for c in done.claims}.isdisjoint({person})
    with queued.db.session() as session:
        statuses = session.scalars(select(OutboxItem.status).where(OutboxItem.id.in_(mine)))
        assert set(statuses) == {DENIED}


def test_items_claimed_by_another_in_between_are_not_claimed_twice(queued: Hub) -> None:
    now = datetime.now(UTC)
    plan = _plan(queued, now)
    with queued.db.session(write_lock=True) as session:
        first = claim_due(
            session,
            queued.keys,
            SnapshotCache(),
            now,
            lease=LEASE,
            limit=1,
            recipients=RECIPIENTS,
            share=None,
            actor="other",
        )
    assert first.handled == 1
    before = _ledger_size(queued)
    with queued.db.session(write_lock=True) as session:
        assert take_claim(session, plan, LEASE) is None
    assert _ledger_size(queued) == before
    assert _due(queued, now) == len(plan.items) - 1
