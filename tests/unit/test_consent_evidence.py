"""Evidence is verified before a consent becomes active; failing evidence stores nothing.

Acceptance 2: tampered document, wrong signer and untrusted chain are refused with a
clear reason, and the consent is stored nowhere as active. The PKI is generated here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_consent_support import (
    Clock,
    Pki,
    ledger,
    ledger_bytes,
    paper_fields,
    paper_submission,
    signed_fields,
    skatteverket_numbers,
)

from hub.consent.decisions import decide
from hub.consent.errors import EvidenceRefusedError
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.errors import ConfigError
from hub.hookspecs import hookimpl
from hub.model.consent import ConsentSubmission, EvidenceVerdict, PluginEvidence
from hub.model.identity import parse_identity
from hub.settings import get_settings
from hub.store.db import Database
from hub.store.tables.consent import ConsentRow, ConsentVersionRow
from hub.store.tables.participant import ParticipantRow

PNR, OTHER = skatteverket_numbers(2)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create()


@pytest.fixture
def signing_hub(
    evi_home: Path, database: Database, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Hub]:
    anchors = pki.anchors_file(evi_home / "anchors.pem")
    monkeypatch.setenv("EVI_DATABASE_URL", database.url)
    monkeypatch.setenv("EVI_CONSENT__TRUST_ANCHORS", "anchors.pem")  # relative to EVI_HOME
    get_settings.cache_clear()
    assert anchors.is_file()
    yield Hub(settings=get_settings(), db=database)


def register(hub: Hub, fields: dict) -> object:
    submission = ConsentSubmission.model_validate(fields)
    return ConsentService(hub, clock=Clock()).register(submission, actor="test")


def stored_nothing(hub: Hub) -> bool:
    with hub.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(ConsentRow)) == 0
            and session.scalar(select(func.count()).select_from(ConsentVersionRow)) == 0
            and session.scalar(select(func.count()).select_from(ParticipantRow)) == 0
        )


def test_a_valid_signature_by_the_person_activates_the_consent(signing_hub: Hub, pki: Pki) -> None:
    result = register(signing_hub, signed_fields(pki.signer(PNR), PNR))
    assert result.version == 1
    assert result.verdict.verifier == "evidence-signature"
    assert "signature verified" in result.verdict.detail
    with signing_hub.db.session() as session:
        participant = session.scalars(select(ParticipantRow)).one()
        decision = decide(
            session, participant, "af", "team", "plan", "coordination", Clock()(), actor="test"
        )
    assert decision.permitted


def test_an_rsa_signature_is_accepted_too(signing_hub: Hub, pki: Pki) -> None:
    result = register(signing_hub, signed_fields(pki.signer(PNR, rsa_key=True), PNR))
    assert result.verdict.accepted


def test_a_tampered_document_is_refused_and_nothing_is_stored(signing_hub: Hub, pki: Pki) -> None:
    fields = signed_fields(pki.signer(PNR), PNR)
    fields["categories"] = [*fields["categories"], "health"]  # changed after signing
    with pytest.raises(EvidenceRefusedError) as refused:
        register(signing_hub, fields)
    assert "does not match the consent document" in str(refused.value)
    assert "Nothing was stored" in str(refused.value)
    assert stored_nothing(signing_hub)


def test_a_signature_by_someone_else_is_refused(signing_hub: Hub, pki: Pki) -> None:
    other_person = pki.signer(OTHER)  # a valid e-ID, but not the person's
    with pytest.raises(EvidenceRefusedError) as refused:
        register(signing_hub, signed_fields(other_person, PNR))
    assert "signer is not the person" in str(refused.value)
    assert PNR not in str(refused.value) and OTHER not in str(refused.value)
    assert stored_nothing(signing_hub)


def test_a_signature_made_with_another_key_is_refused(signing_hub: Hub, pki: Pki) -> None:
    person, impostor = pki.signer(PNR), pki.signer(PNR)
    fields = paper_fields(PNR)
    document = _document(fields)
    fields["evidence"] = person.evidence(document, signature=impostor.sign(document))
    with pytest.raises(EvidenceRefusedError, match="another key signed it"):
        register(signing_hub, fields)
    assert stored_nothing(signing_hub)


def test_an_untrusted_chain_is_refused(signing_hub: Hub) -> None:
    stranger = Pki.create("Unknown CA").signer(PNR)
    with pytest.raises(EvidenceRefusedError, match="does not chain to a configured trust anchor"):
        register(signing_hub, signed_fields(stranger, PNR))
    assert stored_nothing(signing_hub)


def test_a_chain_missing_its_intermediate_is_refused(signing_hub: Hub, pki: Pki) -> None:
    signer = pki.signer(PNR)
    signer.chain = []
    with pytest.raises(EvidenceRefusedError, match="does not chain"):
        register(signing_hub, signed_fields(signer, PNR))


def test_a_refusal_is_logged_by_pseudonym_only(signing_hub: Hub) -> None:
    stranger = Pki.create("Unknown CA").signer(PNR)
    with pytest.raises(EvidenceRefusedError):
        register(signing_hub, signed_fields(stranger, PNR))
    (entry,) = ledger(signing_hub.db)
    assert (entry["action"], entry["decision"], entry["reason"]) == (
        "consent_registered",
        "deny",
        "evidence_refused",
    )
    assert entry["participant"] == signing_hub.keys.pseudonym(PNR)
    assert PNR.encode() not in ledger_bytes(signing_hub.db)


def test_signatures_are_refused_when_no_trust_anchors_are_configured(hub: Hub, pki: Pki) -> None:
    with pytest.raises(EvidenceRefusedError, match=r"trust_anchors"):
        register(hub, signed_fields(pki.signer(PNR), PNR))
    assert stored_nothing(hub)


def test_an_unreadable_trust_anchor_file_is_a_config_error(
    signing_hub: Hub, pki: Pki, evi_home: Path
) -> None:
    (evi_home / "anchors.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"consent\.trust_anchors"):
        register(signing_hub, signed_fields(pki.signer(PNR), PNR))


# -- paper forms ----------------------------------------------------------------------------


def test_paper_evidence_with_a_matching_scan_is_accepted(hub: Hub, tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF signed form")
    fields = paper_fields(PNR)
    fields["evidence"] |= {
        "document_sha256": hashlib.sha256(scan.read_bytes()).hexdigest(),
        "scan": str(scan),
    }
    result = register(hub, fields)
    assert result.verdict.verifier == "evidence-paper"
    assert "scan file checked" in result.verdict.detail


def test_paper_evidence_whose_scan_was_changed_is_refused(hub: Hub, tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF another form")
    fields = paper_fields(PNR)
    fields["evidence"]["scan"] = str(scan)
    with pytest.raises(EvidenceRefusedError, match=r"does not match evidence\.document_sha256"):
        register(hub, fields)
    assert stored_nothing(hub)


def test_paper_evidence_hashing_an_empty_file_is_refused(hub: Hub) -> None:
    fields = paper_fields(PNR)
    fields["evidence"]["document_sha256"] = hashlib.sha256(b"").hexdigest()
    with pytest.raises(EvidenceRefusedError, match="empty file"):
        register(hub, fields)


# -- the hook ---------------------------------------------------------------------------------


def test_evidence_no_plugin_understands_is_refused(hub: Hub) -> None:
    fields = paper_fields(PNR, evidence={"kind": "bankid", "data": {"order": "x"}})
    with pytest.raises(EvidenceRefusedError, match=r"no evidence verifier handles .*'bankid'"):
        register(hub, fields)
    assert stored_nothing(hub)


def test_with_the_verifiers_left_out_even_paper_is_refused(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_PLUGINS", "witness-directory")
    with pytest.raises(EvidenceRefusedError, match="kind 'paper'"):
        ConsentService(hub, clock=Clock()).register(paper_submission(PNR), actor="test")
    assert stored_nothing(hub)


class MunicipalVerifier:
    """A municipality's own e-signature verifier, as a third-party plugin would be."""

    @hookimpl
    def evi_verify_consent_evidence(self, evidence, document, settings):
        if not isinstance(evidence, PluginEvidence) or evidence.kind != "kommun-esign":
            return None
        ok = evidence.data.get("receipt") == hashlib.sha256(document).hexdigest()
        return EvidenceVerdict(
            accepted=ok,
            verifier="kommun-esign",
            detail="receipt matches the document" if ok else "receipt is for another document",
        )


def test_a_plugin_can_verify_its_own_evidence_kind(hub: Hub) -> None:
    hub.plugins.register(MunicipalVerifier(), name="kommun-esign")
    fields = paper_fields(PNR, evidence={"kind": "kommun-esign", "data": {}})
    fields["evidence"]["data"]["receipt"] = hashlib.sha256(_document(fields)).hexdigest()
    assert register(hub, fields).verdict.verifier == "kommun-esign"
    fields["categories"] = ["health"]
    with pytest.raises(EvidenceRefusedError, match="kommun-esign: receipt is for another"):
        register(hub, fields)


def test_evidence_is_sealed_at_rest(hub: Hub) -> None:
    register(hub, paper_fields(PNR))
    with hub.db.session() as session:
        row = session.scalars(select(ConsentVersionRow)).one()
        sealed = row.evidence_sealed
    assert "handlaggare-17" not in sealed
    opened = ConsentService(hub).evidence(parse_identity(PNR), row.consent_id, row.version)
    assert opened["witnessed_by"] == "handlaggare-17"
    assert "scan" not in opened


# -- the command line -------------------------------------------------------------------------


def test_cli_refuses_a_tampered_signed_file_with_one_clear_line(
    cli, evi_home: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki.anchors_file(evi_home / "anchors.pem")
    monkeypatch.setenv("EVI_CONSENT__TRUST_ANCHORS", str(evi_home / "anchors.pem"))
    assert cli("db", "upgrade").code == 0
    fields = signed_fields(pki.signer(PNR), PNR)
    fields["valid_until"] = "2027-01-01T00:00:00Z"
    path = evi_home / "consent.json"
    path.write_text(json.dumps(fields))
    result = cli("consent", "register", "--file", str(path))
    assert result.code == 2
    assert result.err.startswith("error: consent refused: evidence-signature: the signature")
    assert result.err.count("\n") == 1
    assert PNR not in result.err
    listed = cli("consent", "list", "--json")
    assert listed.code == 0 and json.loads(listed.out) == []
    a_year_on = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    fields = signed_fields(pki.signer(PNR), PNR, valid_until=a_year_on)
    path.write_text(json.dumps(fields))
    accepted = cli("consent", "register", "--file", str(path))
    assert accepted.code == 0, accepted.err
    assert [c["status"] for c in json.loads(cli("consent", "list", "--json").out)] == ["active"]


def _document(fields: dict) -> bytes:
    from hub.consent.document import submission_document

    return submission_document(ConsentSubmission.model_validate(fields))
