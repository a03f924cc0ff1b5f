"""The register extract (GDPR art. 15): everything stored about one person, its making
logged by pseudonym, and nothing about anyone else."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from casework_support import OTHER, PNR, STRANGER, register_caseload
from test_consent_support import Clock, ledger

from hub.casework.held import held_data
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.errors import NotFoundError
from hub.model.identity import parse_identity
from hub.store.participants import ParticipantRepository
from hub.store.tables.sync import Subscription

SUBSCRIBED = datetime(2025, 2, 1, tzinfo=UTC)


@pytest.fixture
def caseload(hub: Hub) -> Hub:
    """PNR: a consent, five stored records and a subscription at af; OTHER: five records."""
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2026-01-01T00:00:00Z")
    with hub.db.session() as session:
        person = ParticipantRepository(session, hub.keys).find(parse_identity(PNR))
        assert person is not None
        session.add(
            Subscription(participant_id=person.id, party="af", active=True, changed_at=SUBSCRIBED)
        )
    return hub


def test_the_extract_holds_everything_stored_about_the_person_and_nothing_else(
    caseload: Hub,
) -> None:
    held = held_data(caseload, parse_identity(PNR), "cli:dpo").as_json()

    assert held["subject"] == {"personal_identity": f"{PNR[:8]}-{PNR[8:]}"}
    assert held["participant"] == caseload.keys.pseudonym(PNR)
    assert held["gender"] == parse_identity(PNR).gender
    assert held["subscriptions"] == [
        {"party": "af", "active": True, "changed_at": SUBSCRIBED.isoformat()}
    ]
    # all five records, the restricted one too: it is the person's data
    assert sorted((r["origin"], r["kind"], r["restricted"]) for r in held["records"]) == [
        ("af", "benefit", False),
        ("fk", "benefit", False),
        ("kommun", "benefit", True),
        ("kommun", "referral", False),
        ("region", "health", False),
    ]
    assert all(r["source_id"].startswith(PNR[-4:]) for r in held["records"])  # not OTHER's
    referral = next(r for r in held["records"] if r["kind"] == "referral")
    assert referral["body"]["reason"] == "financial_aid"
    (consent,) = held["consents"]
    assert consent["parties"] == ["af", "fk", "kommun", "team"]
    assert consent["status"] == "expired"


def test_making_the_extract_is_logged_by_pseudonym(caseload: Hub) -> None:
    before = len(ledger(caseload.db))
    held_data(caseload, parse_identity(PNR), "cli:dpo")
    (entry,) = ledger(caseload.db)[before:]

    assert entry["action"] == "subject_access"
    assert entry["participant"] == caseload.keys.pseudonym(PNR)
    assert entry["actor"] == "cli:dpo" and entry["role"] == "privacy_officer"
    assert entry["reason"] == "registerutdrag: 5 stored records, 1 consents"
    assert PNR not in json.dumps(entry) and PNR[2:] not in json.dumps(entry)


def test_the_text_is_plain_swedish_for_the_person(caseload: Hub) -> None:
    text = held_data(caseload, parse_identity(PNR), "cli:dpo").as_text()

    assert text.startswith("REGISTERUTDRAG: UPPGIFTER OM DIG I EN VÄG IN")
    assert f"Avser: {PNR[:8]}-{PNR[8:]}" in text
    assert "Arbetsförmedlingen: sedan 2025-02-01" in text
    assert "UPPGIFTER SOM MYNDIGHETERNA HAR LÄMNAT OM DIG (5)" in text
    assert "från kommunen: remiss" in text
    assert "reason: financial_aid" in text
    assert text.count("hämtad med stöd av lag") == 1  # the restricted benefit
    assert "KVITTO PÅ DITT SAMTYCKE" in text  # the consents, as the receipt words them


def test_a_person_the_hub_does_not_know_is_not_found_and_the_number_not_repeated(
    caseload: Hub,
) -> None:
    before = ledger(caseload.db)
    with pytest.raises(NotFoundError) as missing:
        held_data(caseload, parse_identity(STRANGER), "cli:dpo")
    assert STRANGER not in missing.value.message and STRANGER[2:] not in missing.value.message
    assert ledger(caseload.db) == before


def test_cli_prints_text_or_writes_json(caseload: Hub, cli: Any, tmp_path: Path) -> None:
    shown = cli("participants", "extract", "--pnr", OTHER)
    assert shown.code == 0, shown.err
    assert "UPPGIFTER SOM MYNDIGHETERNA HAR LÄMNAT OM DIG (5)" in shown.out
    assert "extract of 5 stored records and 0 consents made" in shown.err
    assert "SAMTYCKEN\n\n  inga registrerade" in shown.out  # OTHER never gave one

    target = tmp_path / "extract.json"
    written = cli("participants", "extract", "--pnr", PNR, "--json", "-o", str(target))
    assert written.code == 0, written.err
    assert written.out == ""  # all of it in the file
    assert len(json.loads(target.read_text())["records"]) == 5
    assert target.stat().st_mode & 0o077 == 0  # personal data: the owner's only

    unknown = cli("participants", "extract", "--pnr", STRANGER)
    assert unknown.code == 1 and STRANGER not in unknown.err
    bad = cli("participants", "extract", "--pnr", "12345")
    assert bad.code == 2 and "--pnr" in bad.err
