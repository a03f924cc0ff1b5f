"""Subscription reconcile: who is registered with an authority, and what the ledger says."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from test_consent_support import Clock, ledger, paper_submission, skatteverket_numbers

from hub.consent.service import ConsentService
from hub.consent.snapshots import SnapshotCache
from hub.context import Hub
from hub.model.identity import PersonalIdentity, parse_identity
from hub.store.participants import ParticipantRepository
from hub.store.tables.sync import Subscription
from hub.sync.subscriptions import SubscriptionChanges, reconcile

COVERED, NO_IDENTITY, PROTECTED = skatteverket_numbers(3)
WITH_IDENTITY = ["identity", "plan"]


class Authority:
    """Stands in for the af connector: records whom it is asked to follow or forget."""

    name = "af"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def subscribe(self, identity: PersonalIdentity) -> None:
        self.calls.append(("subscribe", identity.number))

    def unsubscribe(self, identity: PersonalIdentity) -> None:
        self.calls.append(("unsubscribe", identity.number))


@pytest.mark.parametrize("cached", [True, False], ids=["run-cache", "no-cache"])
def test_reconcile_registers_refuses_cancels_and_registers_again_on_the_same_row(
    hub: Hub, cached: bool
) -> None:
    clock = Clock()
    service = ConsentService(hub, clock=clock)
    first = service.register(paper_submission(COVERED, categories=WITH_IDENTITY), actor="cw")
    service.register(paper_submission(NO_IDENTITY), actor="cw")
    service.register(paper_submission(PROTECTED, categories=WITH_IDENTITY), actor="cw")
    with hub.db.session() as session:
        ParticipantRepository(session, hub.keys).ensure(
            parse_identity(PROTECTED), protected_identity=True
        )
    pseudonym = {n: hub.keys.pseudonym(n) for n in (COVERED, NO_IDENTITY, PROTECTED)}
    authority = Authority()
    cache = SnapshotCache() if cached else None

    def run() -> tuple[SubscriptionChanges, list[tuple[Any, ...]]]:
        """Reconcile now; the changes and the ledger entries it wrote."""
        before = len(ledger(hub.db))
        with hub.db.session() as session:
            changes = reconcile(
                session,
                hub.keys,
                authority,
                clock.advance(minutes=1),
                actor="evi-sync",
                cache=cache,
            )
        entries = [
            (e["action"], e["decision"] or e["reason"], e["participant"])
            for e in ledger(hub.db)[before:]
        ]
        return changes, entries

    def rows() -> list[tuple[int, str, bool]]:
        with hub.db.session() as session:
            found = session.execute(
                select(Subscription.id, Subscription.party, Subscription.active).order_by(
                    Subscription.id
                )
            )
            return [(sid, party, active) for sid, party, active in found]

    changes, entries = run()
    assert (changes.added, changes.cancelled) == (1, 0)
    assert authority.calls == [("subscribe", COVERED)]
    assert entries == [
        ("decision", "permit", pseudonym[COVERED]),
        ("subscription", "subscribed", pseudonym[COVERED]),
        ("decision", "deny", pseudonym[NO_IDENTITY]),
        ("decision", "deny", pseudonym[PROTECTED]),
    ]
    ((row_id, party, active),) = rows()
    assert (party, active) == ("af", True)

    # Nothing changed: a registration in force is not logged again; refusals are.
    changes, entries = run()
    assert (changes.added, changes.cancelled) == (0, 0)
    assert len(authority.calls) == 1
    assert entries == [
        ("decision", "deny", pseudonym[NO_IDENTITY]),
        ("decision", "deny", pseudonym[PROTECTED]),
    ]

    service.withdraw(parse_identity(COVERED), actor="cw", party="af")
    changes, entries = run()
    assert (changes.added, changes.cancelled) == (0, 1)
    assert authority.calls[-1] == ("unsubscribe", COVERED)
    assert entries[-2:] == [
        ("decision", "deny", pseudonym[COVERED]),
        ("subscription", "cancelled", pseudonym[COVERED]),
    ]
    assert rows() == [(row_id, "af", False)]

    # A newly signed amendment is not affected by the earlier withdrawal.
    service.register(
        paper_submission(COVERED, categories=WITH_IDENTITY, amends=first.consent_id), actor="cw"
    )
    changes, entries = run()
    assert (changes.added, changes.cancelled) == (1, 0)
    assert authority.calls[-1] == ("subscribe", COVERED)
    assert ("subscription", "subscribed", pseudonym[COVERED]) in entries
    assert rows() == [(row_id, "af", True)]


def test_a_dry_run_counts_without_calling_the_authority(hub: Hub) -> None:
    clock = Clock()
    ConsentService(hub, clock=clock).register(
        paper_submission(COVERED, categories=WITH_IDENTITY), actor="cw"
    )
    authority = Authority()
    with hub.db.session(dry_run=True) as session:
        changes = reconcile(
            session, hub.keys, authority, clock.advance(minutes=1), actor="t", call_authority=False
        )
    assert (changes.added, changes.cancelled) == (1, 0)
    assert authority.calls == []
    with hub.db.session() as session:
        assert session.scalars(select(Subscription)).all() == []


class FailingAuthority(Authority):
    """Refuses to follow one person; follows the others."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def subscribe(self, identity: PersonalIdentity) -> None:
        super().subscribe(identity)
        if identity.number == self.refused:
            raise RuntimeError("the authority is unavailable")


def test_a_failed_registration_records_nothing_and_the_next_night_registers_everyone(
    hub: Hub,
) -> None:
    numbers = skatteverket_numbers(20)
    service = ConsentService(hub, clock=Clock())
    for number in numbers:
        service.register(paper_submission(number, categories=WITH_IDENTITY), actor="cw")
    before = len(ledger(hub.db))
    failing = FailingAuthority(refused=numbers[7])
    with pytest.raises(RuntimeError), hub.db.session() as session:
        reconcile(session, hub.keys, failing, Clock().advance(minutes=1), actor="evi-sync")
    # every call was made (side by side), yet nothing was recorded: the transaction rolled back
    assert sorted(n for _, n in failing.calls) == sorted(numbers)
    assert len(ledger(hub.db)) == before
    with hub.db.session() as session:
        assert session.scalars(select(Subscription)).all() == []
    working = Authority()
    with hub.db.session() as session:
        changes = reconcile(
            session, hub.keys, working, Clock().advance(minutes=2), actor="evi-sync"
        )
    assert changes.added == len(numbers)
    assert sorted(n for _, n in working.calls) == sorted(numbers)


def test_snapshots_read_before_the_write_lock_decide_as_fresh_ones_after_a_change(
    hub: Hub,
) -> None:
    """The night reads every snapshot its reconciles will need before taking any write
    lock (`load_before_reconcile`); under the lock each reconcile reloads only the people
    whose consents changed meanwhile, and decides on what is stored then: a consent
    withdrawn between the read and the lock is not registered."""
    from hub.sync.subscriptions import load_before_reconcile

    clock = Clock()
    service = ConsentService(hub, clock=clock)
    service.register(paper_submission(COVERED, categories=WITH_IDENTITY), actor="cw")
    service.register(paper_submission(NO_IDENTITY, categories=WITH_IDENTITY), actor="cw")
    cache = SnapshotCache()
    with hub.db.session() as session:
        load_before_reconcile(session, ["af"], clock.advance(minutes=1), cache)
    assert cache.loads == 2
    service.withdraw(parse_identity(NO_IDENTITY), actor="cw")  # after the read
    authority = Authority()
    with hub.db.session(write_lock=True) as session:
        changes = reconcile(
            session, hub.keys, authority, clock.advance(minutes=1), actor="evi-sync", cache=cache
        )
    assert cache.loads == 3  # under the lock: only the person whose consent changed
    assert authority.calls == [("subscribe", COVERED)]
    assert (changes.added, changes.cancelled) == (1, 0)


def test_a_night_loads_its_snapshots_before_the_reconciles_write_locks(
    demo: Hub, targets: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite every other writer waits while a reconcile holds the write lock; at
    24,000 people loading the snapshots was most of its 10-15 s. Now the night has loaded
    them when the first reconcile begins, and the reconciles load none (nothing changed)."""
    from sync_support import sync_options

    from hub.sync import job
    from hub.sync.job import run_sync

    seen: list[int] = []
    real = job.reconcile

    def counted(session: Any, keys: Any, connector: Any, at: Any, **kwargs: Any) -> Any:
        cache = kwargs["cache"]
        before = cache.loads
        done = real(session, keys, connector, at, **kwargs)
        seen.append(before)
        seen.append(cache.loads - before)
        return done

    monkeypatch.setattr(job, "reconcile", counted)
    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    loaded_before, loaded_under_lock = seen[0::2], seen[1::2]
    assert len(loaded_before) == 4 and loaded_before[0] > 0
    assert loaded_under_lock == [0, 0, 0, 0]
