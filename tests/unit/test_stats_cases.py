"""One definition of a case (hub/stats/cases.py), read by the follow-up statistics and by
the caseworker's summary alike: for the same records the two agree on when the case
opened, when and how it ended, and the order of the records never matters."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stats_support import AT, WOMEN, Caseload

from hub.casework.summary import StatusEntry, summarise
from hub.context import Hub
from hub.stats.counting import place
from hub.stats.followup import followup_report
from hub.stats.records import Fact
from hub.stats.report import FollowUpReport

TODAY = AT.date()
FAR = date(2099, 12, 31)
ONE_DAY = timedelta(days=1)

# -- the same records, as the statistics and as the summary read them -------------------

Record = tuple[str, date, datetime, str, str | None, str | None]
"""kind, date (received_on / closed_on), update time, origin, outcome, reason."""


def _fact(record: Record) -> Fact:
    kind, on, updated, origin, outcome, reason = record
    category = "referral" if kind == "referral" else "outcome"
    return Fact(origin, category, False, "0" * 64, kind, on, updated, outcome, reason)


def _entry(record: Record) -> StatusEntry:
    kind, on, updated, origin, outcome, reason = record
    if kind == "referral":
        body = {"kind": kind, "referring_party": origin, "received_on": on.isoformat()}
        body["reason"] = "financial_aid"
    else:
        body = {"kind": kind, "closed_on": on.isoformat(), "outcome": outcome, "reason": reason}
    category = "referral" if kind == "referral" else "outcome"
    return StatusEntry(origin=origin, kind=kind, category=category, updated_at=updated, body=body)


def _assert_the_two_agree(records: list[Record]) -> None:
    """The summary's latest case is the one the statistics count, day for day."""
    facts = [_fact(r) for r in records]
    summary = summarise([_entry(r) for r in records], TODAY)
    first = min((r[1] for r in records), default=TODAY)
    if summary.state == "no_case":
        assert not place(facts, first, FAR).active
        return
    if summary.referred_on is not None:  # the case's opening referral: new that day
        assert place(facts, summary.referred_on, summary.referred_on).new
        assert not place(facts, summary.referred_on + ONE_DAY, FAR).new
        opening = [r for r in records if r[0] == "referral" and r[1] == summary.referred_on]
        assert summary.referred_by in {r[3] for r in opening}
    if summary.state == "open":
        assert summary.closed_on is None
        assert place(facts, FAR, FAR).active and place(facts, FAR, FAR).closed is None
        return
    assert summary.closed_on is not None
    day = summary.closed_on
    where = place(facts, day, day)
    assert where.closed is not None and where.closed.closed_on == day
    assert (where.closed.outcome, where.closed.reason) == (summary.outcome, summary.closure_reason)
    assert not place(facts, day + ONE_DAY, FAR).active  # nothing after it: the latest case


_ORIGINS = ("af", "fk", "kommun")
_records = st.lists(
    st.tuples(
        st.sampled_from(("referral", "closure")),
        st.integers(0, 12).map(lambda n: date(2025, 3, 1) + timedelta(days=n)),
        st.integers(0, 4).map(lambda n: datetime(2025, 7, 1, 8, tzinfo=UTC) + timedelta(hours=n)),
        st.sampled_from(_ORIGINS),
        st.sampled_from(("work", "studies", "other")),
        st.sampled_from(("goal_reached", "moved", "illness")),
    ).map(lambda r: r if r[0] == "closure" else (*r[:4], None, None)),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(records=_records)
def test_the_summary_and_the_statistics_agree_on_the_case_for_any_records(
    records: list[Record],
) -> None:
    _assert_the_two_agree(records)


@settings(max_examples=200, deadline=None)
@given(records=_records, seed=st.integers(0, 2**32 - 1))
def test_the_order_records_are_stored_in_never_matters(records: list[Record], seed: int) -> None:
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    summaries = [summarise([_entry(r) for r in rs], TODAY) for rs in (records, shuffled)]
    assert summaries[0] == summaries[1]
    for start, end in ((date(2025, 3, 1), date(2025, 3, 5)), (date(2025, 3, 6), FAR)):
        places = [place([_fact(r) for r in rs], start, end) for rs in (records, shuffled)]
        assert places[0] == places[1]


@settings(max_examples=300, deadline=None)
@given(
    records=_records,
    start=st.integers(0, 12).map(lambda n: date(2025, 3, 1) + timedelta(days=n)),
    days=st.integers(0, 5),
)
def test_a_person_with_a_referral_or_closure_dated_in_the_period_is_active_in_it(
    records: list[Record], start: date, days: int
) -> None:
    end = start + timedelta(days=days)
    if any(start <= r[1] <= end for r in records):
        assert place([_fact(r) for r in records], start, end).active


# -- scenarios, on a real database: the report and the summary of the same people -----------

Scenario = Callable[[Caseload, str], None]


def _same_day_closures(people: Caseload, number: str) -> None:
    people.referral(number, "2025-03-01")
    people.closure(number, "2025-05-10", origin="af", outcome="studies", updated=_at(9))
    people.closure(number, "2025-05-10", origin="kommun", outcome="work", updated=_at(10))


def _same_day_closures_the_other_way(people: Caseload, number: str) -> None:
    people.referral(number, "2025-03-01")
    people.closure(number, "2025-05-10", origin="kommun", outcome="studies", updated=_at(9))
    people.closure(number, "2025-05-10", origin="af", outcome="work", updated=_at(10))


def _a_later_closure(people: Caseload, number: str) -> None:
    people.referral(number, "2025-03-01")
    people.closure(number, "2025-05-01", origin="af", outcome="studies")
    people.closure(number, "2025-05-10", origin="kommun", outcome="work")


def _a_late_referral(people: Caseload, number: str) -> None:
    people.closure(number, "2025-05-10", origin="af", outcome="work", updated=_at(9))
    people.referral(number, "2025-03-01", updated=datetime(2025, 7, 20, tzinfo=UTC))


def _closures_only(people: Caseload, number: str) -> None:
    people.closure(number, "2025-05-02", origin="af", outcome="studies")
    people.closure(number, "2025-05-10", origin="kommun", outcome="work")


def _closed_and_referred_again_and_closed(people: Caseload, number: str) -> None:
    people.referral(number, "2025-01-10")
    people.closure(number, "2025-02-01", outcome="studies")
    people.referral(number, "2025-03-01", origin="af")
    people.closure(number, "2025-05-10", origin="af", outcome="work")


def _at(hour: int) -> datetime:
    return datetime(2025, 5, 10, hour, tzinfo=UTC)


def _report(hub: Hub, start: str, end: str) -> FollowUpReport:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return followup_report(hub, first, last, actor="steering:test", at=AT)


@pytest.mark.parametrize(
    "scenario",
    [
        _same_day_closures,
        _same_day_closures_the_other_way,
        _a_later_closure,
        _a_late_referral,
        _closures_only,
        _closed_and_referred_again_and_closed,
    ],
    ids=[
        "two authorities close on the same day: the closure updated last ends the case",
        "the same, the authorities the other way round: update time, not name, decides",
        "a second authority closes later: the case ends then",
        "a referral that arrives after the closure still opens the case before it",
        "closures only: a case that began before the hub's records",
        "closed, referred again, closed again",
    ],
)
def test_the_report_counts_the_closure_the_summary_shows(hub: Hub, scenario: Scenario) -> None:
    people = Caseload(hub)
    for woman in WOMEN[:5]:  # five alike, so that no figure is suppressed
        people.consent(woman)
        scenario(people, woman)

    summary = people.summary(WOMEN[0])
    assert (summary.state, summary.closed_on, summary.outcome) == (
        "closed",
        date(2025, 5, 10),
        "work",
    )
    on_the_day = _report(hub, "2025-05-10", "2025-05-10")
    assert on_the_day.closed.total.count == 5
    assert on_the_day.closed_by_outcome["work"].total.count == 5
    assert on_the_day.closed_by_reason[summary.closure_reason or ""].total.count == 5
    assert _report(hub, "2025-05-03", "2025-05-09").closed.total.count == 0
    assert _report(hub, "2025-05-11", "2025-07-31").active.total.count == 0


def test_a_case_opened_again_is_dated_by_the_referral_that_opened_it(hub: Hub) -> None:
    people = Caseload(hub)
    for woman in WOMEN[:5]:
        people.consent(woman)
        people.referral(woman, "2025-01-10", origin="af")
        people.closure(woman, "2025-02-01", origin="af")
        people.referral(woman, "2025-05-02")  # opens the case again
        people.referral(woman, "2025-05-06", origin="af")  # belongs to it

    summary = people.summary(WOMEN[0])
    assert (summary.state, summary.referred_on, summary.referred_by) == (
        "open",
        date(2025, 5, 2),
        "kommun",
    )
    assert _report(hub, "2025-05-02", "2025-05-02").new.total.count == 5
    later = _report(hub, "2025-05-03", "2025-07-31")
    assert (later.new.total.count, later.active.total.count) == (0, 5)
