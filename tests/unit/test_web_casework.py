"""The caseworker's look-up over the web: the user's own party decides what is shown."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from casework_support import HIDDEN, OTHER, PNR, STRANGER, hide, mark_protected, register_caseload
from fastapi.testclient import TestClient
from test_consent_support import Clock, ledger
from web_support import bearer, token_for, web_client

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.web.users import Role


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2099-01-01T00:00:00Z")
    with web_client(hub) as client:
        yield client


def test_the_api_shows_what_the_users_party_may_see_and_logs_it(
    hub: Hub, client: TestClient
) -> None:
    anna = token_for(hub, "anna.af", Role.CASEWORKER, party="af")
    answer = client.post("/api/participants/status", json={"pnr": PNR}, headers=bearer(anna))
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert sorted((e["origin"], e["kind"]) for e in view["entries"]) == [
        ("af", "benefit"),
        ("fk", "benefit"),
        ("kommun", "referral"),
    ]
    assert view["viewer_party"] == "af" and view["summary"]["state"] == "open"
    assert PNR not in answer.text
    (seen,) = [e for e in ledger(hub.db) if e["action"] == "view"]
    assert (seen["actor"], seen["recipient"], seen["role"]) == ("anna.af", "af", "caseworker")

    rolf = token_for(hub, "rolf.region", Role.CASEWORKER, party="region")
    other = client.post("/api/participants/status", json={"pnr": PNR}, headers=bearer(rolf))
    assert other.status_code == 404 and "participant" not in other.text  # not named


def test_the_api_needs_a_caseworker_and_a_body(hub: Hub, client: TestClient) -> None:
    assert client.post("/api/participants/status", json={"pnr": PNR}).status_code == 401
    officer = token_for(hub, "olle.dso", Role.PRIVACY_OFFICER)
    forbidden = client.post("/api/participants/status", json={"pnr": PNR}, headers=bearer(officer))
    assert forbidden.status_code == 403
    anna = bearer(token_for(hub, "anna.af", Role.CASEWORKER, party="af"))
    bad = client.post("/api/participants/status", json={"pnr": "12345"}, headers=anna)
    assert bad.status_code == 422 and "pnr" in bad.json()["detail"]
    assert "12345" not in bad.text
    missing = client.post("/api/participants/status", json={"pnr": STRANGER}, headers=anna)
    assert missing.status_code == 404 and STRANGER not in missing.text
    empty = client.post("/api/participants/status", headers=anna)
    assert empty.json()["detail"] == (
        "invalid request: body: no body; send a JSON object (Content-Type: application/json)"
    )
    form = client.post("/api/participants/status", data={"pnr": PNR}, headers=anna)
    assert form.status_code == 422 and PNR not in form.text
    assert form.json()["detail"] == (
        "invalid request: body: the body is not a JSON object; send a JSON object "
        "(Content-Type: application/json)"
    )
    # a field named by a number (sent by mistake) is not repeated either
    keyed = client.post("/api/participants/status", json={"pnr": PNR, STRANGER: 1}, headers=anna)
    assert keyed.status_code == 422 and STRANGER not in keyed.text and PNR not in keyed.text
    assert keyed.json()["detail"] == (
        "invalid request: (a field named by an identity number): unknown field; remove it or "
        "check its spelling"
    )
    logged = [e["action"] for e in ledger(hub.db) if e["action"] != "access_changed"]
    assert logged == ["consent_registered", "view"]


def test_the_page_looks_a_person_up_by_post(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "tova.team", Role.CASEWORKER, party="team")
    client.post("/login", data={"token": token})
    form = client.get("/participants")
    assert form.status_code == 200 and 'method="post"' in form.text
    assert 'href="/participants"' in form.text  # the caseworker's navigation link

    page = client.post("/participants", data={"pnr": PNR})
    assert page.status_code == 200
    assert "open, referred 2025-03-01 by kommun" in page.text
    assert "activity support (aktivitetsstöd)" in page.text
    assert "sickness benefit (sjukpenning)" in page.text
    assert "health" not in page.text  # region's record: the consent does not cover it
    assert PNR not in page.text
    # the time of the look-up says its zone: Swedish time
    assert re.search(r"As team may see it, \d{4}-\d\d-\d\d \d\d:\d\d CES?T\.", page.text)

    nothing = client.post("/participants", data={"pnr": OTHER})  # no consent
    unknown = client.post("/participants", data={"pnr": STRANGER})
    assert (nothing.status_code, nothing.text) == (unknown.status_code, unknown.text)
    assert unknown.status_code == 404
    assert "Nothing the hub holds about that number may be shown to you." in unknown.text


@pytest.mark.parametrize("language", ["en", "sv"])
@pytest.mark.parametrize("case", HIDDEN)
def test_a_caseworker_who_may_see_nothing_gets_the_answer_an_unknown_number_gets(
    hub: Hub, case: str, language: str
) -> None:
    # The DPO's finding: an fk caseworker, whom the person's consent does not name, got
    # 200 with "protected_identity": true; a number that is not a participant got 404.
    number, party = hide(case, hub, Clock())
    token = token_for(hub, "cw", Role.CASEWORKER, party=party)
    told = (
        f"nothing the hub holds about that number may be shown to {party}: either it holds "
        f"nothing about it, or consent does not let {party} see any of it"
    )
    with web_client(hub, language) as client:
        answers = []
        for pnr in (number, STRANGER):
            api = client.post("/api/participants/status", json={"pnr": pnr}, headers=bearer(token))
            answers.append((api.status_code, api.text, dict(api.headers)))
        hidden, unknown = answers
        assert hidden == unknown
        assert hidden[:2] == (404, '{"detail":"' + told + '"}')

        client.post("/login", data={"token": token})
        pages = []
        for pnr in (number, STRANGER):
            page = client.post("/participants", data={"pnr": pnr})
            pages.append((page.status_code, page.text, dict(page.headers)))
        hidden, unknown = pages
    assert hidden == unknown
    status, text, _headers = hidden
    lead = {
        "en": "Nothing the hub holds about that number may be shown to you.",
        "sv": "Inget som EVI hub har om det numret får visas för dig.",
    }[language]
    assert status == 404 and f"{lead} ({told})" in text
    assert hub.keys.pseudonym(number) not in text and "rotect" not in text
    views = [e["participant"] for e in ledger(hub.db) if e["action"] == "view"]
    assert views == [hub.keys.pseudonym(number), hub.keys.pseudonym(STRANGER)] * 2  # all logged


def test_a_caseworker_who_may_see_records_still_sees_a_protected_identity(
    hub: Hub, client: TestClient
) -> None:
    mark_protected(hub, PNR)
    token = token_for(hub, "anna.af", Role.CASEWORKER, party="af")
    answer = client.post("/api/participants/status", json={"pnr": PNR}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert (view["participant"], view["protected_identity"]) == (hub.keys.pseudonym(PNR), True)
    assert len(view["entries"]) == 3
    client.post("/login", data={"token": token})
    page = client.post("/participants", data={"pnr": PNR})
    assert page.status_code == 200 and "Protected identity (skyddad identitet)" in page.text
    assert "Records (3, newest first)" in page.text
