"""The sync core's safety net (integration security review): bad data or a fault in one
connector never aborts the night for the others; a record changed back is sent again; a
refused record moves no cursor and marks no one protected; a huge Retry-After parks
nothing for years."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sync_support import (
    a_day_earlier,
    inbound_batch,
    pulled,
    routed_record,
    stored_night,
    sync_options,
)

from connectors.af.connector import AfConnector
from connectors.fk.connector import FkConnector
from connectors.kommun.connector import KommunConnector
from hub.connector.base import Connector
from hub.connector.errors import TransientConnectorError
from hub.connector.service import build_connector, list_connectors
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget, transports
from hub.ledger.canonical import read_document
from hub.model.records import CommonRecord, NativeRecord
from hub.model.vocab import Category
from hub.store.participants import ParticipantRepository
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, StoredRecord, Subscription, SyncRun
from hub.sync.batch import StagedRecord
from hub.sync.inbound import stored_cursor
from hub.sync.job import run_sync
from hub.sync.options import unexpected
from hub.sync.outbox import DELIVERED, PENDING, OutboxRepository, QueuedItem
from hub.sync.routing import idempotency_key
from hub.sync.subscriptions import subscribed_identities

# What an exception's text could quote (an official test number, tests/data); never in a
# report or log.
SECRET = "18900102-9819"


@pytest.fixture
def kommun(demo: Hub, targets: dict[str, SandboxTarget]) -> Iterator[Connector]:
    run_sync(demo, sync_options(targets, deliver=False))
    with build_connector(demo, "kommun", transport=transports(targets)["kommun"]) as connector:
        yield connector


def _refusals(demo: Hub) -> list[dict[str, Any]]:
    with demo.db.session() as session:
        rows = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.action == "inbound_refused")
        ).all()
        return [read_document(row.canonical) for row in rows if row.canonical]


def _ledger_text(demo: Hub) -> bytes:
    with demo.db.session() as session:
        return b"\n".join(c or b"" for c in session.scalars(select(LedgerEntryRow.canonical)))


def _unfinished_runs(demo: Hub) -> list[str]:
    with demo.db.session() as session:
        return list(session.scalars(select(SyncRun.connector).where(SyncRun.finished_at.is_(None))))


# -- 1. an ordinary exception: one record refused, or one connector failed ------------


def test_an_ordinary_exception_mapping_one_record_refuses_that_record_and_the_night_goes_on(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = KommunConnector.map
    broken: set[str] = set()

    def map_some(self: KommunConnector, native: NativeRecord) -> Any:
        if int(native.source_id[-1]) % 3 == 0:  # say a time conversion out of range
            broken.add(native.source_id)
            raise OverflowError(f"date value out of range: {SECRET}")
        return original(self, native)

    monkeypatch.setattr(KommunConnector, "map", map_some)
    report = run_sync(demo, sync_options(targets))
    kommun = report.get("kommun")
    assert broken and kommun.invalid == len(broken), report.table()
    assert kommun.stored > 0 and kommun.status == "partial"
    assert SECRET not in (kommun.error or "")
    for name in ("af", "fk", "region"):
        assert report.get(name).status == "ok", report.table()
        assert report.get(name).delivered > 0
    assert report.exit_code == 1
    assert _unfinished_runs(demo) == []
    refused = [r for r in _refusals(demo) if r["origin"] == "kommun"]
    assert sum(r["reason"] == "invalid_record: OverflowError" for r in refused) == len(broken)
    assert all(r.get("payload_sha256") for r in refused)
    assert SECRET.encode() not in _ledger_text(demo)


def test_a_record_too_deep_to_digest_is_refused_by_type_and_the_batch_is_stored(
    demo: Hub, kommun: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = KommunConnector.map

    def map_like_json(self: KommunConnector, native: NativeRecord) -> Any:
        json.dumps(native.payload)  # what a parser of the record would do with it
        return original(self, native)

    monkeypatch.setattr(KommunConnector, "map", map_like_json)
    natives = [a_day_earlier(n) for n in pulled(demo, kommun)[:5]]
    deep: dict[str, Any] = {}
    for _ in range(50_000):
        deep = {"x": deep}
    hostile = natives[0].model_copy(
        update={"source_id": "KB-deep", "payload": {**natives[0].payload, "extra": deep}}
    )
    with demo.db.session() as session:
        alone = inbound_batch(demo, kommun).prepare(session, natives).counts
    counts = stored_night(demo, kommun, [*natives[:2], hostile, *natives[2:]])
    assert counts.pulled == 6 and counts.invalid == 1 and alone.stored > 0
    assert (counts.stored, counts.queued) == (alone.stored, alone.queued)
    [entry] = [r for r in _refusals(demo) if "RecursionError" in r["reason"]]
    assert entry["reason"] == "invalid_record: RecursionError (no digest: RecursionError)"
    assert "payload_sha256" not in entry or entry["payload_sha256"] is None


def test_a_connector_failing_with_an_ordinary_exception_fails_alone_and_is_recorded(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AfConnector.pull

    def pull_then_break(self: AfConnector, cursor: Any, subscriptions: Any) -> Iterator[Any]:
        for n, native in enumerate(original(self, cursor, subscriptions)):
            if n == 30:  # enough of af's records for each of the others to be sent some
                raise RecursionError(f"maximum recursion depth exceeded near {SECRET}")
            yield native

    monkeypatch.setattr(AfConnector, "pull", pull_then_break)
    report = run_sync(demo, sync_options(targets))
    af = report.get("af")
    assert af.status == "failed", report.table()
    assert af.error is not None and "RecursionError" in af.error and SECRET not in af.error
    assert af.pulled == 30  # what was read before the failure is stored
    for name in ("fk", "kommun", "region"):
        assert report.get(name).status == "ok", report.table()
        assert report.get(name).delivered > 0
    assert report.exit_code == 1
    assert _unfinished_runs(demo) == []
    with demo.db.session() as session:
        [run] = session.scalars(select(SyncRun).where(SyncRun.connector == "af")).all()
    assert run.status == "failed" and run.error == af.error
    status = {s.name: s for s in list_connectors(demo)}
    assert status["af"].status == "failed"  # counted: repeated failures pause it


def test_a_push_failing_with_an_ordinary_exception_stops_that_authority_only(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_push(self: KommunConnector, transfers: Any) -> Any:
        raise KeyError(SECRET)

    monkeypatch.setattr(KommunConnector, "push_many", broken_push)
    report = run_sync(demo, sync_options(targets))
    kommun = report.get("kommun")
    assert kommun.status == "failed" and kommun.delivered == 0, report.table()
    assert kommun.error is not None and "KeyError" in kommun.error and SECRET not in kommun.error
    assert sum(report.get(n).delivered for n in ("af", "fk", "region")) > 0
    assert report.exit_code == 1
    assert _unfinished_runs(demo) == []
    with demo.db.session() as session:
        left = session.execute(
            select(OutboxItem.status, OutboxItem.attempts, OutboxItem.last_error).where(
                OutboxItem.recipient == "kommun"
            )
        ).all()
    assert left and all(status == PENDING for status, _, _ in left)  # tried again later
    tried = [error for _, attempts, error in left if attempts]
    assert tried and all(e == "push stopped by an unexpected KeyError" for e in tried)
    assert SECRET.encode() not in _ledger_text(demo)


def test_a_connector_that_cannot_be_built_fails_alone(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_init(self: AfConnector, *args: Any, **kwargs: Any) -> None:
        raise TypeError(SECRET)

    monkeypatch.setattr(AfConnector, "__init__", broken_init)
    report = run_sync(demo, sync_options(targets))
    af = report.get("af")
    assert af.status == "failed" and af.error and "TypeError" in af.error, report.table()
    assert SECRET not in af.error
    assert {report.get(n).status for n in ("fk", "kommun", "region")} == {"ok"}
    assert report.exit_code == 1
    assert _unfinished_runs(demo) == []


def test_a_fault_in_a_step_the_connectors_share_still_finishes_every_run_row(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.sync.delivery import Deliverer

    def broken_run(self: Deliverer) -> Any:
        raise ZeroDivisionError(SECRET)

    monkeypatch.setattr(Deliverer, "run", broken_run)
    with pytest.raises(ZeroDivisionError):
        run_sync(demo, sync_options(targets))
    assert _unfinished_runs(demo) == []
    with demo.db.session() as session:
        runs = session.scalars(select(SyncRun)).all()
    assert {r.connector for r in runs} == set(targets)
    assert all(r.status == "failed" and "ZeroDivisionError" in (r.error or "") for r in runs)
    assert all(SECRET not in (r.error or "") for r in runs)
    assert {s.status for s in list_connectors(demo) if s.name in targets} == {"failed"}


# -- 2. a record changed back (A -> B -> A) is sent again -------------------------------


def _keys(demo: Hub, record_id: int) -> set[str]:
    with demo.db.session() as session:
        return set(
            session.scalars(
                select(OutboxItem.idempotency_key).where(OutboxItem.record_id == record_id)
            )
        )


def test_a_record_changed_back_and_forth_is_sent_again_each_time_under_new_keys(
    demo: Hub, kommun: Connector
) -> None:
    a, record_id = routed_record(demo, kommun)
    b = a_day_earlier(a)  # the same time (andrad), another body
    first = _keys(demo, record_id)
    seen = set(first)
    for version in (b, a, b, a):
        counts = stored_night(demo, kommun, [version])
        assert counts.queued == len(first) > 0, version.payload
        now = _keys(demo, record_id)
        assert len(now) == len(seen) + len(first)
        seen = now
    assert stored_night(demo, kommun, [a]).queued == 0  # the same version read again: nothing
    assert _keys(demo, record_id) == seen


def test_a_version_prepared_again_after_a_crash_gets_the_same_keys(
    demo: Hub, kommun: Connector
) -> None:
    a, _record_id = routed_record(demo, kommun)
    b = a_day_earlier(a)
    b_later = b.model_copy(update={"payload": {**b.payload, "andrad": "2031-05-06 07:08:09"}})
    for version in (b, a, b_later):  # a new body; back to A at the same time; B, later
        inbound = inbound_batch(demo, kommun)
        prepared = []
        for _ in range(2):  # prepared, then "crashed" before it was stored; prepared again
            with demo.db.session() as session:
                prepared.append(
                    sorted(key for _, key, _, _ in inbound.prepare(session, [version]).queued)
                )
        assert prepared[0] == prepared[1] and prepared[0]
        stored_night(demo, kommun, [version])


def test_an_idempotency_key_names_the_version_by_body_and_time() -> None:
    at = datetime(2024, 1, 8, 6, 0, tzinfo=UTC)
    record = StagedRecord(
        id=1,
        source="kommun",
        source_id="KB-1",
        participant_id=1,
        kind="plan",
        category="plan",
        payload_sha256="a" * 64,
        restricted=False,
        updated_at=at,
        body={},
        row=(),
    )
    key = idempotency_key(record, "af", "coordination")
    assert key.startswith("evi2-") and 16 <= len(key) <= 80
    assert key == idempotency_key(record, "af", "coordination")
    record.updated_at = at.astimezone(ZoneInfo("Europe/Stockholm"))  # the same instant
    assert idempotency_key(record, "af", "coordination") == key
    record.updated_at = at + timedelta(microseconds=1)
    assert idempotency_key(record, "af", "coordination") != key
    record.updated_at = at
    assert idempotency_key(record, "af", "coordination", again=2) != key
    assert idempotency_key(record, "fk", "coordination") != key
    # A time that cannot be written in UTC still names a version (no OverflowError).
    record.updated_at = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=10)))
    assert idempotency_key(record, "af", "coordination").startswith("evi2-")


# -- 3. a refused record's cursor is not taken -------------------------------------------


def _invalid(native: NativeRecord, cursor: str) -> NativeRecord:
    return native.model_copy(
        update={"cursor": cursor, "payload": {**native.payload, "andrad": "not a time"}}
    )


def test_the_cursor_moves_only_over_records_that_mapped(demo: Hub, kommun: Connector) -> None:
    natives = pulled(demo, kommun)[:3]
    before = _cursor(demo)
    huge = "9000000000000000"

    counts = stored_night(demo, kommun, [_invalid(natives[0], huge)])
    assert counts.invalid == 1
    assert _cursor(demo) == before  # a batch of refused records leaves it where it was

    counts = stored_night(demo, kommun, [natives[0], natives[1], _invalid(natives[2], huge)])
    assert counts.invalid == 1
    assert _cursor(demo) == natives[1].cursor  # the refused record is read again next time

    stored_night(demo, kommun, [_invalid(natives[0], huge), natives[2]])
    assert _cursor(demo) == natives[2].cursor  # a valid record after it: past it


def _cursor(demo: Hub) -> str | None:
    with demo.db.session() as session:
        return stored_cursor(session, "kommun")


# -- 4. protected identity: only from a record the gate let in ---------------------------


def _protected_copy(demo: Hub, connector: Connector) -> tuple[NativeRecord, int]:
    """A kommun record about a consenting, unprotected person, now marked protected."""
    native, record_id = routed_record(demo, connector)
    with demo.db.session() as session:
        record = session.get(StoredRecord, record_id)
        assert record is not None
        person = session.get(ParticipantRow, record.participant_id)
        assert person is not None and not person.protected_identity
        pid = person.id
    marked = a_day_earlier(native)
    return marked.model_copy(update={"payload": {**marked.payload, "skyddadIdentitet": True}}), pid


def _is_protected(demo: Hub, pid: int) -> bool:
    with demo.db.session() as session:
        row = session.get(ParticipantRow, pid)
        assert row is not None
        return row.protected_identity


def test_a_protected_mark_on_a_record_the_gate_refuses_is_not_taken(
    demo: Hub, kommun: Connector
) -> None:
    native, pid = _protected_copy(demo, kommun)
    with demo.db.session() as session:
        row = session.get(ParticipantRow, pid)
        assert row is not None
        identity = ParticipantRepository(session, demo.keys).identity_of(row)
    block = ConsentService(demo).block(identity, actor="test", party="kommun")
    counts = stored_night(demo, kommun, [native])
    assert counts.refused == 1 and counts.stored == 0
    assert not _is_protected(demo, pid), "an authority the gate refused marked someone"

    ConsentService(demo).lift_block(identity, block.id, actor="test")
    counts = stored_night(demo, kommun, [native])  # let in: the mark is taken
    assert counts.stored == 1
    assert _is_protected(demo, pid)


def test_a_protected_person_still_registered_is_not_named_in_a_search(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    run_sync(demo, sync_options(targets, deliver=False))
    with demo.db.session() as session:
        registered = set(
            session.scalars(
                select(Subscription.participant_id).where(
                    Subscription.party == "region", Subscription.active.is_(True)
                )
            )
        )
        pid = min(registered)
        row = session.get(ParticipantRow, pid)
        assert row is not None and not row.protected_identity
        number = ParticipantRepository(session, demo.keys).identity_of(row).number
        before = {i.number for i in subscribed_identities(session, demo.keys, "region")}
        assert number in before
        row.protected_identity = True  # marked by another authority during this run
    with demo.db.session() as session:
        after = {i.number for i in subscribed_identities(session, demo.keys, "region")}
    assert after == before - {number}


# -- 5. a huge Retry-After -----------------------------------------------------------------


def _item(attempts: int) -> QueuedItem:
    now = datetime.now(UTC)
    return QueuedItem(
        1, "k" * 16, 1, 1, "kommun", "fk", "coordination", "plan", PENDING, attempts, now, None
    )


@pytest.mark.parametrize("retry_after", [1e12, 99_999_999_999, math.inf, math.nan, -5.0, None])
def test_a_retry_is_never_put_off_more_than_a_day(retry_after: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for attempts in (1, 5, 1000):
        item = _item(attempts)
        OutboxRepository.retry_later(item, now, "busy", retry_after)
        assert now + timedelta(minutes=1) <= item.next_attempt_at <= now + timedelta(days=1)


def test_an_authority_asking_to_wait_for_ages_loses_no_one_elses_results(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(self: FkConnector, transfers: Any) -> Any:
        exc = TransientConnectorError("fk", "rate limited (HTTP 429)")
        exc.retry_after = 99_999_999_999.0  # whatever the HTTP layer lets through
        raise exc

    monkeypatch.setattr(FkConnector, "push_many", busy)
    started = datetime.now(UTC)
    report = run_sync(demo, sync_options(targets))
    assert report.get("fk").retried > 0, report.table()
    assert sum(report.get(n).delivered for n in ("af", "kommun", "region")) > 0
    assert _unfinished_runs(demo) == []
    with demo.db.session() as session:
        due = session.scalars(
            select(OutboxItem.next_attempt_at).where(
                OutboxItem.recipient == "fk", OutboxItem.attempts > 0
            )
        ).all()
        delivered = session.scalars(
            select(OutboxItem.id).where(OutboxItem.status == DELIVERED)
        ).all()
    assert delivered
    assert due and all(d.replace(tzinfo=UTC) <= started + timedelta(days=1, minutes=5) for d in due)


def test_a_record_of_a_category_the_connector_does_not_deliver_is_refused(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a connector declares it delivers bounds what it brings in, as the administrator
    # reviewing it expects: a mapping that yields another category is refused, logged
    monkeypatch.setattr(KommunConnector, "delivers", frozenset({Category.REFERRAL}))
    report = run_sync(demo, sync_options(targets, connectors=["kommun"]))
    kommun = report.get("kommun")
    assert kommun.invalid > 0 and kommun.status == "partial"
    with demo.db.session() as session:
        kinds = set(
            session.scalars(select(StoredRecord.category).where(StoredRecord.source == "kommun"))
        )
    assert kinds == {"referral"}
    reasons = [entry.get("reason") or "" for entry in _refusals(demo)]
    assert any("is not one the connector delivers (referral)" in r for r in reasons)


def test_a_connector_whose_map_returns_another_record_is_stopped_with_its_fault_named(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = KommunConnector.map

    def wrong_source(self: KommunConnector, native: NativeRecord) -> CommonRecord:
        return original(self, native).model_copy(update={"source": "af"})

    monkeypatch.setattr(KommunConnector, "map", wrong_source)
    report = run_sync(demo, sync_options(targets, connectors=["kommun"]))
    kommun = report.get("kommun")
    assert kommun.status != "ok" and kommun.stored == 0
    assert (
        kommun.error and "map() returned a record that is not the one it was given" in kommun.error
    )
    assert "fault in the connector plugin" in kommun.error
    assert report.exit_code == 2


def test_an_unexpected_failure_names_its_type_and_leaves_the_traceback_to_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # `evi --debug sync` logs at debug level: the connector's author gets the traceback;
    # the report line and a nightly log without --debug never quote the exception's text
    try:
        {}["kommun-1234"]
    except KeyError as exc:
        failure = exc
    caplog.set_level(logging.DEBUG, logger="hub.sync.options")
    line = unexpected("kommun", failure)
    assert "unexpected KeyError" in line and "kommun-1234" not in line
    (traced,) = [r for r in caplog.records if r.exc_info]
    assert traced.levelno == logging.DEBUG and traced.exc_info[1] is failure
