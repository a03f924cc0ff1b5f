"""The privacy officer's register extract on the web: the officer's only, the number in a
POST body only, the making logged with the officer's name."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from casework_support import PNR, STRANGER, register_caseload
from fastapi.testclient import TestClient
from test_consent_support import Clock, ledger
from web_support import bearer, token_for, web_client

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.ledger.proofs import root_from_inclusion_proof
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
    # only the officer's failed look-up is on record; the refused requests made nothing
    made = [e for e in ledger(hub.db) if e["action"] == "subject_access"]
    assert [(e["actor"], e["reason"]) for e in made] == [("olle.dso", "not_a_participant")]


def test_the_page_shows_the_swedish_text(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "olle.dso", Role.PRIVACY_OFFICER)
    client.post("/login", data={"token": token})

    form = client.get("/extract")
    assert form.status_code == 200 and 'name="pnr" type="password"' in form.text
    page = client.post("/extract", data={"pnr": PNR})
    assert page.status_code == 200
    assert "REGISTERUTDRAG: UPPGIFTER OM DIG I EN VÄG IN" in page.text
    assert "från kommunen: remiss" in page.text
    # the record's fields and codes in the pages' Swedish, the consent evidence opened
    assert "orsak: har försörjningsstöd, remitterad av: kommunen" in page.text
    assert "financial_aid" not in page.text and "referring_party" not in page.text
    assert "bevittnad av: handlaggare-17" in page.text
    empty = client.post("/extract", data={"pnr": ""})
    assert empty.status_code == 422 and "pnr" in empty.text


def test_the_log_extract_is_the_clis_with_proofs_and_is_logged(
    hub: Hub, client: TestClient, cli: Any
) -> None:
    olle = bearer(token_for(hub, "olle.dso", Role.PRIVACY_OFFICER))
    answer = client.post("/api/log/extract", json={"pnr": PNR}, headers=olle)
    assert answer.status_code == 200, answer.text
    made = answer.json()
    by_cli = json.loads(cli("log", "extract", "--pnr", PNR, "--format", "json").out)
    assert made["participant"] == by_cli["participant"] == hub.keys.pseudonym(PNR)
    seqs = [e["seq"] for e in made["entries"]]
    assert seqs and seqs == [e["seq"] for e in by_cli["entries"]][: len(seqs)]
    root = base64.b64decode(made["checkpoint"]["root"])
    for entry in made["entries"]:  # each proof checks against the signed root
        proof = entry["inclusion_proof"]
        assert proof["tree_size"] == made["checkpoint"]["tree_size"]
        leaf = bytes.fromhex(entry["leaf_hash"])
        hashes = [bytes.fromhex(h) for h in proof["hashes"]]
        assert root_from_inclusion_proof(entry["seq"], proof["tree_size"], leaf, hashes) == root
    extracts = [e for e in ledger(hub.db) if e["action"] == "ledger_extract"]
    assert (extracts[0]["actor"], extracts[0]["role"]) == ("olle.dso", "privacy_officer")
    anna = bearer(token_for(hub, "anna.af", Role.CASEWORKER, party="af"))
    assert client.post("/api/log/extract", json={"pnr": PNR}, headers=anna).status_code == 403
    bad = client.post("/api/log/extract", json={"pnr": "12345"}, headers=olle)
    assert bad.status_code == 422 and "12345" not in bad.text


def test_the_page_makes_the_log_extract_in_swedish(hub: Hub, client: TestClient) -> None:
    client.post("/login", data={"token": token_for(hub, "olle.dso", Role.PRIVACY_OFFICER)})
    page = client.post("/extract/log", data={"pnr": PNR})
    assert page.status_code == 200
    assert "Log extract" in page.text and "Samtycke registrerat" in page.text
    assert PNR not in client.get("/extract").text
    missing = client.post("/extract/log", data={"pnr": " "})
    assert missing.status_code == 422 and "personnummer" in missing.text
