"""A caseworker's view of one person: only what consent lets their party see, all logged."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from casework_support import (
    AT,
    HIDDEN,
    OTHER,
    PNR,
    STRANGER,
    hide,
    mark_protected,
    register_caseload,
)
from record_support import add_record
from test_consent_support import Clock, ledger, paper_submission

from hub.casework.status import NothingToShow, Viewer, consolidated_status
from hub.casework.summary import StatusEntry, summarise
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.errors import NotFoundError
from hub.ledger.canonical import parse_time
from hub.model.identity import parse_identity
from hub.store.participants import ParticipantRepository


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def caseload(hub: Hub, clock: Clock) -> ConsentService:
    service = ConsentService(hub, clock=clock)
    register_caseload(service, hub, "2026-01-01T00:00:00Z")
    return service


def _origins(view_entries: list[StatusEntry]) -> list[tuple[str, str]]:
    return sorted((e.origin, e.kind) for e in view_entries)


def test_a_view_shows_only_what_the_consent_covers(hub: Hub, caseload: ConsentService) -> None:
    view = consolidated_status(hub, parse_identity(PNR), Viewer("anna.af", "af"), clock=lambda: AT)

    # region's health record (category not consented) and kommun's restricted benefit
    # (obtained under a legal right) stay hidden; the rest is shown
    assert _origins(view.entries) == [("af", "benefit"), ("fk", "benefit"), ("kommun", "referral")]
    assert view.summary.state == "open"
    assert view.summary.referred_by == "kommun"
    assert {e.body["type"] for e in view.summary.current_benefits} == {
        "aktivitetsstod",
        "sjukpenning",
    }
    assert view.participant.startswith("p-")


def test_every_decision_and_the_view_are_in_the_ledger_by_pseudonym(
    hub: Hub, caseload: ConsentService
) -> None:
    before = len(ledger(hub.db))
    view = consolidated_status(hub, parse_identity(PNR), Viewer("anna.af", "af"), clock=lambda: AT)
    entries = ledger(hub.db)[before:]

    decisions = [e for e in entries if e["action"] == "decision"]
    assert {(d["origin"], *d["categories"], d["decision"]) for d in decisions} == {
        ("kommun", "referral", "permit"),
        ("af", "benefit", "permit"),
        ("fk", "benefit", "permit"),
        ("region", "health", "deny"),
        ("kommun", "benefit", "deny"),  # the restricted record
    }
    (seen,) = [e for e in entries if e["action"] == "view"]
    assert seen["actor"] == "anna.af" and seen["role"] == "caseworker"
    assert seen["recipient"] == "af" and seen["categories"] == ["benefit", "referral"]
    assert {e["correlation_id"] for e in entries} == {view.correlation_id}
    assert {e["participant"] for e in entries} == {view.participant}
    assert {parse_time(e["time"]) for e in entries} == {AT} == {view.at}  # the clock's now
    assert PNR not in json.dumps(entries) and PNR[2:] not in json.dumps(entries)


def _nothing(hub: Hub, number: str, viewer: Viewer, at: datetime = AT) -> str:
    """The message of the look-up, which must find nothing to show."""
    with pytest.raises(NothingToShow) as raised:
        consolidated_status(hub, parse_identity(number), viewer, clock=lambda: at)
    return raised.value.message


def test_a_party_the_consent_does_not_name_is_told_what_an_unknown_number_gets(
    hub: Hub, caseload: ConsentService
) -> None:
    # The DPO's finding: region, which the consent does not name, was told that the person
    # is a participant (and whether their identity is protected), with 0 records.
    before = len(ledger(hub.db))
    told = _nothing(hub, PNR, Viewer("r.region", "region"))
    assert told == _nothing(hub, STRANGER, Viewer("r.region", "region"))
    assert told == (
        "nothing the hub holds about that number may be shown to region: either it holds "
        "nothing about it, or consent does not let region see any of it"
    )
    # the look-ups are logged as before: the denies and the view of the participant, then
    # the failed view of the unknown number
    entries = ledger(hub.db)[before:]
    pseudonym = hub.keys.pseudonym(PNR)
    assert [(e["action"], e.get("decision"), e["participant"]) for e in entries] == [
        *[("decision", "deny", pseudonym)] * 5,
        ("view", None, pseudonym),
        ("view", None, hub.keys.pseudonym(STRANGER)),
    ]
    assert [(e["outcome"], e["reason"]) for e in entries if e["action"] == "view"] == [
        ("success", "shown 0 records"),
        ("minor_failure", "not_a_participant"),
    ]


def test_a_person_without_consent_is_told_of_as_an_unknown_number(
    hub: Hub, caseload: ConsentService
) -> None:
    told = _nothing(hub, OTHER, Viewer("t.team", "team"))
    assert told == _nothing(hub, STRANGER, Viewer("t.team", "team"))
    assert {e["decision"] for e in ledger(hub.db) if e["action"] == "decision"} == {"deny"}


def test_after_a_withdrawal_nothing_more_is_shown(
    hub: Hub, caseload: ConsentService, clock: Clock
) -> None:
    clock.now = AT
    caseload.withdraw(parse_identity(PNR), actor="test")
    later = AT + timedelta(minutes=1)
    unknown = _nothing(hub, STRANGER, Viewer("anna.af", "af"))
    assert _nothing(hub, PNR, Viewer("anna.af", "af"), later) == unknown
    # withdrawn at AT denies at AT
    assert _nothing(hub, PNR, Viewer("anna.af", "af"), AT) == unknown


def test_an_unknown_number_is_not_found_and_the_look_up_is_logged(
    hub: Hub, caseload: ConsentService
) -> None:
    with pytest.raises(NotFoundError) as raised:
        consolidated_status(
            hub, parse_identity(STRANGER), Viewer("t.team", "team"), clock=lambda: AT
        )
    assert STRANGER not in raised.value.message
    (last,) = ledger(hub.db)[-1:]
    assert last["action"] == "view" and last["outcome"] == "minor_failure"
    assert last["participant"] == hub.keys.pseudonym(STRANGER)


def _entry(kind: str, **body: Any) -> StatusEntry:
    return StatusEntry(
        origin="kommun",
        kind=kind,
        category=kind,
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
        body={"kind": kind, **body},
    )


def test_the_case_is_closed_only_by_a_closure_after_the_latest_referral() -> None:
    referral = _entry("referral", received_on="2025-03-01", referring_party="af")
    old_closure = _entry("closure", closed_on="2025-01-15", reason="goal_reached", outcome="work")
    assert summarise([referral, old_closure], date(2025, 6, 1)).state == "open"
    assert summarise([referral, old_closure], date(2025, 6, 1)).closed_on is None
    closure = _entry("closure", closed_on="2025-05-20", reason="goal_reached", outcome="work")
    closed = summarise([referral, old_closure, closure], date(2025, 6, 1))
    assert (closed.state, closed.closed_on, closed.outcome) == ("closed", date(2025, 5, 20), "work")
    assert summarise([], date(2025, 6, 1)).state == "no_case"


def test_current_benefits_and_ongoing_interventions_are_those_of_the_day() -> None:
    ended = _entry("benefit", start="2025-01-01", end="2025-05-31", type="sjukpenning")
    running = _entry("benefit", start="2025-06-01", end=None, type="aktivitetsstod")
    future = _entry("benefit", start="2025-07-01", type="forsorjningsstod")
    ongoing = _entry("intervention", start="2025-02-01", status="ongoing", type="sius")
    planned = _entry("intervention", start="2025-02-01", status="planned", type="praktik")
    summary = summarise([ended, running, future, ongoing, planned], date(2025, 6, 1))
    assert summary.current_benefits == [running]
    assert summary.ongoing_interventions == [ongoing]


@pytest.fixture
def running(hub: Hub, clock: Clock) -> ConsentService:
    """The caseload with PNR's consent running until 2099: for looking up on the real clock."""
    service = ConsentService(hub, clock=clock)
    register_caseload(service, hub, "2099-01-01T00:00:00Z")
    return service


def test_cli_gives_record_details_in_words_and_the_latest_plan(
    hub: Hub, running: ConsentService, cli: Any
) -> None:
    plans = paper_submission(
        PNR, parties=["kommun", "af"], categories=["plan"], valid_until="2099-01-01T00:00:00Z"
    )
    running.register(plans, actor="test")
    with hub.db.session() as session:
        person = ParticipantRepository(session, hub.keys).ensure(parse_identity(PNR))
        add_record(
            session,
            person.id,
            origin="kommun",
            source_id="plan-1",
            kind="plan",
            category="plan",
            body={"kind": "plan", "established_on": "2025-04-15", "responsible_parties": ["af"]},
            at=datetime(2025, 5, 2, tzinfo=UTC),
        )
    text = cli("participants", "status", "--pnr", PNR, "--as", "af")
    assert text.code == 0, text.err
    assert "latest plan: established 2025-04-15 (kommun)\n" in text.out
    benefit = next(line for line in text.out.splitlines() if " benefit " in line)
    assert "type: " in benefit and "start: 2025-0" in benefit
    assert "=" not in text.out and "None" not in text.out


def test_cli_prints_the_view_and_refuses_a_bad_party(
    hub: Hub, running: ConsentService, cli: Any
) -> None:
    shown = cli("participants", "status", "--pnr", PNR, "--as", "af", "--json")
    assert shown.code == 0, shown.err
    data = json.loads(shown.out)
    assert data["summary"]["state"] == "open" and len(data["entries"]) == 3
    assert PNR not in shown.out

    text = cli("participants", "status", "--pnr", PNR, "--as", "af")
    assert "case: open, referred 2025-03-01 by kommun" in text.out
    assert re.search(r"may see it at \d{4}-\d\d-\d\d \d\d:\d\d CES?T$", text.out, re.M)
    # the first column of each list of records says what it is
    lines = text.out.splitlines()
    for title in ("current benefits: 2", "records shown: 3, newest first (updated: the day"):
        (at,) = [i for i, line in enumerate(lines) if line.startswith(title)]
        assert lines[at + 1].split() == ["updated", "from", "kind", "details"]
        assert re.match(r"  \d{4}-\d\d-\d\d  (af|fk|kommun) ", lines[at + 2])
    assert "Swedish date" in text.out

    bad = cli("participants", "status", "--pnr", PNR, "--as", "Försäkringskassan")
    assert bad.code == 2 and "--as" in bad.err
    entries = len(ledger(hub.db))
    nobody = cli("participants", "status", "--pnr", PNR, "--as", "nosuch")
    assert nobody.code == 2, nobody.err
    assert "--as 'nosuch': not a party of this hub; one of" in nobody.err
    assert "af, fk" in nobody.err and PNR not in nobody.err
    assert len(ledger(hub.db)) == entries  # no gate decisions logged for a party that is none
    unknown = cli("participants", "status", "--pnr", STRANGER, "--as", "team")
    assert unknown.code == 1 and STRANGER not in unknown.err


def test_a_look_up_is_decided_and_logged_now_whatever_instant_is_asked_for(
    hub: Hub, running: ConsentService, clock: Clock, cli: Any
) -> None:
    # The DPO's finding: after a withdrawal, `--at <a moment before it>` showed the records
    # stored now and dated the look-up before the withdrawal; `--at 2020-01-01` dated it
    # where no log review looks and a purge removes it at once.
    withdrawn = clock.now = datetime.now(UTC)
    running.withdraw(parse_identity(PNR), actor="test")
    before = len(ledger(hub.db))
    for instant in ((withdrawn - timedelta(seconds=1)).isoformat(), "2020-01-01T00:00:00+00:00"):
        asked = cli("participants", "status", "--pnr", PNR, "--as", "af", "--at", instant)
        assert asked.code == 2 and "--at" in asked.err
        assert "records shown" not in asked.out
    assert len(ledger(hub.db)) == before  # refused before anything was looked up

    started = datetime.now(UTC)
    shown = cli("participants", "status", "--pnr", PNR, "--as", "af", "--json")
    assert shown.code == 1 and shown.out == ""  # the withdrawal applies: nothing to show
    entries = ledger(hub.db)[before:]
    assert {e["action"] for e in entries} == {"decision", "view"}
    assert {e["decision"] for e in entries if e["action"] == "decision"} == {"deny"}
    assert all(started <= parse_time(e["time"]) <= datetime.now(UTC) for e in entries)


def test_the_name_given_with_actor_is_logged_as_on_whose_behalf_with_who_ran_it(
    hub: Hub, running: ConsentService, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The DPO's finding: `--actor anna.af` was logged as anna.af, nothing showing that
    # the operating-system user root ran it.
    monkeypatch.setattr("getpass.getuser", lambda: "root")
    before = len(ledger(hub.db))
    shown = cli("participants", "status", "--pnr", PNR, "--as", "af", "--actor", "anna.af")
    assert shown.code == 0, shown.err
    entries = ledger(hub.db)[before:]
    assert {(e["actor"], e["role"]) for e in entries} == {("anna.af via cli:root", "caseworker")}
    plain = cli("participants", "status", "--pnr", PNR, "--as", "af")
    assert plain.code == 0, plain.err
    assert ledger(hub.db)[-1]["actor"] == "cli:root"


@pytest.mark.parametrize("case", HIDDEN)
def test_a_party_that_may_see_nothing_gets_the_answer_an_unknown_number_gets(
    hub: Hub, clock: Clock, cli: Any, case: str
) -> None:
    # The DPO's finding: `--as fk` for a person whose consent names af, kommun and team
    # printed "participant p-… (protected identity: handle with care)" and "records shown:
    # 0", while a number that is not a participant gave an error and exit 1.
    number, party = hide(case, hub, clock)
    before = len(ledger(hub.db))
    for asked in ([], ["--json"]):
        hidden = cli("participants", "status", "--pnr", number, "--as", party, *asked)
        unknown = cli("participants", "status", "--pnr", STRANGER, "--as", party, *asked)
        assert hidden == unknown
        assert hidden == (
            1,
            "",
            f"error: nothing the hub holds about that number may be shown to {party}: either "
            f"it holds nothing about it, or consent does not let {party} see any of it\n",
        )
    # every look-up is in the log as before: the gate's denies and the view of the
    # person by pseudonym, the failed view of the unknown number by its pseudonym
    entries = ledger(hub.db)[before:]
    pseudonym, stranger = hub.keys.pseudonym(number), hub.keys.pseudonym(STRANGER)
    seen = [e for e in entries if e["action"] == "view"]
    views = [(e["participant"], e["outcome"], e["reason"]) for e in seen]
    looked_up = [
        (pseudonym, "success", "shown 0 records"),
        (stranger, "minor_failure", "not_a_participant"),
    ]
    assert views == looked_up * 2
    decisions = [e for e in entries if e["action"] == "decision"]
    assert len(decisions) == 2 * 5  # one per (origin, category, restricted mark) held
    assert {(d["decision"], d["participant"], d["recipient"]) for d in decisions} == {
        ("deny", pseudonym, party)
    }


def test_a_party_that_may_see_records_still_sees_the_person_and_their_protected_identity(
    hub: Hub, running: ConsentService, cli: Any
) -> None:
    mark_protected(hub, PNR)
    pseudonym = hub.keys.pseudonym(PNR)
    text = cli("participants", "status", "--pnr", PNR, "--as", "af")
    assert text.code == 0, text.err
    assert f"participant {pseudonym} (protected identity: handle with care)\n" in text.out
    assert "records shown: 3, newest first" in text.out
    shown = cli("participants", "status", "--pnr", PNR, "--as", "af", "--json")
    data = json.loads(shown.out)
    assert (data["participant"], data["protected_identity"]) == (pseudonym, True)
    assert sorted((e["origin"], e["kind"]) for e in data["entries"]) == [
        ("af", "benefit"),
        ("fk", "benefit"),
        ("kommun", "referral"),
    ]
    views = [e for e in ledger(hub.db) if e["action"] == "view"]
    assert [(e["participant"], e["reason"]) for e in views] == [(pseudonym, "shown 3 records")] * 2
