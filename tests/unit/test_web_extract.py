"""The privacy officer's register extract on the web: the officer's only, the number in a
POST body only, the making logged with the officer's name."""

from __future__ import annotations

import pytest
from casework_support import PNR, STRANGER, register_caseload
from fastapi.testclient import TestClient
from test_consent_support import Clock, ledger
from web_support import bearer, token_for, web_client

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.web.users import Role


@pytest.fixture
def client(hub: Hub) -> TestClient:
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2026-01-01T00:00:00Z")
    return web_client(hub)


def test_the_api_gives_the_officer_the_extract_and_logs_it(hub: Hub, client: TestClient) -> None:
    olle = bearer(token_for(hub, "olle.dso", Role.PRIVACY_OFFICER))
    answer = client.post("/api/participants/extract", json={"pnr": PNR}, headers=olle)

    assert answer.status_code == 200, answer.text
    held = answer.json()
    assert held["participant"] == hub.keys.pseudonym(PNR)
    assert len(held["records"]) == 5 and len(held["consents"]) == 1
    assert answer.headers["cache-control"] == "no-store"
    (made,) = [e for e in ledger(hub.db) if e["action"] == "subject_access"]
    assert (made["actor"], made["role"]) == ("olle.dso", "privacy_officer")


def test_only_a_privacy_officer_may_and_only_with_a_valid_number(
    hub: Hub, client: TestClient
) -> None:
    assert client.post("/api/participants/extract", json={"pnr": PNR}).status_code == 401
    anna = bearer(token_for(hub, "anna.af", Role.CASEWORKER, party="af"))
    denied = client.post("/api/participants/extract", json={"pnr": PNR}, headers=anna)
    assert denied.status_code == 403
    olle = bearer(token_for(hub, "olle.dso", Role.PRIVACY_OFFICER))
    bad = client.post("/api/participants/extract", json={"pnr": "12345"}, headers=olle)
    assert bad.status_code == 422 and "12345" not in bad.text
    unknown = client.post("/api/participants/extract", json={"pnr": STRANGER}, headers=olle)
    assert unknown.status_code == 404 and STRANGER not in unknown.text
    assert not [e for e in ledger(hub.db) if e["action"] == "subject_access"]


def test_the_page_shows_the_swedish_text(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "olle.dso", Role.PRIVACY_OFFICER)
    client.post("/login", data={"token": token})

    form = client.get("/extract")
    assert form.status_code == 200 and 'name="pnr" type="password"' in form.text
    page = client.post("/extract", data={"pnr": PNR})
    assert page.status_code == 200
    assert "REGISTERUTDRAG: UPPGIFTER OM DIG I EN VÄG IN" in page.text
    assert "från kommunen: remiss" in page.text
    empty = client.post("/extract", data={"pnr": ""})
    assert empty.status_code == 422 and "pnr" in empty.text
