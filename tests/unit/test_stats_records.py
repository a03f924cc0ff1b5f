"""The records the follow-up statistics read: exactly those of the code before the query
was bounded, on SQLite and PostgreSQL.

``_facts_before`` is :func:`hub.stats.records.facts_for_period` as it was before it was
changed to read only referrals and closures through an index (it read every stored
record of everyone, whatever the period): the same people, the same records in the same
order, so the same gate questions, the same ledger entries and the same figures. Caseloads
are generated (hypothesis) with records of every kind, including bodies of other kinds
that carry a ``received_on`` or ``closed_on``, and compared over many periods; the demo's
caseload after a night is compared report by report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from record_support import add_record
from sqlalchemy import ColumnElement, and_, case, delete, func, literal, or_, select
from sqlalchemy.orm import Session
from sync_support import sync_options
from test_consent_support import skatteverket_numbers

from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget
from hub.model.codes import ClosureReason, OutcomeType
from hub.model.domain import Closure, Referral
from hub.model.identity import parse_identity
from hub.stats import followup as stats_followup
from hub.stats.records import CLOSURE, REFERRAL, Fact, facts_for_period
from hub.store import migrate
from hub.store.participants import ParticipantRepository
from hub.store.tables.sync import StoredRecord
from hub.sync.job import run_sync


def _facts_before(session: Session, start: date, end: date) -> dict[int, list[Fact]]:
    """The reference: facts_for_period as it was at 4a1079b (verbatim but for its name)."""
    r = StoredRecord
    first, last = start.isoformat(), end.isoformat()
    on = case(
        (r.kind == REFERRAL, r.body["received_on"].as_string()),
        else_=r.body["closed_on"].as_string(),
    )
    walk = on.concat(case((r.kind == REFERRAL, literal("0")), else_=literal("1")))
    kinds = r.kind.in_((REFERRAL, CLOSURE))
    person = (
        select(
            r.participant_id.label("participant_id"),
            func.max(case((on < first, walk))).label("last_before"),
            func.min(case((on > last, walk))).label("first_after"),
            func.max(case((and_(on >= first, on <= last), 1), else_=0)).label("within"),
            func.min(case((and_(r.kind == REFERRAL, on > last), on))).label("next_referral"),
        )
        .where(kinds)
        .group_by(r.participant_id)
        .subquery()
    )
    relevant: ColumnElement[bool] = or_(
        person.c.within == 1,
        person.c.last_before.like("%0"),
        and_(person.c.last_before.like("%1"), person.c.first_after.like("%1")),
    )
    rows = session.execute(
        select(
            r.participant_id,
            r.source,
            r.category,
            r.restricted,
            r.payload_sha256,
            r.kind,
            on,
            r.updated_at,
            r.body["outcome"].as_string(),
            r.body["reason"].as_string(),
        )
        .join(person, person.c.participant_id == r.participant_id)
        .where(
            kinds,
            relevant,
            or_(person.c.next_referral.is_(None), on < person.c.next_referral),
        )
        .order_by(r.participant_id, r.id)
    )
    facts: dict[int, list[Fact]] = defaultdict(list)
    for pid, origin, category, restricted, digest, kind, day, updated, outcome, why in rows:
        facts[pid].append(
            Fact(
                origin,
                category,
                bool(restricted),
                digest,
                REFERRAL if kind == REFERRAL else CLOSURE,
                date.fromisoformat(day),
                updated,
                outcome if kind == CLOSURE else None,
                why if kind == CLOSURE else None,
            )
        )
    return dict(facts)


# -- generated caseloads --------------------------------------------------------------------

BASE = date(2025, 3, 1)
ORIGINS = ("af", "fk", "kommun", "region")
OTHER_KINDS = (("benefit", "benefit"), ("intervention", "intervention"), ("health", "health"))
UPDATES = (
    datetime(2025, 7, 1, tzinfo=UTC),
    datetime(2025, 7, 1, tzinfo=UTC),
    datetime(2025, 7, 2, 8, tzinfo=UTC),
)
NUMBERS = skatteverket_numbers(40)


@dataclass(frozen=True)
class Rec:
    kind: str
    on: date
    origin: str
    updated: datetime
    restricted: bool = False
    outcome: str = "work"
    reason: str = "goal_reached"


days = st.integers(0, 150).map(lambda k: BASE + timedelta(days=k))
referral_or_closure = st.builds(
    Rec,
    kind=st.sampled_from((REFERRAL, CLOSURE)),
    on=days,
    origin=st.sampled_from(ORIGINS),
    updated=st.sampled_from(UPDATES),
    restricted=st.booleans(),
    outcome=st.sampled_from([c.value for c in OutcomeType][:3]),
    reason=st.sampled_from([c.value for c in ClosureReason][:3]),
)
other = st.builds(
    Rec,
    kind=st.sampled_from([k for k, _ in OTHER_KINDS]),
    on=days,
    origin=st.sampled_from(ORIGINS),
    updated=st.sampled_from(UPDATES),
)
caseloads = st.lists(
    st.lists(st.one_of(referral_or_closure, referral_or_closure, other), max_size=7),
    min_size=1,
    max_size=len(NUMBERS),
)
periods = st.lists(
    st.tuples(days, st.integers(0, 100)).map(lambda p: (p[0], p[0] + timedelta(days=p[1]))),
    min_size=1,
    max_size=6,
)


def _body(rec: Rec) -> dict[str, Any]:
    if rec.kind == REFERRAL:
        return Referral(
            referring_party=rec.origin, received_on=rec.on, reason="financial_aid"
        ).model_dump(mode="json")
    if rec.kind == CLOSURE:
        return Closure.model_validate(
            {"closed_on": rec.on, "outcome": rec.outcome, "reason": rec.reason}
        ).model_dump(mode="json")
    # another kind whose body carries the dates a referral or closure has: never read
    return {"received_on": rec.on.isoformat(), "closed_on": rec.on.isoformat(), "note": "x"}


def _store(hub: Hub, people: list[list[Rec]], sources: Iterator[int]) -> list[int]:
    ids = []
    keys = hub.keys  # before the write transaction: the first use may store keys
    with hub.db.session() as session:
        session.execute(delete(StoredRecord))
        repository = ParticipantRepository(session, keys)
        for number, records in zip(NUMBERS, people, strict=False):
            person = repository.ensure(parse_identity(number))
            ids.append(person.id)
            for rec in records:
                category = dict(OTHER_KINDS).get(rec.kind) or (
                    "referral" if rec.kind == REFERRAL else "outcome"
                )
                add_record(
                    session,
                    person.id,
                    origin=rec.origin,
                    source_id=f"gen-{next(sources)}",
                    kind=rec.kind,
                    category=category,
                    body=_body(rec),
                    at=rec.updated,
                    restricted=rec.restricted,
                )
    return ids


def _compare(hub: Hub, start: date, end: date) -> dict[int, list[Fact]]:
    with hub.db.session() as session:
        before = _facts_before(session, start, end)
        after = facts_for_period(session, start, end)
    assert after == before, (start, end)
    return after


def test_the_records_read_are_those_read_before_on_generated_caseloads(hub: Hub) -> None:
    sources = count()
    seen = {"people": 0}

    @settings(
        max_examples=120,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(people=caseloads, asked=periods)
    def check(people: list[list[Rec]], asked: list[tuple[date, date]]) -> None:
        _store(hub, people, sources)
        for start, end in asked:
            note(f"period {start} to {end}")
            seen["people"] += len(_compare(hub, start, end))

    check()
    assert seen["people"] > 100  # the comparisons were not all of empty answers


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_same_day_edges_read_the_same(hub: Hub) -> None:
    """A referral and a closure of the same day at the period's edges, and records only
    after it: the cases the walk order and the next referral decide."""
    day = date(2025, 4, 1)
    people = [
        [Rec(REFERRAL, day - timedelta(days=1), "af", UPDATES[0])],
        [
            Rec(REFERRAL, day - timedelta(days=1), "af", UPDATES[0]),
            Rec(CLOSURE, day - timedelta(days=1), "kommun", UPDATES[0]),
        ],
        [
            Rec(CLOSURE, day - timedelta(days=9), "af", UPDATES[0]),
            Rec(CLOSURE, day + timedelta(days=31), "kommun", UPDATES[0]),
            Rec(REFERRAL, day + timedelta(days=40), "kommun", UPDATES[0]),
            Rec(CLOSURE, day + timedelta(days=50), "kommun", UPDATES[0]),
        ],
        [Rec(REFERRAL, day + timedelta(days=31), "af", UPDATES[0])],
        [Rec("benefit", day, "fk", UPDATES[0])],
    ]
    ids = _store(hub, people, count())
    found = _compare(hub, day, day + timedelta(days=29))
    assert set(found) == {ids[0], ids[2]}
    assert [f.on for f in found[ids[2]]] == [day - timedelta(days=9), day + timedelta(days=31)]


def test_the_demo_caseload_reports_the_same_figures_as_before(
    demo: Hub, targets: dict[str, SandboxTarget], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Report by report on the demo's caseload after a night: the same figures and the
    same gate decisions (each decision's payload digest is over the records read)."""
    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    at = datetime.now(UTC)
    today = at.date()
    with demo.db.session() as session:
        dated = session.scalars(
            select(StoredRecord.body).where(StoredRecord.kind.in_((REFERRAL, CLOSURE)))
        ).all()
    days_seen = sorted({date.fromisoformat(b.get("received_on") or b["closed_on"]) for b in dated})
    assert len(days_seen) > 3
    asked = {(days_seen[0], today), (days_seen[len(days_seen) // 2], today)}
    for k in range(0, len(days_seen), max(1, len(days_seen) // 8)):
        asked.add((days_seen[k], min(today, days_seen[k] + timedelta(days=30))))
        asked.add((days_seen[k] + timedelta(days=1), min(today, days_seen[-1])))
    people = 0
    for start, end in sorted(asked):
        if start > end:
            continue
        people += len(_compare(demo, start, end))
        worked = {}
        for label, reader in (("before", _facts_before), ("after", facts_for_period)):
            monkeypatch.setattr(stats_followup, "facts_for_period", reader)
            with demo.db.session() as session:
                worked[label] = stats_followup.work_out(session, start, end, actor="t", at=at)
        old, new = worked["before"], worked["after"]
        assert new.report.model_copy(update={"correlation_id": ""}) == old.report.model_copy(
            update={"correlation_id": ""}
        )
        assert [_decision(e) for e in new.entries.events] == [
            _decision(e) for e in old.entries.events
        ]
    assert people > 0


def _decision(event: Any) -> dict[str, Any]:
    seen = event.model_dump(mode="json")
    seen.pop("correlation_id", None)
    return seen


def test_revision_0009_upgrades_and_downgrades_and_the_statistics_read_the_same(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    """A database of the release before (0008) gets ``record.walk`` and its index from the
    records it holds; downgrading removes both; the statistics read the same throughout."""
    from alembic import command
    from sqlalchemy import inspect

    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    at = datetime.now(UTC).date()
    period = (at - timedelta(days=800), at)
    with demo.db.session() as session:
        expected = _facts_before(session, *period)
    assert expected

    def indexes_and_columns() -> tuple[set[str], set[str]]:
        with demo.db.engine.connect() as connection:
            found = inspect(connection)
            return (
                {i["name"] or "" for i in found.get_indexes("record")},
                {c["name"] for c in found.get_columns("record")},
            )

    with demo.db.engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0008")
    indexes, columns = indexes_and_columns()
    assert "ix_record_walk" not in indexes and "walk" not in columns
    assert "ix_record_referring_party" in indexes  # 0008's own, kept
    assert migrate.upgrade(demo.db) == ("0008", migrate.HEAD)
    indexes, columns = indexes_and_columns()
    assert "ix_record_walk" in indexes and "walk" in columns
    assert migrate.drift(demo.db) == []
    with demo.db.session() as session:
        assert facts_for_period(session, *period) == expected
        walks = session.execute(select(StoredRecord.kind, StoredRecord.walk)).all()
    assert {kind for kind, walk in walks if walk is None} <= {"benefit", "intervention", "health"}
    assert all(walk[-1] == ("0" if kind == REFERRAL else "1") for kind, walk in walks if walk)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_report_never_reads_the_whole_record_table(hub: Hub) -> None:
    """The steering group's report costs what its period and its people need: every
    statement goes into ``record`` through an index by person (``SEARCH``), none reads the
    table through (``SCAN record``), whatever the period; a period nobody's records reach
    reads no record."""
    day = date(2025, 4, 1)
    people = [
        [Rec(REFERRAL, day - timedelta(days=3), "af", UPDATES[0])],  # open at the start
        [
            Rec(REFERRAL, day - timedelta(days=90), "kommun", UPDATES[0]),
            Rec(CLOSURE, day - timedelta(days=60), "kommun", UPDATES[0]),  # closed long ago
            Rec("benefit", day, "fk", UPDATES[0]),
        ],
    ] + [[Rec("intervention", day, "af", UPDATES[0])]] * 5
    _store(hub, people, count())
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "record" in statement:
            seen.append((statement, parameters))

    from sqlalchemy import event

    event.listen(hub.db.engine, "before_cursor_execute", keep)
    try:
        with hub.db.session() as session:
            asked = {
                "the month": facts_for_period(session, day, day + timedelta(days=29)),
                "before anything": facts_for_period(session, date(2020, 1, 1), date(2020, 1, 31)),
            }
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", keep)
    assert [len(found) for found in asked.values()] == [1, 0]
    assert seen
    with hub.db.engine.connect() as connection:
        for statement, parameters in seen:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            details = " ".join(str(row[-1]) for row in plan)
            assert "SCAN record" not in details, details
            assert "SEARCH record USING INDEX ix_record_walk" in details, details
