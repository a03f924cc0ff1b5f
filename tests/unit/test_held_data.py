"""The register extract (GDPR art. 15): everything stored about one person, its making
logged by pseudonym, and nothing about anyone else."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from casework_support import OTHER, PNR, STRANGER, register_caseload
from sqlalchemy import select
from test_consent_support import Clock, Pki, ledger, signed_fields

from hub.casework.held import held_data
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.errors import NotFoundError
from hub.model.consent import ConsentSubmission
from hub.model.identity import parse_identity
from hub.model.vocab import Category
from hub.settings import get_settings
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentVersionRow
from hub.store.tables.sync import OutboxItem, StoredRecord, Subscription

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
    # the fields and codes in the words the pages use, the parties by name
    assert "orsak: har försörjningsstöd, remitterad av: kommunen, mottagen: 2025-03-01" in text
    assert (
        "från regionen (hälso- och sjukvården): hälsa\n   pågående behandlingskontakt: ja" in text
    )
    assert "typ: aktivitetsstöd, start: 2025-04-01" in text
    for raw in ("financial_aid", "referring_party", "ongoing_treatment_contact", "True"):
        assert raw not in text
    assert "aktivitetsstod" not in text and "forsorjningsstod" not in text
    assert text.count("hämtad med stöd av lag") == 1  # the restricted benefit
    assert "KVITTO PÅ DITT SAMTYCKE" in text  # the consents, as the receipt words them


def test_a_closure_and_an_unknown_code_read_as_words_with_the_authoritys_own_code(
    caseload: Hub,
) -> None:
    """The outcome and the reason in Swedish; a code the mapping did not know is shown as
    the authority sent it."""
    with caseload.db.session() as session:
        person = ParticipantRepository(session, caseload.keys).find(parse_identity(PNR))
        assert person is not None
        body = {
            "kind": "closure",
            "closed_on": "2025-06-01",
            "reason": "unmapped",
            "outcome": "work_with_subsidy",
            "survey_answer": 4,
        }
        session.add(
            StoredRecord(
                source="kommun",
                source_id=f"{PNR[-4:]}-closure",
                participant_id=person.id,
                kind="closure",
                category="outcome",
                updated_at=SUBSCRIBED,
                body=body,
                payload_sha256="0" * 64,
                restricted=False,
                unmapped=[{"field": "avslutsorsak", "code": "K77"}],
                mapping_version="kommun-2025-1",
                stored_at=SUBSCRIBED,
            )
        )
    held = held_data(caseload, parse_identity(PNR), "cli:dpo")
    text = held.as_text()

    assert "från kommunen: avslut" in text
    assert "utfall: arbete med stöd" in text and "avslutad: 2025-06-01" in text
    assert "orsak: ej översatt (ingen gemensam kod)" in text
    assert 'originalkoden från kommunen: "K77" i fältet "avslutsorsak"' in text
    assert "work_with_subsidy" not in text and "outcome:" not in text
    (closure,) = [r for r in held.as_json()["records"] if r["kind"] == "closure"]
    assert closure["body"]["outcome"] == "work_with_subsidy"  # the JSON keeps the codes
    assert closure["unmapped"] == [{"field": "avslutsorsak", "code": "K77"}]
    assert closure["mapping_version"] == "kommun-2025-1"


def test_the_extract_shows_each_consent_version_as_stored_with_its_evidence(
    caseload: Hub,
) -> None:
    """Paper evidence: who witnessed it and the scan's checksum; who informed the person
    and who registered the consent, its withdrawals and blocks."""
    service = ConsentService(caseload, clock=Clock())
    service.withdraw(parse_identity(PNR), actor="kalle.team", party="fk")
    service.block(parse_identity(PNR), actor="kalle.team", category=Category.BENEFIT)
    held = held_data(caseload, parse_identity(PNR), "cli:dpo")
    text = held.as_text()

    assert "SAMTYCKEN OCH SPÄRRAR: ALLT SOM ÄR SPARAT" in text
    assert "Du fick information om samtycket av handlaggare-17" in text
    assert "Bevis: en underskriven samtyckesblankett på papper, inskannad" in text
    assert "bevittnad av: handlaggare-17" in text
    assert hashlib.sha256(b"scanned form").hexdigest() in text
    assert "Registrerat i EVI hub 2025-01-02 01:00 av test" in text
    assert "för Försäkringskassan" in text and "registrerat av kalle.team" in text
    assert "uppgifter om ersättning, alla parter" in text
    (version,) = held.as_json()["consent_versions"]
    assert version["informed_by"] == "handlaggare-17" and version["recorded_by"] == "test"
    evidence = version["evidence"]
    assert evidence["opened"] is True and evidence["verifier"] == "evidence-paper"
    assert evidence["stored"]["witnessed_by"] == "handlaggare-17"
    assert evidence["stored"]["document_sha256"] == hashlib.sha256(b"scanned form").hexdigest()
    (withdrawal,) = held.as_json()["consent_withdrawals"]
    assert (withdrawal["party"], withdrawal["recorded_by"]) == ("fk", "kalle.team")
    (block,) = held.as_json()["consent_blocks"]
    assert (block["category"], block["recorded_by"]) == ("benefit", "kalle.team")


def test_evidence_the_keys_cannot_open_is_said_not_left_out(caseload: Hub) -> None:
    with caseload.db.session() as session:
        (row,) = session.scalars(select(ConsentVersionRow)).all()
        row.evidence_sealed = base64.b64encode(b"\0" * 40).decode()
    held = held_data(caseload, parse_identity(PNR), "cli:dpo")

    assert "gick inte att öppna med EVI hubs nycklar" in held.as_text()
    (version,) = held.as_json()["consent_versions"]
    assert version["evidence"]["opened"] is False and version["evidence"]["stored"] is None
    assert version["evidence"]["kind"] == "paper"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create()


def test_a_signed_consent_shows_the_signers_certificate_read_out(
    hub: Hub, evi_home: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate carries the person's name and number: the extract reads it out of
    the sealed evidence, with the signature itself."""
    pki.anchors_file(evi_home / "anchors.pem")
    monkeypatch.setenv("EVI_CONSENT__TRUST_ANCHORS", "anchors.pem")
    get_settings.cache_clear()
    signing = Hub(settings=get_settings(), db=hub.db)
    fields = signed_fields(pki.signer(PNR), PNR)
    ConsentService(signing, clock=Clock()).register(
        ConsentSubmission.model_validate(fields), actor="test"
    )
    held = held_data(signing, parse_identity(PNR), "cli:dpo")
    text = held.as_text()

    assert "Bevis: din elektroniska underskrift av samtycket" in text
    assert f"ditt certifikat: namn: Test Testsson; serienummer: {PNR}" in text
    assert "utfärdat av: namn: Test e-ID Issuing CA" in text
    assert "certifikat 2 i kedjan: namn: Test e-ID Issuing CA" in text
    signature = fields["evidence"]["signature"]
    assert signature[:60] in text  # the signature itself, as base64
    (version,) = held.as_json()["consent_versions"]
    evidence = version["evidence"]
    assert evidence["stored"]["signature"] == signature
    assert evidence["stored"]["certificates"] == fields["evidence"]["certificates"]
    signer = evidence["certificates"][0]
    assert {"attribute": "commonName", "value": "Test Testsson"} in signer["subject"]
    assert {"attribute": "serialNumber", "value": PNR} in signer["subject"]


def test_the_extract_shows_transfers_queued_but_not_sent_and_no_one_elses(
    caseload: Hub,
) -> None:
    with caseload.db.session() as session:
        records = {
            r.source_id: r
            for r in session.scalars(select(StoredRecord).where(StoredRecord.source == "kommun"))
        }
        queued = datetime(2025, 5, 2, 8, tzinfo=UTC)

        def item(source_id: str, recipient: str, status: str, attempts: int = 0) -> OutboxItem:
            record = records[source_id]
            return OutboxItem(
                idempotency_key=f"{source_id}:{recipient}",
                record_id=record.id,
                participant_id=record.participant_id,
                origin="kommun",
                recipient=recipient,
                purpose="coordination",
                category=record.category,
                status=status,
                attempts=attempts,
                next_attempt_at=queued,
                last_error="503 from the recipient" if attempts else None,
                created_at=queued,
            )

        session.add_all(
            [
                item(f"{PNR[-4:]}-0", "team", "pending"),  # PNR's referral, waiting
                item(f"{PNR[-4:]}-0", "fk", "dead", attempts=5),  # given up on
                item(f"{PNR[-4:]}-0", "af", "delivered"),  # sent: the log's part
                item(f"{OTHER[-4:]}-0", "region", "pending"),  # someone else's
            ]
        )
    held = held_data(caseload, parse_identity(PNR), "cli:dpo")
    text = held.as_text()

    assert "UPPGIFTER OM DIG SOM SKA LÄMNAS UT MEN ÄNNU INTE HAR SKICKATS (2)" in text
    assert (
        "  uppgift 1 (remiss från kommunen) till samordningsteamet, för samverkan kring dig\n"
        "    i kö sedan 2025-05-02 10:00\n" in text
    )
    assert "till Försäkringskassan" in text and "efter 5 försök" in text
    assert "regionen (hälso- och sjukvården), för" not in text  # OTHER's transfer
    assert (
        "503 from the recipient" not in text
    )  # the error text is the operator's (ids may hold 503)
    pending = held.as_json()["pending_transfers"]
    assert [(t["recipient"], t["category"], t["status"]) for t in pending] == [
        ("team", "referral", "pending"),
        ("fk", "referral", "dead"),
    ]
    assert pending[0]["queued_at"] == "2025-05-02T08:00:00Z"
    assert all(t["source_id"] == f"{PNR[-4:]}-0" for t in pending)
    assert "503 from the recipient" not in json.dumps(held.as_json())


def test_the_core_extract_does_not_import_the_web() -> None:
    """The extract takes the pages' words from hub.text, never from hub.web."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, hub.casework.held; "
            "print([m for m in sys.modules if m.startswith('hub.web')])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_a_person_the_hub_does_not_know_is_not_found_and_the_number_not_repeated(
    caseload: Hub,
) -> None:
    before = len(ledger(caseload.db))
    with pytest.raises(NotFoundError) as missing:
        held_data(caseload, parse_identity(STRANGER), "cli:dpo")
    assert STRANGER not in missing.value.message and STRANGER[2:] not in missing.value.message
    # the failed look-up is on record, as a caseworker's is: by the number's pseudonym
    (entry,) = ledger(caseload.db)[before:]
    assert (entry["action"], entry["outcome"], entry["reason"]) == (
        "subject_access",
        "minor_failure",
        "not_a_participant",
    )
    assert entry["participant"] == caseload.keys.pseudonym(STRANGER)
    assert (entry["actor"], entry["role"]) == ("cli:dpo", "privacy_officer")
    assert STRANGER not in json.dumps(entry) and STRANGER[2:] not in json.dumps(entry)


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


def test_an_extract_into_a_directory_is_refused_before_it_is_made(
    caseload: Hub, cli: Any, tmp_path: Path
) -> None:
    entries = len(ledger(caseload.db))
    into_dir = cli("participants", "extract", "--pnr", PNR, "-o", str(tmp_path))
    assert into_dir.code == 2, into_dir.err
    assert f"{tmp_path} is a directory; give the name of a file to write" in into_dir.err
    missing = cli("participants", "extract", "--pnr", PNR, "-o", str(tmp_path / "no" / "x"))
    assert missing.code == 2 and "is not a directory; create it first" in missing.err
    assert PNR not in into_dir.err + missing.err
    assert len(ledger(caseload.db)) == entries  # no extract made, so none on record
    assert list(tmp_path.parent.glob(f".{tmp_path.name}.*")) == []
