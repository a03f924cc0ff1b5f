"""The caseworker's look-up over the web: the user's own party decides what is shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from casework_support import OTHER, PNR, STRANGER, register_caseload
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
    assert other.status_code == 200 and other.json()["entries"] == []


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

    nothing = client.post("/participants", data={"pnr": OTHER})
    assert nothing.status_code == 200 and "lets team see nothing" in nothing.text
    unknown = client.post("/participants", data={"pnr": STRANGER})
    assert unknown.status_code == 404 and "no participant" in unknown.text
