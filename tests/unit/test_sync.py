"""The nightly sync on in-process sandbox authorities: what a synchronisation job and an
administrator rely on (issue: exactly-once exchange, faults, consent at send time)."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sync_support import (
    POPULATION,
    SEED,
    a_day_earlier,
    bench,
    count,
    knobs,
    received,
    routed_record,
    stored_night,
    sync_options,
)
from test_consent_support import paper_fields

from hub.connector.service import list_connectors
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.demo.caseload import DemoPerson, assign_profiles
from hub.demo.sandboxes import SandboxTarget
from hub.errors import StorageError
from hub.hookspecs import hookimpl
from hub.ledger.canonical import read_document
from hub.ledger.service import verify
from hub.model.consent import ConsentSubmission
from hub.model.identity import parse_identity
from hub.model.records import NativeRecord
from hub.model.vocab import Category
from hub.settings import get_settings
from hub.store.participants import ParticipantRepository
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, StoredRecord, SyncLock, SyncRun
from hub.sync.batch import InboundCounts
from hub.sync.delivery import Deliverer
from hub.sync.history import history
from hub.sync.inbound import InboundBatch
from hub.sync.job import run_sync
from hub.sync.outbox import DELIVERED, DENIED, PENDING


def _delivered_per_recipient(hub: Hub) -> dict[str, int]:
    with hub.db.session() as session:
        rows = session.execute(
            select(OutboxItem.recipient, OutboxItem.idempotency_key).where(
                OutboxItem.status == DELIVERED
            )
        ).all()
    result: dict[str, int] = {}
    for recipient, _key in rows:
        result[recipient] = result.get(recipient, 0) + 1
    return result


def test_a_night_stores_what_consent_allows_and_delivers_each_transfer_once(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    report = run_sync(demo, sync_options(targets))
    assert report.exit_code == 0, report.table()
    assert all(r.status == "ok" for r in report.connectors), report.table()
    assert sum(r.stored for r in report.connectors) > 0
    assert count(demo, OutboxItem, OutboxItem.status == PENDING) == 0
    delivered = _delivered_per_recipient(demo)
    assert delivered, "routing queued nothing"
    for name, n in delivered.items():
        got = received(targets[name])
        assert got["unique"] == n
        assert got["duplicates"] == 0
    assert verify(demo).ok


def test_a_second_night_with_nothing_new_sends_nothing_again(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    run_sync(demo, sync_options(targets))
    before = {name: received(t)["unique"] for name, t in targets.items()}
    stored = count(demo, StoredRecord)
    again = run_sync(demo, sync_options(targets))
    assert again.exit_code == 0
    assert sum(r.queued + r.delivered for r in again.connectors) == 0
    assert count(demo, StoredRecord) == stored
    assert {name: received(t)["unique"] for name, t in targets.items()} == before


def test_forgetting_an_authority_registers_everyone_again_and_reads_from_the_start(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    # A connector moved from a test endpoint to production: the new address knows no one.
    from hub.connector.service import forget_authority
    from hub.store.tables.sync import Subscription, SyncCursor

    first = run_sync(demo, sync_options(targets))
    registered = first.get("kommun").subscribed
    assert registered > 0

    def state() -> tuple[int, bool]:
        with demo.db.session() as session:
            active = session.scalars(
                select(Subscription.id).where(
                    Subscription.party == "kommun", Subscription.active.is_(True)
                )
            ).all()
            return len(active), session.get(SyncCursor, "kommun") is not None

    assert state() == (registered, True)
    normal = run_sync(demo, sync_options(targets)).get("kommun").pulled  # from the cursor
    registered = state()[0]  # less anyone an authority marked protected the first night
    counted = forget_authority(demo, "kommun", actor="cli:ops", really=False)
    assert (counted.registrations, counted.cursor) == (registered, True)
    assert state() == (registered, True)  # only counted
    forget_authority(demo, "kommun", actor="cli:ops", really=True)
    assert state() == (0, False)
    with demo.db.session() as session:
        last = session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.seq.desc())).first()
        assert last is not None and last.action == "connector_changed"
    again = run_sync(demo, sync_options(targets))
    kommun = again.get("kommun")
    # everyone kommun follows was registered anew; no one was cancelled at the old address
    assert state() == (registered, True) and kommun.subscribed == registered
    assert kommun.cancelled == 0
    assert kommun.pulled > normal  # read from the start
    assert {r.subscribed for r in again.connectors if r.connector != "kommun"} == {0}


def test_records_about_people_without_consent_are_refused_and_logged_by_digest_only(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    knobs(targets["kommun"], all_subscribed=True)  # the authority answers about everyone
    report = run_sync(demo, sync_options(targets, connectors=["kommun"]))
    kommun = report.get("kommun")
    assert kommun.refused > 0
    with demo.db.session() as session:
        refused = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.action == "inbound_refused")
        ).all()
        gate_denials = sum(n for k, n in kommun.decisions.items() if k.startswith("deny:"))
        assert refused, "the sandbox answered about people the hub has no consent for"
        assert len(refused) == kommun.refused - gate_denials
        for entry in refused:
            assert entry.participant is None
            assert b'"payload_sha256":"' in entry.canonical
        consented = {row.id for row in session.scalars(select(ParticipantRow))}
        stored_for = set(session.scalars(select(StoredRecord.participant_id)))
    assert stored_for <= consented


def _state(hub: Hub, targets: dict[str, SandboxTarget]) -> tuple[object, ...]:
    return (
        count(hub, StoredRecord),
        count(hub, OutboxItem),
        count(hub, LedgerEntryRow),
        tuple(received(t)["unique"] for t in targets.values()),
    )


def test_first_dry_run_says_who_would_be_registered_and_changes_nothing(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    before = _state(demo, targets)
    report = run_sync(demo, sync_options(targets, dry_run=True))
    assert {r.status for r in report.connectors} == {"dry_run"}
    assert all(r.subscribed > 0 for r in report.connectors)
    assert _state(demo, targets) == before
    real = run_sync(demo, sync_options(targets))
    assert [r.subscribed for r in real.connectors] == [r.subscribed for r in report.connectors]


def test_dry_run_shows_what_a_night_would_pull_and_decide_and_changes_nothing(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    run_sync(demo, sync_options(targets))
    for target in targets.values():
        with bench(target) as client:
            client.post("/_sandbox/advance", json={"rounds": 1}).raise_for_status()
    before = _state(demo, targets)
    report = run_sync(demo, sync_options(targets, dry_run=True))
    assert {r.status for r in report.connectors} == {"dry_run"}
    assert sum(r.pulled for r in report.connectors) > 0
    assert sum(r.queued for r in report.connectors) > 0
    assert any(k.startswith("permit:") for r in report.connectors for k in r.decisions)
    assert _state(demo, targets) == before


def _person_with_pending(hub: Hub) -> tuple[int, str]:
    with hub.db.session() as session:
        row = session.execute(
            select(OutboxItem.participant_id, ParticipantRow.pseudonym)
            .join(ParticipantRow, ParticipantRow.id == OutboxItem.participant_id)
            .where(OutboxItem.status == PENDING)
            .order_by(OutboxItem.id)
        ).first()
    assert row is not None, "nothing was queued"
    return int(row[0]), str(row[1])


def test_a_withdrawal_recorded_during_delivery_stops_every_send_not_yet_past_the_gate(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    run_sync(demo, sync_options(targets, deliver=False))
    pid, pseudonym = _person_with_pending(demo)
    with demo.db.session() as session:
        identity = ParticipantRepository(session, demo.keys).identity_of(
            session.get(ParticipantRow, pid)
        )
    pushes: list[tuple[str, str, datetime]] = []
    withdrawn_at: list[datetime] = []
    from hub.connector.service import build_connector
    from hub.demo.sandboxes import transports

    connectors = {
        name: build_connector(demo, name, transport=t) for name, t in transports(targets).items()
    }
    for connector in connectors.values():
        original = connector.push_many  # the sandboxes take batches; batch=1 sends one each

        def push_many(transfers, _original=original):  # type: ignore[no-untyped-def]
            if len(pushes) == 2 and not withdrawn_at:
                ConsentService(demo).withdraw(identity, actor="test")
                withdrawn_at.append(datetime.now(UTC))
            results = _original(transfers)
            pushes.extend((t.participant, t.idempotency_key, datetime.now(UTC)) for t in transfers)
            return results

        connector.push_many = push_many  # type: ignore[method-assign]
    Deliverer(demo, connectors, actor="test", max_attempts=3, batch=1).run()
    assert withdrawn_at, "the withdrawal never happened"
    late = {key for p, key, at in pushes if p == pseudonym and at > withdrawn_at[0]}
    # batch=1: each item passes the gate when it is claimed, and the next one is claimed
    # while the current one is pushed; so at most those two were past the gate when the
    # withdrawal committed, and each push after it was permitted before it.
    assert len(late) <= 2
    with demo.db.session() as session:
        permitted = {
            entry.correlation_id: entry.time
            for entry in session.scalars(
                select(LedgerEntryRow).where(
                    LedgerEntryRow.participant == pseudonym,
                    LedgerEntryRow.actor == "test",
                    LedgerEntryRow.decision == "permit",
                )
            )
        }
    assert all(permitted[key] < withdrawn_at[0] for key in late)
    with demo.db.session() as session:
        left = session.scalars(
            select(OutboxItem.status).where(OutboxItem.participant_id == pid)
        ).all()
        denials = session.scalars(
            select(LedgerEntryRow).where(
                LedgerEntryRow.participant == pseudonym, LedgerEntryRow.decision == "deny"
            )
        ).all()
    assert PENDING not in left
    if left.count(DENIED):
        assert any(b'"reason":"withdrawn"' in d.canonical for d in denials)


def test_one_authority_down_the_others_complete_and_the_run_is_a_partial_failure(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    knobs(targets["af"], fail_rate=1.0)
    report = run_sync(demo, sync_options(targets))
    assert report.exit_code == 1
    assert report.get("af").status == "failed"
    assert "af" in (report.get("af").error or "")
    for name in ("fk", "kommun", "region"):
        assert report.get(name).status == "ok", report.table()
        assert report.get(name).stored > 0
    assert count(demo, StoredRecord, StoredRecord.source == "af") == 0
    # the authority comes back: the next night catches up, nothing was lost
    knobs(targets["af"], fail_rate=0.0)
    again = run_sync(demo, sync_options(targets))
    assert again.get("af").status == "ok"
    assert again.get("af").stored > 0
    assert count(demo, OutboxItem, OutboxItem.status == PENDING) == 0


def test_rate_limits_and_flaky_answers_are_retried_to_completion(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    knobs(targets["fk"], rate_limit_rate=1.0, retry_after_seconds=0, fault_budget=1)
    report = run_sync(demo, sync_options(targets, connectors=["fk"]))
    assert report.get("fk").status == "ok", report.table()
    assert report.get("fk").stored > 0


def test_schema_violating_records_are_refused_counted_and_make_the_run_partial(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    knobs(targets["kommun"], invalid_record_rate=0.3)
    report = run_sync(demo, sync_options(targets, connectors=["kommun"]))
    kommun = report.get("kommun")
    assert kommun.invalid > 0
    assert kommun.stored > 0
    assert kommun.status == "partial"
    assert report.exit_code == 1


def test_malformed_answers_fail_the_connector_with_a_readable_error(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    knobs(targets["region"], malformed_rate=1.0)
    report = run_sync(demo, sync_options(targets, connectors=["region"]))
    region = report.get("region")
    assert region.status == "failed"
    assert region.error and region.error.startswith("region: ")
    assert "Traceback" not in region.error


def test_deliveries_to_an_authority_that_stays_down_become_dead_letters_with_a_reason(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_SYNC__MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    hub = Hub(settings=get_settings(), db=demo.db)
    run_sync(hub, sync_options(targets, deliver=False))
    knobs(targets["fk"], fail_rate=1.0)
    report = run_sync(hub, sync_options(targets, connectors=["fk"]))
    assert report.get("fk").dead_lettered > 0
    assert report.exit_code == 1
    with hub.db.session() as session:
        reasons = session.scalars(
            select(OutboxItem.last_error).where(OutboxItem.status == "dead")
        ).all()
    assert reasons and all("gave up after 1 attempt:" in r for r in reasons)


def test_a_connector_failing_night_after_night_is_paused(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_SYNC__PAUSE_AFTER_FAILURES", "2")
    get_settings.cache_clear()
    hub = Hub(settings=get_settings(), db=demo.db)
    knobs(targets["af"], fail_rate=1.0)
    for _ in range(2):
        run_sync(hub, sync_options(targets, deliver=False))
    status = {s.name: s for s in list_connectors(hub)}
    assert status["af"].paused and status["af"].status == "failed"
    third = run_sync(hub, sync_options(targets, deliver=False))
    af = third.get("af")  # not run, but in the report: the night is not all right
    assert af.status == "paused" and af.pulled == 0
    assert af.error is not None and "evi connectors enable af" in af.error
    assert {r.status for r in third.connectors if r.connector != "af"} == {"ok"}
    assert third.exit_code == 1
    with hub.db.session() as session:  # a night it did not run is in its history as such
        runs = session.scalars(
            select(SyncRun).where(SyncRun.connector == "af").order_by(SyncRun.id)
        ).all()
        assert [r.status for r in runs] == ["failed", "failed", "paused"]
        assert runs[-1].error is not None and "evi connectors enable af" in runs[-1].error


def test_nights_the_hubs_own_database_failed_do_not_pause_a_connector(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL restart or fail-over (a maintenance window) that meets the nightly
    sync: in delivery, the step every connector shares, and in one connector's pull. The
    nights are failed, in the history with what happened, exit 1; they neither add to nor
    end an authority's run of failures. Before: two such nights paused every connector."""
    from hub.sync import delivery, phases

    monkeypatch.setenv("EVI_SYNC__PAUSE_AFTER_FAILURES", "2")
    get_settings.cache_clear()
    hub = Hub(settings=get_settings(), db=demo.db)
    gone = StorageError("lost the connection to the database server; check that it is running")

    def away(*_args: Any, **_kwargs: Any) -> Any:
        raise gone

    knobs(targets["af"], fail_rate=1.0)
    assert run_sync(hub, sync_options(targets, deliver=False)).get("af").status == "failed"
    knobs(targets["af"], fail_rate=0.0)
    with monkeypatch.context() as patched:  # the database gone as af's pull starts
        patched.setattr(phases, "stored_cursor", away)
        night = run_sync(hub, sync_options(targets, connectors=["af"], deliver=False))
        assert night.get("af").status == "failed" and night.exit_code == 1
    with monkeypatch.context() as patched:  # and while delivering
        patched.setattr(delivery.Deliverer, "run", away)
        with pytest.raises(StorageError):
            run_sync(hub, sync_options(targets))
    status = {s.name: s for s in list_connectors(hub)}
    assert not any(s.paused for s in status.values())
    assert status["af"].status == "failed"
    assert "lost the connection" in str(status["af"].last_error)
    with hub.db.session() as session:
        runs = session.scalars(
            select(SyncRun).where(SyncRun.connector == "af").order_by(SyncRun.id)
        ).all()
        assert [r.status for r in runs] == ["failed", "failed", "failed"]
    knobs(targets["af"], fail_rate=1.0)  # af's own second failure in a row pauses it
    run_sync(hub, sync_options(targets, deliver=False))
    assert {s.name: s for s in list_connectors(hub)}["af"].paused


def test_plugins_hear_of_every_run_even_one_where_every_connector_is_paused(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[dict[str, str]] = []

    class Alerts:
        @hookimpl
        def evi_sync_finished(self, report: Any, settings: Any) -> None:
            heard.append({r.connector: r.status for r in report.connectors})

    monkeypatch.setenv("EVI_SYNC__PAUSE_AFTER_FAILURES", "1")
    get_settings.cache_clear()
    hub = Hub(settings=get_settings(), db=demo.db)
    hub.plugins.register(Alerts())
    for target in targets.values():
        knobs(target, fail_rate=1.0)
    first = run_sync(hub, sync_options(targets, deliver=False))
    assert first.exit_code == 1
    paused = run_sync(hub, sync_options(targets, deliver=False))
    assert paused.exit_code == 1
    assert heard == [
        {name: "failed" for name in targets},
        {name: "paused" for name in targets},
    ]
    with hub.db.session() as session:  # a night with every connector paused is recorded
        last = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).all()[: len(targets)]
        assert {(r.connector, r.status) for r in last} == {(n, "paused") for n in targets}


def _held_by_another_run(hub: Hub, targets: dict[str, SandboxTarget]) -> None:
    """Every connector's sync lock, held by a live process on this host for an hour."""
    now = datetime.now(UTC)
    with hub.db.session() as session:
        for name in targets:
            session.add(
                SyncLock(
                    connector=name,
                    holder="other",
                    host=socket.gethostname(),
                    pid=os.getpid(),  # alive
                    acquired_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )


def test_a_live_lock_makes_the_run_exit_3_and_a_dead_holders_lock_is_taken_over(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    _held_by_another_run(demo, targets)
    report = run_sync(demo, sync_options(targets))
    assert report.exit_code == 3
    assert all(r.status == "locked" for r in report.connectors)
    with demo.db.session() as session:
        for lock in session.scalars(select(SyncLock)):
            lock.pid = 2**22 + 12345  # no such process
    assert run_sync(demo, sync_options(targets)).exit_code == 0


def test_a_run_that_finds_every_connector_locked_sends_nothing_to_them(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    # The run holding a lock delivers to its connector; one that answers 3 ("another sync
    # is running") must have done nothing, or its deliveries and dead letters would hide
    # behind an exit code a monitor takes for a harmless overlap.
    run_sync(demo, sync_options(targets, deliver=False))

    def pending() -> set[int]:
        with demo.db.session() as session:
            return set(session.scalars(select(OutboxItem.id).where(OutboxItem.status == PENDING)))

    queued = pending()
    assert queued
    _held_by_another_run(demo, targets)
    report = run_sync(demo, sync_options(targets))
    assert report.exit_code == 3
    assert [(r.delivered, r.retried, r.dead_lettered) for r in report.connectors] == [
        (0, 0, 0)
    ] * len(targets)
    assert pending() == queued
    assert _delivered_per_recipient(demo) == {}


def test_seed_is_remembered_per_home(demo: Hub, targets: dict[str, SandboxTarget]) -> None:
    from hub.demo.run import DemoOptions, run_demo
    from hub.errors import InputError

    with pytest.raises(InputError, match=f"seed {SEED}"):
        run_demo(demo, DemoOptions(seed=SEED + 1, setup_only=True), lambda _s: None)


def test_a_person_an_authority_marks_protected_is_cancelled_everywhere_and_sent_without_identity(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    run_sync(demo, sync_options(targets))
    with demo.db.session() as session:
        protected = session.scalars(
            select(ParticipantRow).where(ParticipantRow.protected_identity.is_(True))
        ).all()
        assert protected, f"seed {SEED} has a protected person in its caseload"
        person = protected[0]
        number = ParticipantRepository(session, demo.keys).identity_of(person).number
    before = run_sync(demo, sync_options(targets))
    assert sum(r.cancelled for r in before.connectors) >= 1
    for name, target in targets.items():
        with bench(target) as client:
            subscribed = client.get("/_sandbox/subscriptions").json()["numbers"]
        assert number not in subscribed, name
        for item in received(target)["items"]:
            assert number not in str(item["body"]), f"{name} received a protected identity"


def test_a_recipient_the_person_blocked_identity_for_gets_the_record_without_the_number(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    # The record's category is consented to for the recipient, but the person has blocked
    # `identity` (who they are) for it: the transfer goes with the pseudonym only.
    from hub.model.vocab import Category

    run_sync(demo, sync_options(targets, deliver=False))
    with demo.db.session() as session:
        queued = session.scalars(
            select(OutboxItem).where(OutboxItem.status == PENDING).order_by(OutboxItem.id)
        ).all()
        people = {p.id: p for p in session.scalars(select(ParticipantRow))}
        authorities: dict[int, set[str]] = {}
        for i in queued:
            if i.recipient != "team" and not people[i.participant_id].protected_identity:
                authorities.setdefault(i.participant_id, set()).add(i.recipient)
        item = next(
            i
            for i in queued
            if i.recipient != "team" and len(authorities.get(i.participant_id, ())) > 1
        )
        person = people[item.participant_id]
        identity = ParticipantRepository(session, demo.keys).identity_of(person)
        key, recipient, pseudonym = item.idempotency_key, item.recipient, person.pseudonym
        others = {
            i.idempotency_key: i.recipient
            for i in queued
            if i.participant_id == person.id and i.recipient != recipient
        }
    ConsentService(demo).block(identity, actor="test", party=recipient, category=Category.IDENTITY)
    run_sync(demo, sync_options(targets))

    def body_of(name: str, wanted: str) -> str:
        [pushed] = [i for i in received(targets[name])["items"] if i["idempotency_key"] == wanted]
        return str(pushed["body"])

    written = (identity.number, identity.formatted())  # the authorities' APIs differ
    sent = body_of(recipient, key)
    assert pseudonym in sent and not any(w in sent for w in written)
    for other_key, other in others.items():  # the block names one recipient only
        if other != "team":
            assert any(w in body_of(other, other_key) for w in written)
    with demo.db.session() as session:
        decisions = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.correlation_id == key)
        ).all()
    said = [
        (e.decision, tuple(read_document(e.canonical)["categories"]))
        for e in decisions
        if e.decision
    ]
    assert ("deny", ("identity",)) in said
    assert any(d == "permit" and "identity" not in c for d, c in said)
    assert verify(demo).ok


def test_a_transfer_whose_number_may_no_longer_go_is_sent_again_under_a_new_key(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    # The first attempt reaches the authority with the person's number but its answer is
    # lost; before the retry the person blocks `identity` for that authority. The retry
    # carries the pseudonym only: another body, so it must not reuse the key the
    # authority already holds (it would answer 422 and the transfer be dead for good).
    from hub.connector.errors import TransientConnectorError
    from hub.connector.service import build_connector
    from hub.demo.sandboxes import transports
    from hub.model.vocab import Category

    run_sync(demo, sync_options(targets, deliver=False))
    with demo.db.session() as session:
        people = {p.id: p for p in session.scalars(select(ParticipantRow))}
        item = next(
            i
            for i in session.scalars(
                select(OutboxItem).where(OutboxItem.status == PENDING).order_by(OutboxItem.id)
            )
            if i.recipient != "team" and not people[i.participant_id].protected_identity
        )
        person = people[item.participant_id]
        identity = ParticipantRepository(session, demo.keys).identity_of(person)
        item_id, key, recipient = item.id, item.idempotency_key, item.recipient
        later = datetime.now(UTC) + timedelta(days=1)
        for other in session.scalars(select(OutboxItem).where(OutboxItem.id != item_id)):
            other.next_attempt_at = later  # this one transfer alone is due
        session.commit()

    def deliver(*, lose_answer: bool) -> None:
        with build_connector(demo, recipient, transport=transports(targets)[recipient]) as built:
            if lose_answer:
                original = built.push_many

                def push_many(transfers):  # type: ignore[no-untyped-def]
                    original(transfers)  # the authority stores it ...
                    raise TransientConnectorError(recipient, "the answer was lost")  # ... unheard

                built.push_many = push_many  # type: ignore[method-assign]
            Deliverer(demo, {recipient: built}, actor="test", max_attempts=5, batch=1).run()

    deliver(lose_answer=True)
    ConsentService(demo).block(identity, actor="test", party=recipient, category=Category.IDENTITY)
    with demo.db.session() as session:
        row = session.get(OutboxItem, item_id)
        assert row is not None and (row.status, row.attempts) == (PENDING, 1)
        row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
    deliver(lose_answer=False)

    with demo.db.session() as session:
        row = session.get(OutboxItem, item_id)
        assert row is not None
        assert (row.status, row.last_error) == (DELIVERED, None)
        new_key = row.idempotency_key
    assert new_key != key
    held = {i["idempotency_key"]: str(i["body"]) for i in received(targets[recipient])["items"]}
    written = (identity.number, identity.formatted())  # the authorities' APIs differ
    assert any(w in held[key] for w in written)  # the first attempt, with the number
    assert person.pseudonym in held[new_key] and not any(w in held[new_key] for w in written)
    with demo.db.session() as session:
        said = {
            e.correlation_id
            for e in session.scalars(
                select(LedgerEntryRow).where(LedgerEntryRow.participant == person.pseudonym)
            )
        }
    assert {key, new_key} <= said  # both attempts are in the log under the key each went with


def test_a_record_changed_at_the_authority_is_updated_in_place_and_sent_again_under_new_keys(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    from hub.connector.service import build_connector
    from hub.demo.sandboxes import transports

    run_sync(demo, sync_options(targets, deliver=False))
    with build_connector(demo, "kommun", transport=transports(targets)["kommun"]) as connector:
        native, record_id = routed_record(demo, connector)
        changed = a_day_earlier(native)
        moved = next(v for k, v in changed.payload.items() if native.payload[k] != v)

        def night(record: NativeRecord) -> InboundCounts:
            return stored_night(demo, connector, [record])

        def outbox_keys() -> set[str]:
            with demo.db.session() as session:
                return set(
                    session.scalars(
                        select(OutboxItem.idempotency_key).where(OutboxItem.record_id == record_id)
                    )
                )

        before = outbox_keys()
        assert night(native).queued == 0  # the same version again: nothing new
        counts = night(changed)
        after = outbox_keys()
    assert counts.stored == 1 and counts.queued == len(before) > 0
    assert before < after and len(after) == 2 * len(before)  # new version, new keys
    with demo.db.session() as session:
        rows = session.scalars(
            select(StoredRecord).where(
                StoredRecord.source == "kommun", StoredRecord.source_id == native.source_id
            )
        ).all()
    assert [r.id for r in rows] == [record_id]  # updated in place, not inserted again
    assert moved in rows[0].body.values()

    # Versions queued before any was sent (and the authority's own, pulled again by this
    # night's sync, queued once more): only the newest goes out to each recipient; an
    # older row would carry the stored (newest) body under a key used for another one.
    report = run_sync(demo, sync_options(targets))
    assert sum(r.dead_lettered for r in report.connectors) == 0, report.table()
    with demo.db.session() as session:
        rows = session.execute(
            select(
                OutboxItem.id, OutboxItem.recipient, OutboxItem.idempotency_key, OutboxItem.status
            ).where(OutboxItem.record_id == record_id)
        ).all()
    newest = {
        recipient: max(r.id for r in rows if r.recipient == recipient)
        for _, recipient, _, _ in rows
    }
    assert {r.status for r in rows if r.id == newest[r.recipient]} == {"delivered"}
    assert {r.status for r in rows if r.id != newest[r.recipient]} == {"superseded"}
    assert before < {r.idempotency_key for r in rows if r.status == "superseded"}
    pushed = {i["idempotency_key"] for t in targets.values() for i in received(t)["items"]}
    assert not {r.idempotency_key for r in rows if r.status == "superseded"} & pushed


def test_a_batch_whose_transaction_fails_is_counted_pulled_not_stored(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: its counts were added inside the transaction, so a commit that failed (a
    full disk) left the report and `evi sync history` saying af stored 393 records that
    were never written."""
    real = InboundBatch.store

    def full_disk(self: InboundBatch, session: Any, batch: Any, counts: InboundCounts) -> bool:
        real(self, session, batch, counts)
        raise StorageError("the disk holding the database is full; free space and run again")

    monkeypatch.setattr(InboundBatch, "store", full_disk)
    report = run_sync(demo, sync_options(targets, connectors=["af"], deliver=False))
    af = report.get("af")
    assert af.status == "failed" and "disk" in (af.error or "")
    assert af.pulled > 0 and (af.stored, af.queued, af.refused) == (0, 0, 0)
    assert count(demo, StoredRecord, StoredRecord.source == "af") == 0
    with demo.db.session() as session:
        counts = session.scalars(select(SyncRun.counts).where(SyncRun.connector == "af")).all()
    assert counts and all(c.get("stored", 0) == 0 for c in counts)


def _history_status(hub: Hub, run_id: int) -> tuple[str, str | None]:
    entry = next(r for r in history(hub, 100) if r["id"] == run_id)
    return entry["status"], entry["error"]


def test_a_run_that_could_not_record_its_end_is_marked_interrupted_by_the_next(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: its rows said "interrupted_or_running" for good (seen after a night on a
    full disk, and after every SIGKILL). The next run holding the connector's lock knows
    no earlier run of it can still be going."""

    def full_disk(*_args: Any, **_kw: Any) -> None:
        raise StorageError("the disk holding the database is full")

    with monkeypatch.context() as patch:
        patch.setattr("hub.sync.job._finish_runs", full_disk)
        with pytest.raises(StorageError):
            run_sync(demo, sync_options(targets, connectors=["af"]))
    with demo.db.session() as session:
        stopped = session.scalars(select(SyncRun.id).where(SyncRun.connector == "af")).one()
    assert _history_status(demo, stopped) == ("interrupted_or_running", None)
    _held_by_another_run(demo, {"af": targets["af"]})  # a live run: it may still be going
    assert run_sync(demo, sync_options(targets, connectors=["af"])).exit_code == 3
    assert _history_status(demo, stopped)[0] == "interrupted_or_running"
    with demo.db.session() as session:
        session.execute(delete(SyncLock))
    assert run_sync(demo, sync_options(targets, connectors=["af"])).exit_code == 0
    status, error = _history_status(demo, stopped)
    assert status == "interrupted" and "stopped before it could record its end" in (error or "")
    assert [r["status"] for r in history(demo, 1, "af")] == ["ok"]


def _unconsented(demo: Hub, targets: dict[str, SandboxTarget]) -> str:
    """A number of the sandbox population with no consent (nor protected identity)."""
    with bench(targets["region"]) as client:
        items = client.get("/_sandbox/people", params={"limit": POPULATION}).json()["items"]
    people = [DemoPerson(number=i["number"], protected=bool(i["protected"])) for i in items]
    return next(p.number for p in assign_profiles(people, SEED)["no_consent"] if not p.protected)


def _records_from(demo: Hub, source: str, number: str) -> int:
    with demo.db.session() as session:
        person = ParticipantRepository(session, demo.keys).find(parse_identity(number))
        if person is None:
            return 0
    return count(
        demo,
        StoredRecord,
        StoredRecord.source == source,
        StoredRecord.participant_id == person.id,
    )


def _consent_from_now(demo: Hub, number: str, party: str) -> None:
    everything = paper_fields(
        number, parties=[party, "team"], categories=[c.value for c in Category]
    )
    everything.update(
        valid_from=datetime.now(UTC) - timedelta(days=1),
        valid_until=datetime.now(UTC) + timedelta(days=300),
    )
    ConsentService(demo).register(ConsentSubmission.model_validate(everything), actor="test")


def test_a_person_followed_later_gets_the_records_the_region_already_held(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    """Before: the region keeps no list, so the hub named the person in its searches from
    the cursor on, and their earlier records (all of them, on a quiet night) were never
    read. Now a newly followed person is read from the start, once."""
    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    quiet = run_sync(demo, sync_options(targets, connectors=["region"], deliver=False))
    number = _unconsented(demo, targets)
    assert _records_from(demo, "region", number) == 0
    _consent_from_now(demo, number, "region")
    night = run_sync(demo, sync_options(targets, connectors=["region"], deliver=False))
    assert night.exit_code == 0
    held = _records_from(demo, "region", number)
    assert held > 0 and night.get("region").stored >= held
    again = run_sync(demo, sync_options(targets, connectors=["region"], deliver=False))
    # read from the start once, not every night: a quiet night reads what it read before
    assert again.get("region").pulled == quiet.get("region").pulled


@pytest.mark.parametrize("name", ["kommun", "af", "fk"])
def test_a_person_registered_later_gets_the_records_the_authority_already_held(
    demo: Hub, targets: dict[str, SandboxTarget], name: str
) -> None:
    """An authority that keeps a list writes a newly registered person's records again, as
    changed now, so the hub reading on from its cursor gets them (docs/connectors.md). Before,
    the sandboxes left them at their old places, behind the cursor: a person whose consent
    came after the first night had none of their history from kommun, af or fk."""
    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    quiet = run_sync(demo, sync_options(targets, connectors=[name], deliver=False))
    number = _unconsented(demo, targets)
    _consent_from_now(demo, number, name)
    night = run_sync(demo, sync_options(targets, connectors=[name], deliver=False))
    assert night.exit_code == 0
    with bench(targets[name]) as client:
        rounds = client.get("/_sandbox/info").json()["rounds"]
    # every record the authority held about the person, once: one per round
    assert _records_from(demo, name, number) == rounds > 0
    assert night.get(name).pulled == quiet.get(name).pulled + rounds
    again = run_sync(demo, sync_options(targets, connectors=[name], deliver=False))
    assert again.get(name).pulled == quiet.get(name).pulled


def test_transfers_put_off_while_the_clock_was_ahead_are_due_again(
    demo: Hub, targets: dict[str, SandboxTarget], caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a transfer put off while the server's clock was ahead (seen with faketime
    +1100 days) waited for the date that clock gave it, years away. No put-off reaches
    beyond a day, so one due later than that is due now."""
    run_sync(demo, sync_options(targets, deliver=False))
    ahead = datetime.now(UTC) + timedelta(days=1100)
    with demo.db.session() as session:
        ids = session.scalars(select(OutboxItem.id).where(OutboxItem.status == PENDING)).all()
        assert ids
        session.execute(
            update(OutboxItem).where(OutboxItem.id.in_(ids)).values(next_attempt_at=ahead)
        )
        tomorrow = datetime.now(UTC) + timedelta(hours=23)  # a put-off within reach: kept
        session.execute(
            update(OutboxItem).where(OutboxItem.id == ids[0]).values(next_attempt_at=tomorrow)
        )
    caplog.set_level("WARNING", logger="hub.sync.delivery")
    report = run_sync(demo, sync_options(targets, connectors=[], deliver=True))
    assert report.exit_code == 0
    with demo.db.session() as session:
        left = session.scalars(select(OutboxItem.id).where(OutboxItem.status == PENDING)).all()
    assert left == [ids[0]]
    assert any("the clock was ahead" in r.getMessage() for r in caplog.records)
