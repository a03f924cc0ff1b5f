"""The privacy officer's review of the transfer log over the web.

A search over the API or the page is the same use case as `evi log search`: it finds the
same entries, and is itself recorded in the log, with the web user as actor and
``privacy_officer`` as role. A personnummer is accepted only in a POST body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ledger_support import decisions
from web_support import bearer, token_for, web_client

from hub.context import Hub
from hub.ledger import service
from hub.ledger.event import Action
from hub.ledger.records import LedgerQuery, find_entries
from hub.store.tables.ledger import LedgerEntryRow
from hub.web.users import Role
from tests.conftest import DATA

PNR, OTHER = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1:3]


@pytest.fixture
def ledger(hub: Hub) -> Hub:
    decisions(hub, PNR, 3)
    decisions(hub, OTHER, 2, decision="deny", recipient="fk", reason="no consent covers fk")
    return hub


@pytest.fixture
def client(ledger: Hub) -> Iterator[TestClient]:
    with web_client(ledger) as client:
        yield client


@pytest.fixture
def officer(ledger: Hub) -> dict[str, str]:
    return bearer(token_for(ledger, "dso.kommun", Role.PRIVACY_OFFICER, party="kommun"))


def searches(hub: Hub) -> list[dict[str, Any]]:
    """The ledger's record of every search so far (read without recording another)."""
    with hub.db.session() as session:
        found = find_entries(session, LedgerQuery(action=Action.LEDGER_SEARCH))
        return [record.export_line() for record in found]


def test_a_search_by_pseudonym_finds_the_persons_entries(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    pseudonym = ledger.keys.pseudonym(PNR)
    response = client.get("/api/log/entries", params={"participant": pseudonym}, headers=officer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["seq"] for e in body["entries"]] == [2, 1, 0]  # newest first
    assert {e["participant"] for e in body["entries"]} == {pseudonym}
    assert body["count"] == 3 and body["more_may_match"] is False
    assert body["older"] is None and body["newer"] is None  # one page holds them all


def test_the_web_search_is_recorded_as_a_search_by_that_user(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    client.get("/api/log/entries", params={"party": "fk", "decision": "deny"}, headers=officer)
    [search] = searches(ledger)
    assert search["actor"] == "dso.kommun"
    assert search["role"] == "privacy_officer"
    assert "party=fk" in search["reason"] and "decision=deny" in search["reason"]


def test_the_api_finds_what_the_cli_finds(
    ledger: Hub, client: TestClient, officer: dict[str, str], cli: Any
) -> None:
    web = client.get("/api/log/entries", params={"party": "fk"}, headers=officer).json()
    result = cli("log", "search", "--party", "fk", "--format", "jsonl")
    assert result.code == 0, result.err
    from_cli = [line for line in result.out.splitlines() if line.strip()]
    assert len(from_cli) == web["count"] == 2
    assert [s["actor"].split(":")[0] for s in searches(ledger)] == ["dso.kommun", "cli"]


def test_a_search_by_personnummer_is_posted_and_never_echoed(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    response = client.post("/api/log/entries", json={"pnr": PNR}, headers=officer)
    assert response.status_code == 200, response.text
    assert [e["seq"] for e in response.json()["entries"]] == [2, 1, 0]
    assert PNR not in response.text and PNR[2:] not in response.text
    [search] = searches(ledger)
    assert search["participant"] == ledger.keys.pseudonym(PNR)
    assert PNR not in search["reason"]


def test_a_personnummer_in_the_url_is_refused_and_nothing_is_searched(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    response = client.get("/api/log/entries", params={"pnr": PNR}, headers=officer)
    assert response.status_code == 422
    assert "POST" in response.json()["detail"]
    assert PNR not in response.text
    assert searches(ledger) == []


def test_bad_filters_name_the_field_but_never_the_value(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    bad = client.post("/api/log/entries", json={"pnr": "190001019803"}, headers=officer)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("pnr:") and "190001019803" not in bad.text
    typo = client.get(
        "/api/log/entries", params={"decision": "maybe-190001019802"}, headers=officer
    )
    assert typo.status_code == 422
    assert "decision" in typo.json()["detail"] and "190001019802" not in typo.text
    date = client.get("/api/log/entries", params={"from": "yesterday"}, headers=officer)
    assert date.status_code == 422 and "YYYY-MM-DD" in date.json()["detail"]
    backwards = {"from": "2026-03-01", "to": "2026-02-01"}
    for path in ("/api/log/entries", "/api/log/sample"):
        reversed_ = client.get(path, params=backwards, headers=officer)
        assert reversed_.status_code == 422, path
        assert reversed_.json()["detail"].startswith("to 2026-02-01 is not after from 2026-03-01")
    assert searches(ledger) == []


@pytest.mark.parametrize("field", ["participant", "party", "by"])
def test_a_personnummer_typed_into_another_filter_is_refused_and_never_logged(
    ledger: Hub, client: TestClient, officer: dict[str, str], cli: Any, field: str
) -> None:
    # The pseudonym and party fields sit next to the pnr field, and every search is
    # written to the log with its filters: a number typed into the wrong one must stop.
    for written in (PNR, f"{PNR[:8]}-{PNR[8:]}"):
        over_get = client.get("/api/log/entries", params={field: written}, headers=officer)
        over_post = client.post("/api/log/entries", json={field: written}, headers=officer)
        for response in (over_get, over_post):
            assert response.status_code == 422
            assert f"{field}: " in response.json()["detail"]  # named, with what to give
            assert written not in response.text and PNR[2:8] not in response.text
        result = cli("log", "search", f"--{field}", written)
        assert result.code != 0 and f"{field}:" in result.err
        assert PNR[2:8] not in result.out + result.err
    client.post("/login", data={"token": officer["Authorization"].split()[1]})
    page = client.post("/log", data={field: PNR})
    assert page.status_code == 422 and PNR[2:8] not in page.text
    assert searches(ledger) == []
    with ledger.db.session() as session:
        every = [r.export_line() for r in find_entries(session, LedgerQuery())]
    assert PNR[2:8] not in json.dumps(every)


def test_the_api_and_the_page_find_the_entries_one_user_made(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    decisions(ledger, PNR, 2, action=Action.VIEW, decision=None, actor="anna.af")
    decisions(ledger, OTHER, 1, action=Action.VIEW, decision=None, actor="anna.af via cli:ops")
    got = client.get("/api/log/entries", params={"by": "anna.af"}, headers=officer).json()
    actors = [e["actor"] for e in got["entries"]]
    assert actors == ["anna.af via cli:ops", "anna.af", "anna.af"]  # newest first
    sampled = client.get("/api/log/sample", params={"by": "anna.af", "size": 9}, headers=officer)
    assert sorted(e["seq"] for e in sampled.json()["entries"]) == sorted(
        e["seq"] for e in got["entries"]
    )
    client.post("/login", data={"token": officer["Authorization"].split()[1]})
    page = client.post("/log", data={"by": "anna.af", "limit": "2"})
    assert page.status_code == 200 and page.text.count("<td>anna.af") == 2
    assert '<input type="hidden" name="by" value="anna.af">' in page.text  # the next page's
    assert "actor=anna.af" in searches(ledger)[-1]["reason"]
    look_up = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
    decisions(ledger, OTHER, 2, action=Action.VIEW, decision=None, correlation_id=look_up)
    found = client.get("/api/log/entries", params={"correlation": look_up}, headers=officer)
    assert [e["correlation_id"] for e in found.json()["entries"]] == [look_up, look_up]
    typed = client.get("/api/log/entries", params={"correlation": "anything"}, headers=officer)
    assert typed.status_code == 422 and "correlation: " in typed.json()["detail"]
    page = client.post("/log", data={"correlation": look_up})
    assert page.status_code == 200 and page.text.count(f"<td>{look_up}") == 0
    assert page.text.count("<td>view</td>") == 2


def test_the_limit_caps_the_answer_and_says_more_may_match(
    client: TestClient, officer: dict[str, str]
) -> None:
    # five decisions (0-4) and the officer's access_changed (5); no search sees itself
    body = client.get("/api/log/entries", params={"limit": 2}, headers=officer).json()
    assert [e["seq"] for e in body["entries"]] == [5, 4]
    assert body["more_may_match"] is True
    assert body["older"] == 4 and body["newer"] is None
    too_many = client.get("/api/log/entries", params={"limit": 100_000}, headers=officer)
    assert too_many.status_code == 422
    both = client.get("/api/log/entries", params={"before": 3, "after": 1}, headers=officer)
    assert both.status_code == 422 and "not both" in both.json()["detail"]


def _pages(
    client: TestClient, officer: dict[str, str], params: dict[str, Any], cursor: str
) -> list[list[int]]:
    """Every page from the one ``params`` asks for, following ``older`` or ``newer``."""
    pages = []
    while True:
        response = client.get("/api/log/entries", params=params, headers=officer)
        assert response.status_code == 200, response.text
        body = response.json()
        seqs = [e["seq"] for e in body["entries"]]
        assert seqs == sorted(seqs, reverse=True) and body["count"] == len(seqs)
        pages.append(seqs)
        following = body[cursor]
        if len(pages) > 1 or cursor == "older":  # read in the direction of paging
            assert body["more_may_match"] is (following is not None)
        if following is None:
            return pages
        params = {**params, "before": None, "after": None}
        params["before" if cursor == "older" else "after"] = following
        params = {k: v for k, v in params.items() if v is not None}


def test_the_api_pages_through_every_match_once_newest_first(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    decisions(ledger, PNR, 20)  # 25 decisions: seq 0-4 and 6-25
    expected = [*range(25, 5, -1), 4, 3, 2, 1, 0]
    first = {"action": "decision", "limit": 4}
    older = _pages(client, officer, first, "older")
    assert [seq for page in older for seq in page] == expected
    assert [len(page) for page in older] == [4, 4, 4, 4, 4, 4, 1]
    decisions(ledger, OTHER, 3)  # new entries (after the searches' 26-32) meanwhile
    with ledger.db.session() as session:
        query = LedgerQuery(action=Action.DECISION, after=25, newest_first=True)
        new = [r.seq for r in find_entries(session, query)]
    assert new == [35, 34, 33]
    last = {**first, "before": older[-2][-1]}
    newer = _pages(client, officer, last, "newer")
    assert newer[0] == older[-1]  # back up from the last page: the same pages again
    assert [seq for page in reversed(newer) for seq in page] == [*new, *expected]
    assert len(searches(ledger)) == len(older) + len(newer)  # each page is a logged search
    assert searches(ledger)[1]["reason"] == "filters: action=decision, limit=4, before=22"


def _paging_fields(html: str) -> dict[str, str]:
    nav = html[html.index('<nav aria-label="Pages of log entries">') :]
    nav = nav[: nav.index("</nav>")]
    return dict(re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)">', nav))


def _button(html: str, name: str) -> str | None:
    found = re.search(rf'<button type="submit" name="{name}" value="(\d+)">', html)
    return found.group(1) if found else None


def test_the_log_page_pages_older_and_newer_without_the_personnummer(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    decisions(ledger, PNR, 4)  # PNR's decisions: 0-2 and 6-9
    client.post("/login", data={"token": officer["Authorization"].split()[1]})
    page = client.post("/log", data={"pnr": PNR, "decision": "permit", "limit": "3"})
    assert page.status_code == 200, page.text
    assert re.findall(r"<tr>\s*<td>(\d+)</td>", page.text) == ["9", "8", "7"]
    assert "Newest first." in page.text
    fields = _paging_fields(page.text)
    pseudonym = ledger.keys.pseudonym(PNR)
    assert fields == {"participant": pseudonym, "decision": "permit", "limit": "3"}
    assert PNR not in page.text and PNR[2:] not in page.text
    assert _button(page.text, "after") is None and _button(page.text, "before") == "7"
    seen = []
    while (before := _button(page.text, "before")) is not None:
        page = client.post("/log", data={**fields, "before": before})
        assert page.status_code == 200, page.text
        seen.append(re.findall(r"<tr>\s*<td>(\d+)</td>", page.text))
    assert seen == [["6", "2", "1"], ["0"]]
    assert _button(page.text, "after") == "0"
    page = client.post("/log", data={**_paging_fields(page.text), "after": "0"})
    assert re.findall(r"<tr>\s*<td>(\d+)</td>", page.text) == ["6", "2", "1"]
    assert _button(page.text, "after") == "6" and _button(page.text, "before") == "1"
    assert {s["participant"] for s in searches(ledger)} == {pseudonym}


def test_the_checkpoint_is_the_latest_signed_note(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    missing = client.get("/api/log/checkpoint", headers=officer)
    assert missing.status_code == 404
    assert "evi log checkpoint --new" in missing.json()["detail"]
    written = service.new_checkpoint(ledger)
    body = client.get("/api/log/checkpoint", headers=officer).json()
    assert body["note"] == written.note
    assert body["size"] == written.size == 6  # five decisions, the officer's access_changed
    client.cookies.clear()
    client.post("/login", data={"token": officer["Authorization"].split()[1]})
    page = client.get("/log/checkpoint")
    assert page.status_code == 200
    assert written.note.splitlines()[2] in page.text


def test_the_log_page_renders_the_results_and_records_the_search(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    client.post("/login", data={"token": officer["Authorization"].split()[1]})
    form = client.get("/log")
    assert form.status_code == 200 and "<form" in form.text
    assert searches(ledger) == []  # opening the page searches nothing
    page = client.post("/log", data={"pnr": OTHER, "decision": "deny"})
    assert page.status_code == 200, page.text
    assert page.text.count("<td>deny</td>") == 2
    assert "no consent covers fk" in page.text
    assert ledger.keys.pseudonym(OTHER) in page.text
    assert OTHER not in page.text and OTHER[2:] not in page.text
    [search] = searches(ledger)
    assert search["actor"] == "dso.kommun" and search["role"] == "privacy_officer"


def test_the_log_page_explains_a_bad_filter(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    client.post("/login", data={"token": officer["Authorization"].split()[1]})
    page = client.post("/log", data={"pnr": PNR, "participant": ledger.keys.pseudonym(OTHER)})
    assert page.status_code == 422
    assert "not both" in page.text and PNR not in page.text
    limit = client.post("/log", data={"limit": "lots"})
    assert limit.status_code == 422 and "limit" in limit.text
    assert searches(ledger) == []


def test_a_sample_over_the_api_is_the_draw_the_cli_makes_and_is_logged(
    ledger: Hub, client: TestClient, officer: dict[str, str], cli: Any
) -> None:
    params = {"decision": "permit", "to": "2100-01-01", "size": "2", "seed": "9"}
    response = client.get("/api/log/sample", params=params, headers=officer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 2 and body["matching"] == 3 and body["seed"] == 9
    assert {e["decision"] for e in body["entries"]} == {"permit"}
    by_cli = cli("log", "sample", "--decision", "permit", "--to", "2100-01-01", "--size", "2",
                 "--seed", "9", "--format", "jsonl")  # fmt: skip
    assert [json.loads(line)["seq"] for line in by_cli.out.splitlines()] == [
        e["seq"] for e in body["entries"]
    ]
    [draw, _cli_draw] = searches(ledger)
    assert draw["actor"] == "dso.kommun" and draw["role"] == "privacy_officer"
    assert draw["reason"].startswith("sample of 2 from 3 matching, seed 9; ")


def test_the_log_page_draws_a_sample_and_explains_a_bad_size(
    ledger: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    client.post("/login", data={"token": officer["Authorization"].removeprefix("Bearer ")})
    page = client.post("/log/sample", data={"size": "3", "action": "decision", "seed": "4"})
    assert page.status_code == 200
    assert "3 of 5 matching entries, drawn at random with seed 4" in page.text
    assert page.text.count("<td>decision") == 3
    bad = client.post("/log/sample", data={"size": "0"})
    assert bad.status_code == 422 and "size" in bad.text
    assert (
        client.get("/api/log/sample", params={"size": "100000"}, headers=officer).status_code == 422
    )
    caseworker = bearer(token_for(ledger, "anna.af", Role.CASEWORKER, party="af"))
    assert (
        client.get("/api/log/sample", params={"size": "1"}, headers=caseworker).status_code == 403
    )
    assert len(searches(ledger)) == 1  # only the page's good draw


def test_verifying_over_the_web_reports_as_the_cli_and_finds_a_changed_entry(
    ledger: Hub, client: TestClient, officer: dict[str, str], cli: Any
) -> None:
    service.new_checkpoint(ledger)
    good = client.post("/api/log/verify", headers=officer)
    assert good.status_code == 200
    assert good.json() == json.loads(cli("log", "verify", "--json").out)
    assert good.json()["ok"] is True
    client.post("/login", data={"token": officer["Authorization"].removeprefix("Bearer ")})
    page = client.post("/log/verify")
    assert page.status_code == 200 and "The log verifies: " in page.text
    with ledger.db.session() as session:  # someone edits a stored entry behind the hub's back
        row = session.get(LedgerEntryRow, 1)
        assert row is not None and row.canonical is not None
        row.canonical = row.canonical.replace(b'"af"', b'"fk"')
    bad = client.post("/api/log/verify", headers=officer).json()
    assert bad["ok"] is False and bad["first_bad_seq"] == 1
    page = client.post("/log/verify")
    assert page.status_code == 200 and "does NOT verify" in page.text and "entry 1:" in page.text
    caseworker = bearer(token_for(ledger, "anna.af", Role.CASEWORKER, party="af"))
    assert client.post("/api/log/verify", headers=caseworker).status_code == 403
