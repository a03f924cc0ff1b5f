"""An independent oracle for the follow-up statistics: docs/statistics.md's definitions,
written out plainly from the doc (not from hub/stats), compared cell by cell with
`followup_report()` on generated caseloads stored through the hub's real tables.

The oracle covers: the walk of a person's referrals and closures into cases (the order of
the walk included: date, referrals before closures, update time, then origin, outcome and
reason), new / active / closed, the outcome and reason of the closure that ended the
person's latest case closed in the period, the gender split, the consent gate (purpose
`evaluation`, the origin, the category, restricted records), who is asked about and which
records are put to the gate, the people left out entirely or partly, a period ending after
today (counted up to today), and the small-cell suppression with its secondary rule.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from record_support import add_record
from test_consent_support import Clock, paper_submission, skatteverket_numbers

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.model.codes import ClosureReason, OutcomeType
from hub.model.domain import Closure, Referral
from hub.model.identity import parse_identity
from hub.settings import get_settings
from hub.stats.cases import Case
from hub.stats.counting import MEN as MAN
from hub.stats.counting import WOMEN as WOMAN
from hub.stats.counting import Place, RawFigures
from hub.stats.followup import followup_report
from hub.stats.records import Fact
from hub.stats.report import Cell, FollowUpReport, Rule, Split
from hub.stats.suppression import suppressed_report
from hub.store.base import Base
from hub.store.db import Database
from hub.store.migrate import stamp_head
from hub.store.participants import ParticipantRepository

AT = datetime(2025, 8, 1, 12, tzinfo=UTC)
TODAY = date(2025, 8, 1)  # AT in Sweden
ORIGINS = ("af", "fk", "kommun")
OUTCOMES = tuple(c.value for c in OutcomeType)
REASONS = tuple(c.value for c in ClosureReason)
COLUMNS = ("women", "men", "total")
LIMIT = 5

# -- the oracle ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    """One stored referral or closure, as the doc speaks of it."""

    kind: str  # "referral" | "closure"
    on: date  # received_on / closed_on
    updated: datetime  # updated_at
    origin: str
    outcome: str = ""
    reason: str = ""
    restricted: bool = False

    @property
    def category(self) -> str:
        return "referral" if self.kind == "referral" else "outcome"


@dataclass(frozen=True)
class Consent:
    purposes: tuple[str, ...]
    parties: tuple[str, ...]
    categories: tuple[str, ...]

    def permits(self, rec: Rec) -> bool:
        return (
            "evaluation" in self.purposes
            and rec.origin in self.parties
            and rec.category in self.categories
            and not rec.restricted
        )


@dataclass
class Person:
    number: str
    woman: bool
    consent: Consent | None
    records: list[Rec]


@dataclass
class OCase:
    opened: date | None  # the opening referral's day; None: began before the records
    first_day: date  # the first day it is shown open
    end: date | None = None
    outcome: str = ""
    reason: str = ""


def walk(records: Iterable[Rec]) -> list[OCase]:
    """A person's cases, by the doc's walk."""
    order = sorted(
        records,
        key=lambda r: (
            r.on,
            0 if r.kind == "referral" else 1,
            r.updated,
            r.origin,
            r.outcome,
            r.reason,
        ),
    )
    cases: list[OCase] = []
    current: OCase | None = None  # the open case
    ended: OCase | None = None  # the case that closed, with no referral since
    for r in order:
        if r.kind == "referral":
            if current is None:
                current = OCase(opened=r.on, first_day=r.on)
                cases.append(current)
                ended = None
            continue
        if current is not None:
            case = current
            current = None
        elif ended is not None:
            case = ended
        else:
            case = OCase(opened=None, first_day=r.on)
            cases.append(case)
        case.end, case.outcome, case.reason = r.on, r.outcome, r.reason
        ended = case
    return cases


@dataclass
class Where:
    new: bool = False
    active: bool = False
    closed: bool = False
    outcome: str = ""
    reason: str = ""


def where(records: Iterable[Rec], start: date, end: date) -> Where:
    cases = walk(records)
    w = Where()
    w.new = any(c.opened is not None and start <= c.opened <= end for c in cases)
    w.active = any(c.first_day <= end and (c.end is None or c.end >= start) for c in cases)
    closed = [c for c in cases if c.end is not None and start <= c.end <= end]
    if closed:
        w.closed = True
        w.outcome, w.reason = closed[-1].outcome, closed[-1].reason
    return w


Key = tuple[str, str, str]  # (table, row, column)


@dataclass
class Oracle:
    counts: dict[Key, int] = field(default_factory=dict)
    left_out: int = 0
    partly_left_out: int = 0


def oracle_counts(people: Sequence[Person], start: date, end: date) -> Oracle:
    end = min(end, TODAY)
    out = Oracle()
    rows = [("participants", r) for r in ("new", "active", "closed")]
    rows += [("outcome", c) for c in OUTCOMES] + [("reason", c) for c in REASONS]
    for table, row in rows:
        for column in COLUMNS:
            out.counts[(table, row, column)] = 0

    def count(table: str, row: str, woman: bool) -> None:
        out.counts[(table, row, "women" if woman else "men")] += 1
        out.counts[(table, row, "total")] += 1

    for p in people:
        if not where(p.records, start, end).active:
            continue  # not asked about
        later = [r.on for r in p.records if r.kind == "referral" and r.on > end]
        cut = min(later) if later else None
        put = [r for r in p.records if cut is None or r.on < cut]
        permitted = [r for r in put if p.consent is not None and p.consent.permits(r)]
        w = where(permitted, start, end)
        if not w.active:  # in no figure: none permitted, or the permitted ones alone
            out.left_out += 1  # do not put them in the period
            continue
        if len(permitted) < len(put):
            out.partly_left_out += 1
        for row, flag in (("new", w.new), ("active", w.active), ("closed", w.closed)):
            if flag:
                count("participants", row, p.woman)
        if w.closed:
            count("outcome", w.outcome, p.woman)
            count("reason", w.reason, p.woman)
    return out


Line = tuple[list[Key], Key]  # parts, total


def lines() -> list[Line]:
    found: list[Line] = []
    rows = [("participants", r) for r in ("new", "active", "closed")]
    rows += [("outcome", c) for c in OUTCOMES] + [("reason", c) for c in REASONS]
    for table, row in rows:
        found.append(([(table, row, "women"), (table, row, "men")], (table, row, "total")))
    for table, codes in (("outcome", OUTCOMES), ("reason", REASONS)):
        for column in COLUMNS:
            parts = [(table, code, column) for code in codes]
            found.append((parts, ("participants", "closed", column)))
    return found


INF = float("inf")


def suppress(counts: dict[Key, int]) -> dict[Key, Cell]:
    """The doc's suppression: 1..4 is `<5`; a line (women + men = total; outcome rows, and
    reason rows, = closed, per column) from which a hidden cell could be worked out, by
    subtraction or from the markers' bounds (`<5` is 1..4, `x` 5 or more), also hides its
    smallest other non-zero count, until no line gives one away."""
    rule: dict[Key, Rule] = {k: "small_cell" for k, v in counts.items() if 0 < v < LIMIT}

    def bounds(k: Key) -> tuple[float, float]:
        if k not in rule:
            return (counts[k], counts[k])
        return (1, LIMIT - 1) if rule[k] == "small_cell" else (LIMIT, INF)

    def pinned(parts: list[Key], total: Key) -> bool:
        for k in [*parts, total]:
            if k not in rule:
                continue
            others = [p for p in parts if p != k]
            if k == total:
                lo = sum(bounds(p)[0] for p in parts)
                hi = sum(bounds(p)[1] for p in parts)
            else:
                lo = bounds(total)[0] - sum(bounds(p)[1] for p in others)
                hi = bounds(total)[1] - sum(bounds(p)[0] for p in others)
            own = bounds(k)
            if max(lo, own[0]) == min(hi, own[1]):
                return True
        return False

    changed = True
    while changed:
        changed = False
        for parts, total in lines():
            if not pinned(parts, total):
                continue
            shown = [k for k in [*parts, total] if k not in rule and counts[k] > 0]
            if not shown:
                continue  # the case the doc says cannot be mended
            # ties: a women/men or breakdown cell before a total, then the line's order
            members = [*parts, total]
            smallest = min(shown, key=lambda k: (k == total, counts[k], members.index(k)))
            rule[smallest] = "complementary"
            changed = True
    return {
        k: Cell(count=None, suppressed=True, rule=rule[k]) if k in rule else Cell(count=v)
        for k, v in counts.items()
    }


def small(n: int) -> Cell:
    return Cell(count=None, suppressed=True, rule="small_cell") if 0 < n < LIMIT else Cell(count=n)


# -- the real implementation's report, read as the same cells -----------------------------


def real_cells(report: FollowUpReport) -> dict[Key, Cell]:
    cells: dict[Key, Cell] = {}

    def add(table: str, row: str, split: Split) -> None:
        for column in COLUMNS:
            cells[(table, row, column)] = getattr(split, column)

    add("participants", "new", report.new)
    add("participants", "active", report.active)
    add("participants", "closed", report.closed)
    for code, split in report.closed_by_outcome.items():
        add("outcome", code, split)
    for code, split in report.closed_by_reason.items():
        add("reason", code, split)
    return cells


# -- storing a generated caseload ---------------------------------------------------------

_NUMBERS = skatteverket_numbers(400)
WOMEN = [n for n in _NUMBERS if int(n[-2]) % 2 == 0]
MEN = [n for n in _NUMBERS if int(n[-2]) % 2 == 1]


@dataclass
class Store:
    hub: Hub
    sources: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))

    def put(self, people: Sequence[Person]) -> None:
        consents = ConsentService(self.hub, clock=Clock())
        for p in people:
            if p.consent is not None:
                consents.register(
                    paper_submission(
                        p.number,
                        parties=[*p.consent.parties, "team"],
                        categories=list(p.consent.categories),
                        purposes=list(p.consent.purposes),
                        valid_until="2099-01-01T00:00:00Z",
                    ),
                    actor="test",
                )
        with self.hub.db.session() as session:
            repository = ParticipantRepository(session, self.hub.keys)
            for p in people:
                person = repository.ensure(parse_identity(p.number))
                for r in p.records:
                    if r.kind == "referral":
                        body = Referral(
                            referring_party=r.origin, received_on=r.on, reason="financial_aid"
                        ).model_dump(mode="json")
                    else:
                        closure = {"closed_on": r.on, "outcome": r.outcome, "reason": r.reason}
                        body = Closure.model_validate(closure).model_dump(mode="json")
                    add_record(
                        session,
                        person.id,
                        origin=r.origin,
                        source_id=f"oracle-{next(self.sources)}",
                        kind=r.kind,
                        category=r.category,
                        body=body,
                        at=r.updated,
                        restricted=r.restricted,
                    )


def fresh_hub(directory: Path) -> tuple[Hub, Database]:
    database = Database(f"sqlite:///{directory / 'evi.db'}")
    Base.metadata.create_all(database.engine)
    with database.engine.begin() as connection:
        stamp_head(connection)
    return Hub(settings=get_settings(), db=database), database


# -- generating caseloads -----------------------------------------------------------------

BASE = date(2025, 4, 1)
UPDATES = (
    datetime(2025, 7, 1, tzinfo=UTC),
    datetime(2025, 7, 1, tzinfo=UTC),  # the same instant, more often
    datetime(2025, 7, 2, 8, tzinfo=UTC),
    datetime(2024, 12, 1, tzinfo=UTC),
)


@st.composite
def periods(draw: st.DrawFn) -> tuple[date, date]:
    start = BASE + timedelta(days=draw(st.integers(0, 122)))  # up to TODAY
    end = start + timedelta(days=draw(st.integers(0, 120)))
    return start, end


def _near(start: date, end: date) -> st.SearchStrategy[date]:
    edges = [start, end, min(end, TODAY)]
    return st.one_of(
        st.sampled_from(edges).flatmap(
            lambda d: st.integers(-1, 1).map(lambda k: d + timedelta(days=k))
        ),
        st.integers(-60, 200).map(lambda k: start + timedelta(days=k)),
    )


@st.composite
def records(draw: st.DrawFn, start: date, end: date) -> list[Rec]:
    found: list[Rec] = []
    days = _near(start, end)
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(("referral", "closure")))
        on = draw(days)
        if draw(st.booleans()) and found:
            on = draw(st.sampled_from([r.on for r in found]))  # the same day as another
        found.append(
            Rec(
                kind=kind,
                on=on,
                updated=draw(st.sampled_from(UPDATES)),
                origin=draw(st.sampled_from(ORIGINS)),
                outcome=draw(st.sampled_from(OUTCOMES[:3])) if kind == "closure" else "",
                reason=draw(st.sampled_from(REASONS[:3])) if kind == "closure" else "",
                restricted=kind == "referral" and draw(st.integers(0, 9)) == 0,
            )
        )
    return found


FULL = st.just(Consent(("coordination", "evaluation"), ORIGINS, ("referral", "outcome")))
consents = st.one_of(
    FULL,
    FULL,
    FULL,
    st.builds(
        Consent,
        purposes=st.sampled_from([("coordination",), ("coordination", "evaluation")]),
        parties=st.sampled_from([ORIGINS, ("kommun",), ("af", "fk"), ("af", "kommun")]),
        categories=st.sampled_from([("referral", "outcome"), ("referral",), ("outcome",)]),
    ),
    st.none(),
)


@st.composite
def caseloads(draw: st.DrawFn) -> tuple[date, date, list[Person]]:
    start, end = draw(periods())
    women, men = iter(WOMEN), iter(MEN)
    people: list[Person] = []
    for _ in range(draw(st.integers(1, 8))):
        template = draw(records(start, end))
        consent = draw(consents)
        woman = draw(st.booleans())
        # several people alike, so that counts of 5 and more (and suppression) happen
        for _ in range(draw(st.sampled_from((1, 1, 2, 3, 5, 6)))):
            number = next(women) if woman else next(men)
            people.append(Person(number, woman, consent, list(template)))
    return start, end, people


# -- the comparison -----------------------------------------------------------------------


def compare(hub: Hub, start: date, end: date, people: Sequence[Person]) -> None:
    report = followup_report(hub, start, end, actor="steering:oracle", at=AT)
    expected = oracle_counts(people, start, end)
    assert report.period_end == min(end, TODAY)
    assert report.period_end_requested == (end if end > TODAY else None)
    got = real_cells(report)
    want = suppress(expected.counts)
    assert set(got) == set(want)
    wrong = {k: (got[k], want[k], expected.counts[k]) for k in want if got[k] != want[k]}
    assert not wrong, wrong
    assert report.left_out == small(expected.left_out)
    assert report.partly_left_out == small(expected.partly_left_out)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=caseloads())
def test_the_report_agrees_with_the_oracle(
    evi_home: Path, case: tuple[date, date, list[Person]]
) -> None:
    start, end, people = case
    note(f"period {start} to {end}")
    for p in people:
        note(f"{p.number} woman={p.woman} {p.consent} {p.records}")
    with tempfile.TemporaryDirectory() as directory:
        hub, database = fresh_hub(Path(directory))
        try:
            Store(hub).put(people)
            compare(hub, start, end, people)
        finally:
            database.dispose()


# -- the suppression alone, on richer figures ---------------------------------------------


@st.composite
def raw_figures(draw: st.DrawFn) -> RawFigures:
    """Figures as counting leaves them: people by gender, each new or not, closed or not
    (with an outcome and a reason); a few codes only, so that rows share columns."""
    raw = RawFigures()
    counts = st.one_of(st.just(0), st.integers(1, 4), st.integers(5, 12))
    for gender in (WOMAN, MAN):
        for _ in range(draw(counts)):  # active only, or new
            raw.add(gender, Place(new=draw(st.booleans()), active=True))
        for _ in range(draw(st.integers(0, 4))):
            outcome = draw(st.sampled_from(OUTCOMES[:4]))
            reason = draw(st.sampled_from(REASONS[:4]))
            for _ in range(draw(counts)):
                closing: Case[Fact] = Case(BASE, closed_on=BASE, outcome=outcome, reason=reason)
                raw.add(gender, Place(new=draw(st.booleans()), active=True, closed=closing))
    return raw


@settings(max_examples=2000, derandomize=True, deadline=None)
@given(raw=raw_figures())
def test_the_suppression_agrees_with_the_oracle(raw: RawFigures) -> None:
    report = suppressed_report(
        raw, period_start=BASE, period_end=BASE, decided_at=AT, correlation_id="stats-oracle"
    )
    counts: dict[Key, int] = {}
    rows = [("participants", "new", raw.new), ("participants", "active", raw.active)]
    rows += [("participants", "closed", raw.closed)]
    rows += [("outcome", code, t) for code, t in raw.by_outcome.items()]
    rows += [("reason", code, t) for code, t in raw.by_reason.items()]
    for table, row, tally in rows:
        for column in COLUMNS:
            counts[(table, row, column)] = getattr(tally, column)
    got, want = real_cells(report), suppress(counts)
    wrong = {k: (got[k], want[k], counts[k]) for k in want if got[k] != want[k]}
    assert not wrong, wrong


def test_two_hidden_cells_that_can_only_be_five_each_are_not_shown_with_their_sum() -> None:
    """Found by the oracle: `x, x, 10` makes both x a 5, and the men's `<5` then 7 - 5."""
    raw = RawFigures()
    closed = [
        (WOMAN, "work", 5),
        (WOMAN, "work_with_subsidy", 5),
        (MAN, "work", 2),
        (MAN, "work_with_subsidy", 5),
    ]
    for gender, outcome, people in closed:
        closing: Case[Fact] = Case(BASE, closed_on=BASE, outcome=outcome, reason="goal_reached")
        for _ in range(people):
            raw.add(gender, Place(active=True, closed=closing))

    report = suppressed_report(
        raw, period_start=BASE, period_end=BASE, decided_at=AT, correlation_id="stats-oracle"
    )

    subsidy = report.closed_by_outcome["work_with_subsidy"]
    assert subsidy.women.rule == subsidy.men.rule == "complementary"
    assert subsidy.total.suppressed  # else 10 = x + x gives 5 and 5 away
    assert report.closed_by_outcome["work"].men.rule == "small_cell"
