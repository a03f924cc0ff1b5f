"""Follow-up statistics: who counts where, by gender, only as far as consent covers
`evaluation`, every gate decision in the ledger, and no cell small enough to single anyone out."""

from __future__ import annotations

import csv
import json
import math
import random
import re
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock, Timeout
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import make_url, select, text
from sqlalchemy.exc import OperationalError
from stats_support import AT, MEN, WOMEN, Caseload, small_caseload
from test_consent_support import ledger, ledger_bytes

from hub.context import Hub
from hub.errors import InputError
from hub.model.canonical import json_sha256
from hub.model.codes import ClosureReason, OutcomeType
from hub.stats import followup as stats_followup
from hub.stats.cases import Case
from hub.stats.counting import Place, RawFigures, Tally, place
from hub.stats.csvfile import render_csv
from hub.stats.followup import followup, followup_report
from hub.stats.records import Fact, facts_for_period
from hub.stats.report import CHANGES, Cell, FollowUpReport, Split
from hub.stats.suppression import suppressed_report
from hub.stats.text import render_text
from hub.store.tables.sync import StoredRecord

START, END = date(2025, 4, 1), date(2025, 6, 30)
ACTOR = "steering:test"


def report(hub: Hub, start: date = START, end: date = END) -> FollowUpReport:
    return followup_report(hub, start, end, actor=ACTOR, at=AT)


def counts(split: Split) -> tuple[int | None, int | None, int | None]:
    return (split.women.count, split.men.count, split.total.count)


def decisions(hub: Hub, result: FollowUpReport) -> list[dict]:
    return [
        e
        for e in ledger(hub.db)
        if e["action"] == "decision" and e["correlation_id"] == result.correlation_id
    ]


@pytest.fixture
def caseload(hub: Hub) -> Caseload:
    return Caseload(hub)


# -- counting on a real database -----------------------------------------------------------


def test_new_active_and_closed_people_are_counted_by_gender(caseload: Caseload) -> None:
    for woman in WOMEN[:6]:  # referred in the period: new and active
        caseload.consent(woman)
        caseload.referral(woman, "2025-04-10")
    for man in MEN[:5]:  # referred before, closed in the period: active and closed
        caseload.consent(man)
        caseload.referral(man, "2025-01-15", origin="af")
        caseload.closure(man, "2025-05-20", outcome="studies", reason="goal_reached")
    caseload.referral(MEN[0], "2025-02-01")  # a second authority's referral: the same case
    caseload.consent(WOMEN[6])
    caseload.referral(WOMEN[6], "2025-07-02")  # after the period
    caseload.consent(MEN[5])
    caseload.referral(MEN[5], "2025-01-01")
    caseload.closure(MEN[5], "2025-03-31")  # closed before the period

    result = report(caseload.hub)

    assert counts(result.new) == (6, 0, 6)
    assert counts(result.active) == (6, 5, 11)
    assert counts(result.closed) == (0, 5, 5)
    assert counts(result.closed_by_outcome["studies"]) == (0, 5, 5)
    assert counts(result.closed_by_outcome["work"]) == (0, 0, 0)
    assert counts(result.closed_by_reason["goal_reached"]) == (0, 5, 5)
    assert set(result.closed_by_outcome) == {c.value for c in OutcomeType}
    assert set(result.closed_by_reason) == {c.value for c in ClosureReason}
    assert result.left_out == Cell(count=0)
    assert result.partly_left_out == Cell(count=0)


def test_period_boundaries_are_inclusive(caseload: Caseload) -> None:
    for woman in WOMEN[:5]:
        caseload.consent(woman)
        caseload.referral(woman, "2025-04-01")  # the first day
    for man in MEN[:5]:
        caseload.consent(man)
        caseload.referral(man, "2025-06-30")  # the last day
    for woman in WOMEN[5:10]:
        caseload.consent(woman)
        caseload.referral(woman, "2025-01-01")
        caseload.closure(woman, "2025-04-01")  # closed on the first day: active, closed
    for man in MEN[5:10]:
        caseload.consent(man)
        caseload.referral(man, "2025-07-01")  # the day after: not yet
        caseload.referral(man, "2025-01-01", origin="af")
        caseload.closure(man, "2025-03-31")  # the day before: no longer

    result = report(caseload.hub)

    assert counts(result.new) == (5, 5, 10)
    assert counts(result.active) == (10, 5, 15)
    assert counts(result.closed) == (5, 0, 5)


def test_people_without_a_case_in_the_period_are_not_asked_about(caseload: Caseload) -> None:
    for man in MEN[:5]:
        caseload.consent(man)
        caseload.referral(man, "2025-05-01")
    caseload.consent(WOMEN[0])
    caseload.referral(WOMEN[0], "2024-01-01")
    caseload.closure(WOMEN[0], "2024-06-01")
    caseload.consent(WOMEN[1])
    caseload.referral(WOMEN[1], "2025-09-01")

    result = report(caseload.hub)

    asked = {e["participant"] for e in decisions(caseload.hub, result)}
    assert asked == {caseload.participant(m).pseudonym for m in MEN[:5]}


def test_a_person_whose_only_stored_records_are_closures_is_counted_as_closed(
    caseload: Caseload,
) -> None:
    for man in MEN[:5]:  # referred before the hub went live, or the referral is late
        caseload.consent(man)
        caseload.closure(man, "2025-05-10", origin="af", outcome="studies", reason="moved")
    caseload.consent(WOMEN[0])
    caseload.closure(WOMEN[0], "2025-03-01")  # before the period: not in it

    result = report(caseload.hub)

    assert counts(result.closed) == (0, 5, 5)
    assert counts(result.active) == (0, 5, 5)
    assert counts(result.new) == (0, 0, 0)  # when it opened is not known
    assert counts(result.closed_by_outcome["studies"]) == (0, 5, 5)
    assert counts(result.closed_by_reason["moved"]) == (0, 5, 5)
    asked = {e["participant"] for e in decisions(caseload.hub, result)}
    assert asked == {caseload.participant(m).pseudonym for m in MEN[:5]}


def test_a_second_authority_closing_after_the_period_keeps_the_case_open_through_it(
    caseload: Caseload,
) -> None:
    for woman in WOMEN[:5]:
        caseload.consent(woman)
        caseload.referral(woman, "2025-01-10")
        caseload.closure(woman, "2025-03-20", origin="af")  # before the period
        caseload.closure(woman, "2025-07-15", outcome="studies")  # after it: the case's end

    result = report(caseload.hub)
    july = report(caseload.hub, date(2025, 7, 1), date(2025, 7, 31))

    assert counts(result.active) == (5, 0, 5)
    assert counts(result.closed) == (0, 0, 0)
    assert counts(july.closed) == (5, 0, 5)
    assert counts(july.closed_by_outcome["studies"]) == (5, 0, 5)


def test_only_the_records_that_can_place_someone_in_the_period_are_read(hub: Hub) -> None:
    """The SQL filter of facts_for_period: for random caseloads and periods, the places
    worked out from what it reads are those worked out from every stored record."""
    people = Caseload(hub)
    chance = random.Random(20250801)
    for number in WOMEN[:20] + MEN[:20]:
        people.consent(number)
        for _ in range(chance.randint(0, 6)):
            on = (date(2025, 3, 1) + timedelta(days=chance.randint(0, 60))).isoformat()
            origin = chance.choice(["af", "kommun"])
            updated = datetime(2025, 7, 1, chance.randint(0, 3), tzinfo=UTC)
            if chance.random() < 0.5:
                people.referral(number, on, origin=origin, updated=updated)
            else:
                outcome = chance.choice(["work", "studies"])
                people.closure(number, on, origin=origin, outcome=outcome, updated=updated)
    with hub.db.session() as session:
        everything = facts_for_period(session, date(2000, 1, 1), date(2099, 12, 31))
        for start_day in range(0, 62, 3):
            start = date(2025, 3, 1) + timedelta(days=start_day)
            for length in (0, 1, 6, 30):
                end = start + timedelta(days=length)
                read = facts_for_period(session, start, end)
                expected = {
                    pid: place(facts, start, end)
                    for pid, facts in everything.items()
                    if place(facts, start, end).counted
                }
                assert {pid: place(facts, start, end) for pid, facts in read.items()} == expected
                for pid, facts in read.items():  # none of what is read comes after the cut
                    later = sorted(
                        f.on for f in everything[pid] if f.on > end and f.kind == "referral"
                    )
                    assert all(f.on < later[0] for f in facts) if later else True


# -- the gate: purpose evaluation ----------------------------------------------------------


def test_a_person_whose_consent_does_not_cover_evaluation_is_not_counted_and_the_deny_is_logged(
    caseload: Caseload,
) -> None:
    for woman in WOMEN[:5]:
        caseload.consent(woman)
        caseload.referral(woman, "2025-05-01")
    caseload.consent(WOMEN[5], purposes=["coordination"])
    caseload.referral(WOMEN[5], "2025-05-01")
    caseload.consent(MEN[0])
    caseload.referral(MEN[0], "2025-05-01", restricted=True)  # obtained for one purpose only

    result = report(caseload.hub)

    assert counts(result.new) == (5, 0, 5)
    assert result.left_out == Cell(count=None, suppressed=True, rule="small_cell")  # 2 people
    by_person = {e["participant"]: e for e in decisions(caseload.hub, result)}
    no_evaluation = by_person[caseload.participant(WOMEN[5]).pseudonym]
    assert no_evaluation["decision"] == "deny"
    assert no_evaluation["reason"] == "purpose_not_covered"
    assert no_evaluation["purpose"] == "evaluation"
    assert (no_evaluation["origin"], no_evaluation["recipient"]) == ("kommun", "team")
    assert (no_evaluation["actor"], no_evaluation["role"]) == (ACTOR, "steering_group")
    assert by_person[caseload.participant(MEN[0]).pseudonym]["reason"] == "restricted_origin"
    assert by_person[caseload.participant(WOMEN[0]).pseudonym]["decision"] == "permit"
    logged = ledger_bytes(caseload.hub.db).decode()
    assert not [n for n in WOMEN[:6] + MEN[:1] if n in logged or n[2:] in logged]


def test_people_counted_from_part_of_their_records_are_reported_as_partly_left_out(
    caseload: Caseload,
) -> None:
    for man in MEN[:5]:
        caseload.consent(man, parties=["kommun", "team"])  # af is not named
        caseload.referral(man, "2025-05-01")
        caseload.closure(man, "2025-06-01", origin="af")

    result = report(caseload.hub)

    assert counts(result.active) == (0, 5, 5)
    assert counts(result.closed) == (0, 0, 0)  # af's closure may not be used
    assert result.partly_left_out == Cell(count=5)
    assert result.left_out == Cell(count=0)


def test_the_gate_is_asked_once_per_person_origin_and_category(caseload: Caseload) -> None:
    woman = WOMEN[0]
    caseload.consent(woman)
    for day in ("2025-04-01", "2025-04-02", "2025-04-03"):
        caseload.referral(woman, day)
    caseload.referral(woman, "2025-04-04", origin="af")
    caseload.closure(woman, "2025-05-01")

    result = report(caseload.hub)

    asked = decisions(caseload.hub, result)
    assert sorted((e["origin"], e["categories"][0]) for e in asked) == [
        ("af", "referral"),
        ("kommun", "outcome"),
        ("kommun", "referral"),
    ]
    with caseload.hub.db.session() as session:
        kommun_referrals = sorted(
            session.scalars(
                select(StoredRecord.payload_sha256).where(
                    StoredRecord.source == "kommun", StoredRecord.kind == "referral"
                )
            )
        )
    kommun = next(e for e in asked if e["categories"] == ["referral"] and e["origin"] == "kommun")
    assert kommun["payload_sha256"] == json_sha256(kommun_referrals)


def test_a_period_that_ends_before_it_starts_is_refused(hub: Hub) -> None:
    with pytest.raises(InputError, match="before it starts"), hub.db.session() as session:
        followup(session, END, START, actor=ACTOR, at=AT)


def test_a_period_that_starts_after_today_is_refused_and_asks_no_one(caseload: Caseload) -> None:
    caseload.consent(WOMEN[0])
    caseload.referral(WOMEN[0], "2025-05-01")
    tomorrow = AT.date() + timedelta(days=1)
    with pytest.raises(InputError, match=r"starts \(2025-08-02\) after today \(2025-08-01\)"):
        followup_report(caseload.hub, tomorrow, date(2025, 12, 31), actor=ACTOR, at=AT)
    assert [e for e in ledger(caseload.hub.db) if e["action"] == "decision"] == []


def test_a_period_that_ends_after_today_is_counted_up_to_today_and_says_so(
    caseload: Caseload,
) -> None:
    for woman in WOMEN[:5]:
        caseload.consent(woman)
        caseload.referral(woman, "2025-07-01")
        caseload.closure(woman, "2025-09-01")  # dated after today: not yet
    caseload.consent(MEN[0])
    caseload.referral(MEN[0], "2025-09-01")  # after today: not yet

    result = report(caseload.hub, date(2025, 7, 1), date(2025, 12, 31))

    assert (result.period_end, result.period_end_requested) == (AT.date(), date(2025, 12, 31))
    assert counts(result.new) == (5, 0, 5)
    assert counts(result.closed) == (0, 0, 0)
    text = render_text(result)
    assert text.splitlines()[0].startswith("Follow-up 2025-07-01 to 2025-08-01 ")
    assert (
        "The period asked for ends 2025-12-31, after the day the report was made: it is "
        "counted up to 2025-08-01." in text
    )
    whole = report(caseload.hub, date(2025, 7, 1), AT.date())
    assert whole.period_end_requested is None and "asked for" not in render_text(whole)


def test_every_output_says_when_the_figures_were_decided_and_that_they_can_change(
    hub: Hub,
) -> None:
    small_caseload(hub)
    result = report(hub)

    text = render_text(result)
    decided = (
        "Decided 2025-08-01 14:00 CEST under the consents in force and the records stored then."
    )
    assert decided in text
    assert " ".join(text.split()).count(CHANGES) == 1  # wrapped for the terminal
    assert "withdrawal, an expired consent, retention" in CHANGES
    rows = list(csv.reader(render_csv(result).splitlines()))
    assert ["decided", decided, "", "", ""] in rows
    assert ["changes", CHANGES, "", "", ""] in rows
    dumped = result.model_dump(mode="json")
    assert (dumped["decided_at"], dumped["changes"]) == ("2025-08-01T12:00:00Z", CHANGES)


def test_the_records_are_read_and_the_gate_asked_without_the_write_lock(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    caseload = small_caseload(hub)
    before = len(ledger(hub.db))
    free: list[bool] = []
    counted = stats_followup.suppressed_report

    def count_and_look(*args: Any, **kwargs: Any) -> FollowUpReport:
        # every record read and every decision made: is the write lock free meanwhile?
        free.append(_write_lock_is_free(hub))
        return counted(*args, **kwargs)

    monkeypatch.setattr(stats_followup, "suppressed_report", count_and_look)
    result = report(hub)

    assert free == [True]
    added = ledger(hub.db)[before:]
    # the same entries as ever: one decision per person, origin and category, and no more
    assert Counter(e["action"] for e in added) == {"decision": 6 + 3 * 2}
    assert Counter((e["participant"], e["origin"], e["categories"][0]) for e in added) == {
        **{(caseload.participant(w).pseudonym, "kommun", "referral"): 1 for w in WOMEN[:6]},
        **{(caseload.participant(m).pseudonym, "kommun", "referral"): 1 for m in MEN[:3]},
        **{(caseload.participant(m).pseudonym, "kommun", "outcome"): 1 for m in MEN[:3]},
    }
    assert {e["correlation_id"] for e in added} == {result.correlation_id}
    assert {e["time"] for e in added} == {"2025-08-01T12:00:00.000000Z"}


def _write_lock_is_free(hub: Hub) -> bool:
    """Could another connection take the write lock right now, without waiting?"""
    if hub.db.dialect == "sqlite":
        path = make_url(hub.db.url).database
        assert path
        turn = FileLock(path + "-writer", timeout=0)  # the hub's own writers' turn
        try:
            turn.acquire()
        except Timeout:
            return False
        turn.release()
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return False
        finally:
            other.close()
        return True
    with hub.db.engine.connect() as other:  # the ledger's lock: its head row
        try:
            other.execute(text("SELECT id FROM ledger_head FOR UPDATE NOWAIT"))
        except OperationalError:
            return False
        finally:
            other.rollback()
    return True


# -- small-cell suppression ----------------------------------------------------------------


def test_small_counts_are_suppressed_with_their_complement_in_json_and_text(
    caseload: Caseload,
) -> None:
    for woman in WOMEN[:3]:
        caseload.consent(woman)
        caseload.referral(woman, "2025-05-01")
    for man in MEN[:6]:
        caseload.consent(man)
        caseload.referral(man, "2025-05-01")

    result = report(caseload.hub)

    assert result.model_dump(mode="json")["new"] == {
        "women": {"count": None, "suppressed": True, "rule": "small_cell"},
        "men": {"count": None, "suppressed": True, "rule": "complementary"},
        "total": {"count": 9, "suppressed": False, "rule": None},
    }
    row = next(line for line in render_text(result).splitlines() if "new (case opened)" in line)
    assert row.split()[-3:] == ["<5", "x", "9"]


def _closed_case(outcome: str, reason: str) -> Case[Fact]:
    return Case(since=date(2025, 1, 1), closed_on=date(2025, 5, 1), outcome=outcome, reason=reason)


def test_a_small_outcome_also_hides_a_second_cell_of_its_column() -> None:
    raw = RawFigures()
    closed = Place(active=True, closed=_closed_case("work", "moved"))
    studies = Place(active=True, closed=_closed_case("studies", "moved"))
    for _ in range(8):
        raw.add("female", closed)
        raw.add("male", closed)
    for _ in range(3):
        raw.add("female", studies)
    for _ in range(9):
        raw.add("male", studies)

    published = _publish(raw)

    assert published.closed_by_outcome["studies"].women.rule == "small_cell"
    assert published.closed_by_outcome["work"].women.rule == "complementary"
    assert counts(published.closed) == (11, 17, 28)
    assert counts(published.closed_by_reason["moved"]) == (11, 17, 28)


_places = st.builds(
    lambda new, closed, outcome, reason: Place(
        new=new,
        active=True,
        closed=_closed_case(outcome, reason) if closed else None,
    ),
    st.booleans(),
    st.booleans(),
    st.sampled_from([c.value for c in OutcomeType][:4]),
    st.sampled_from([c.value for c in ClosureReason][:4]),
)


@settings(max_examples=300, deadline=None)
@given(
    people=st.lists(st.tuples(st.sampled_from(["female", "male"]), _places), max_size=60),
    left_out=st.integers(0, 9),
    partly_left_out=st.integers(0, 9),
)
def test_no_published_cell_holds_1_to_4_people_or_can_be_worked_out_from_its_line(
    people: list[tuple[str, Place]], left_out: int, partly_left_out: int
) -> None:
    raw = RawFigures(left_out=left_out, partly_left_out=partly_left_out)
    for gender, where in people:
        raw.add(gender, where)

    published = _publish(raw)

    rows = [
        (raw.new, published.new),
        (raw.active, published.active),
        (raw.closed, published.closed),
        *((t, published.closed_by_outcome[c]) for c, t in raw.by_outcome.items()),
        *((t, published.closed_by_reason[c]) for c, t in raw.by_reason.items()),
    ]
    for tally, split in rows:
        for column in ("women", "men", "total"):
            cell: Cell = getattr(split, column)
            value = getattr(tally, column)
            assert cell.suppressed if 0 < value < 5 else cell.count in (value, None)
        _assert_line_hides_its_small_cells([split.women, split.men], split.total)
    for column in ("women", "men", "total"):
        for table in (published.closed_by_outcome, published.closed_by_reason):
            parts = [getattr(split, column) for split in table.values()]
            _assert_line_hides_its_small_cells(parts, getattr(published.closed, column))
    for cell, value in (
        (published.left_out, left_out),
        (published.partly_left_out, partly_left_out),
    ):
        assert cell == (
            Cell(count=None, suppressed=True, rule="small_cell")
            if 0 < value < 5
            else Cell(count=value)
        )


def _assert_line_hides_its_small_cells(parts: list[Cell], total: Cell) -> None:
    """What a reader can work out from one line (parts add up to the total), knowing that
    `<5` is 1 to 4 and `x` is 5 or more: never the exact value of a `<5`."""

    def bounds(cell: Cell) -> tuple[float, float]:
        if not cell.suppressed:
            assert cell.count is not None
            return cell.count, cell.count
        return (1, 4) if cell.rule == "small_cell" else (5, math.inf)

    assert sum(c.suppressed for c in [*parts, total]) != 1
    if all(c.suppressed or c.count == 0 for c in [*parts, total]):
        return  # nothing left to hide: the limit docs/statistics.md names (four 1s in a 4)
    for i, part in enumerate(parts):
        if part.rule == "small_cell":
            others = [bounds(p) for j, p in enumerate(parts) if j != i]
            low = bounds(total)[0] - sum(b[1] for b in others)
            high = bounds(total)[1] - sum(b[0] for b in others)
            assert max(1, low) < min(4, high), "a <5 cell can be worked out from its line"
    if total.rule == "small_cell":
        low = sum(bounds(p)[0] for p in parts)
        high = sum(bounds(p)[1] for p in parts)
        assert max(1, low) < min(4, high), "a <5 total can be worked out from its line"


def _publish(raw: RawFigures) -> FollowUpReport:
    return suppressed_report(
        raw,
        period_start=START,
        period_end=END,
        decided_at=AT,
        correlation_id="stats-test",
    )


# -- cases: the measures of one person -----------------------------------------------------


def _referral(on: str, origin: str = "kommun") -> Fact:
    return Fact(origin, "referral", False, "0" * 64, "referral", date.fromisoformat(on), AT)


def _closure(on: str, origin: str = "kommun", outcome: str = "work") -> Fact:
    return Fact(
        origin, "outcome", False, "0" * 64, "closure", date.fromisoformat(on), AT, outcome, "moved"
    )


@pytest.mark.parametrize(
    ("facts", "new", "active", "closed"),
    [
        ([_referral("2025-04-01")], True, True, False),
        ([_referral("2025-06-30")], True, True, False),
        ([_referral("2025-07-01")], False, False, False),
        ([_referral("2025-01-01"), _closure("2025-04-01")], False, True, True),
        ([_referral("2025-01-01"), _closure("2025-06-30")], False, True, True),
        ([_referral("2025-01-01"), _closure("2025-03-31")], False, False, False),
        ([_referral("2025-03-01"), _referral("2025-04-15", "af")], False, True, False),
        (
            [_referral("2024-01-01"), _closure("2024-06-01"), _referral("2025-05-01")],
            True,
            True,
            False,
        ),
        (
            [_referral("2025-01-01"), _closure("2025-03-01"), _closure("2025-04-10", "af")],
            False,
            True,
            True,
        ),
        (
            [_referral("2025-01-01"), _closure("2025-03-01"), _closure("2025-07-10", "af")],
            False,
            True,
            False,
        ),
        ([_closure("2025-05-01")], False, True, True),
        ([_closure("2025-03-01")], False, False, False),
        ([_closure("2025-03-01"), _closure("2025-07-01", "af")], False, True, False),
        ([_closure("2025-05-01"), _referral("2025-06-01")], True, True, True),
    ],
    ids=[
        "referred on the first day",
        "referred on the last day",
        "referred the day after",
        "closed on the first day",
        "closed on the last day",
        "closed the day before",
        "a second authority's referral of an open case",
        "referred again after a closure",
        "a second authority's later closure of a closed case moves its end into the period",
        "a second authority's later closure moves the end past the period: open throughout",
        "a closure without a referral: a case that began before the hub's records",
        "a closure without a referral, before the period",
        "closures without a referral before and after the period: open throughout",
        "a closure without a referral, then a referral: a new case",
    ],
)
def test_where_one_person_counts(facts: list[Fact], new: bool, active: bool, closed: bool) -> None:
    where = place(facts, START, END)
    assert (where.new, where.active, where.closed is not None) == (new, active, closed)


def test_the_latest_closure_in_the_period_gives_the_outcome() -> None:
    facts = [
        _referral("2025-04-01"),
        _closure("2025-04-20", outcome="studies"),
        _referral("2025-05-01", "af"),
        _closure("2025-06-01", "af", outcome="work"),
    ]
    where = place(facts, START, END)
    assert where.closed is not None and where.closed.outcome == "work"
    assert where.new and where.active


def test_the_gate_is_asked_about_an_aware_instant(hub: Hub) -> None:
    with pytest.raises(ValueError, match="timezone"), hub.db.session() as session:
        followup(session, START, END, actor=ACTOR, at=AT.replace(tzinfo=None))


# -- the documented example ----------------------------------------------------------------


def test_the_example_in_the_statistics_doc_is_what_the_code_prints() -> None:
    raw = RawFigures(
        new=Tally(14, 9, 23), active=Tally(41, 37, 78), closed=Tally(12, 8, 20), left_out=3
    )
    raw.by_outcome.update(work=Tally(6, 3, 9), studies=Tally(4, 0, 4), right_benefit=Tally(2, 5, 7))
    raw.by_reason.update(goal_reached=Tally(7, 4, 11), own_request=Tally(5, 4, 9))
    example = suppressed_report(
        raw,
        period_start=date(2025, 1, 1),
        period_end=date(2025, 6, 30),
        decided_at=datetime(2025, 8, 4, 7, 30, tzinfo=UTC),
        correlation_id="stats-5f1d2c1e-8a4b-4f59-9a53-3c2b7d0e6a41",
    )
    doc = (Path(__file__).parents[2] / "docs" / "statistics.md").read_text()
    (text,) = re.findall(r"```text\n(.*?)\n```", doc, flags=re.S)
    (shown,) = re.findall(r"```json\n(.*?)\n```", doc, flags=re.S)

    assert text == render_text(example)
    dumped = example.model_dump(mode="json")
    assert json.loads(shown) == {key: dumped[key] for key in json.loads(shown)}
