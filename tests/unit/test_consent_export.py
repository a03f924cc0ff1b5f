"""FHIR R5 export and the Swedish receipt.

Acceptance 3: the export validates as R5 (``fhir.resources``, whose default is R5) and
uses only valid code values; the library checks structure, not codes, so every coding is
checked here against the code systems' published codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fhir.resources import __fhir_version__ as fhir_version
from fhir.resources.bundle import Bundle
from fhir.resources.consent import Consent
from test_consent_support import Clock, paper_submission, skatteverket_numbers

from hub.consent.fhir import export_bundle
from hub.consent.receipt import render_receipt
from hub.consent.service import ConsentService
from hub.consent.views import PersonConsents
from hub.context import Hub
from hub.model.identity import parse_identity
from hub.model.vocab import Category
from hub.store.participants import ParticipantRepository

PNR, PROTECTED = skatteverket_numbers(2)
(SAMORDNING,) = skatteverket_numbers(1, "samordningsnummer")

# Codes as published by HL7 (hl7.org/fhir/R5 and terminology.hl7.org), written out here
# rather than imported, so a wrong code in the exporter cannot also be "right" here.
VALID_CODES: dict[str, set[str]] = {
    "http://loinc.org": {"59284-0"},
    "http://terminology.hl7.org/CodeSystem/v3-ActReason": {"COC", "HQUALIMP"},
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType": {"CST", "IRCP"},
    "http://terminology.hl7.org/CodeSystem/consentaction": {
        "collect",
        "access",
        "use",
        "disclose",
        "correct",
    },
    "https://evi-hub.example/fhir/CodeSystem/information-category": {c.value for c in Category},
}
CONSENT_STATE_CODES = {"draft", "active", "inactive", "not-done", "entered-in-error", "unknown"}
CONSENT_PROVISION_TYPE = {"deny", "permit"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def person(hub: Hub, clock: Clock) -> PersonConsents:
    """A consent amended once, then partly withdrawn, with a block and a second consent."""
    service = ConsentService(hub, clock=clock)
    identity = parse_identity(PNR)
    first = service.register(paper_submission(PNR), actor="cw")
    clock.advance(days=2)
    service.register(
        paper_submission(
            PNR,
            amends=first.consent_id,
            parties=["af", "kommun", "region", "team"],
            purposes=["coordination", "evaluation"],
        ),
        actor="cw",
    )
    service.register(
        paper_submission(PNR, parties=["fk", "team"], valid_until="2025-02-01T00:00:00Z"),
        actor="cw",
    )
    clock.advance(days=1)
    service.withdraw(identity, actor="cw", consent_id=first.consent_id, category=Category.PLAN)
    service.block(identity, actor="cw", party="region", until=clock() + timedelta(days=30))
    clock.advance(days=60)  # the fk consent has expired by now
    return service.person(identity, actor="test")


def codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield node
        for value in node.values():
            yield from codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from codings(value)


def test_the_export_validates_as_fhir_r5(person: PersonConsents) -> None:
    assert fhir_version.startswith("5.")
    bundle = export_bundle(person)
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        consent = Consent.model_validate(entry["resource"])
        assert consent.get_resource_type() == "Consent"


def test_the_export_uses_only_valid_code_values(person: PersonConsents) -> None:
    bundle = export_bundle(person)
    seen = list(codings(bundle))
    assert seen
    for coding in seen:
        assert coding["code"] in VALID_CODES[coding["system"]], coding
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert resource["status"] in CONSENT_STATE_CODES
        assert resource["decision"] in CONSENT_PROVISION_TYPE


def test_export_denies_by_default_and_permits_each_party_pair(person: PersonConsents) -> None:
    amended, expired = (e["resource"] for e in export_bundle(person)["entry"])
    assert amended["decision"] == "deny"
    assert amended["meta"]["versionId"] == "2"
    assert amended["status"] == "active" and expired["status"] == "inactive"
    pairs = [
        tuple(a["reference"]["identifier"]["value"] for a in p["actor"])
        for p in amended["provision"]
    ]
    parties = ["af", "kommun", "region", "team"]
    assert sorted(pairs) == sorted((o, r) for o in parties for r in parties if o != r)
    first = amended["provision"][0]
    assert [a["role"]["coding"][0]["code"] for a in first["actor"]] == ["CST", "IRCP"]
    assert [p["code"] for p in first["purpose"]] == ["COC", "HQUALIMP"]
    assert first["action"][0]["coding"][0]["code"] == "disclose"


def test_blocks_and_partial_withdrawals_are_nested_denials(person: PersonConsents) -> None:
    amended = export_bundle(person)["entry"][0]["resource"]
    by_pair = {
        tuple(a["reference"]["identifier"]["value"] for a in p["actor"]): p
        for p in amended["provision"]
    }
    region_pair = by_pair[("region", "team")]["provision"]
    other_pair = by_pair[("af", "team")]["provision"]
    block = person.blocks[0]
    assert {"period": {"start": _z(block.valid_from), "end": _z(block.valid_until)}} in region_pair
    withdrawn_plan = [n for n in other_pair if n.get("code")]
    assert [n["code"][0]["coding"][0]["code"] for n in withdrawn_plan] == ["plan"]
    assert "end" not in withdrawn_plan[0]["period"]
    assert not any("code" not in n for n in other_pair)  # the region block is not af's


def test_a_protected_person_is_exported_by_pseudonym_only(hub: Hub, clock: Clock) -> None:
    service = ConsentService(hub, clock=clock)
    service.register(paper_submission(PROTECTED), actor="cw")
    with hub.db.session() as session:
        ParticipantRepository(session, hub.keys).ensure(
            parse_identity(PROTECTED), protected_identity=True
        )
    person = service.person(parse_identity(PROTECTED), actor="test")
    text = json.dumps(export_bundle(person))
    assert PROTECTED not in text
    subject = export_bundle(person)["entry"][0]["resource"]["subject"]
    assert subject["identifier"]["value"] == person.pseudonym


def test_a_samordningsnummer_gets_its_own_identifier_system(hub: Hub, clock: Clock) -> None:
    service = ConsentService(hub, clock=clock)
    service.register(paper_submission(SAMORDNING), actor="cw")
    bundle = export_bundle(service.person(parse_identity(SAMORDNING), actor="test"))
    subject = bundle["entry"][0]["resource"]["subject"]["identifier"]
    assert subject == {"system": "urn:oid:1.2.752.129.2.1.3.3", "value": SAMORDNING}


def test_the_receipt_tells_the_person_in_swedish_what_they_agreed_to(
    person: PersonConsents,
) -> None:
    text = render_receipt(person)
    for expected in (
        "KVITTO PÅ DITT SAMTYCKE",
        PNR[:8] + "-****",
        "Arbetsförmedlingen",
        "Regionen (hälso- och sjukvården)",
        "Samordningsteamet i En väg in",
        "kartläggningen av din situation",
        "att samordna ditt stöd mellan parterna",
        "uppföljning och statistik",
        "Samtycket gäller från den 1 januari 2025 kl. 01.00 till den 1 januari 2026 kl. 01.00",
        "Du återkallade samtycket för uppgifter om din planering",
        "Dina spärrar",
        "Samtycket har upphört att gälla",
        "Så återkallar du samtycket",
        "lika enkelt som att ge det",
        "Återkallelsen gäller från den stund den registreras",
    ):
        assert expected in text, expected
    assert PNR not in text
    for code in ("coordination", "withdrawn", "party_not_covered", "kommun,"):
        assert code not in text


def test_the_receipt_says_what_no_longer_applies(hub: Hub, clock: Clock) -> None:
    service = ConsentService(hub, clock=clock)
    identity = parse_identity(PNR)
    first = service.register(paper_submission(PNR, categories=["referral", "health"]), actor="cw")
    service.withdraw(identity, actor="cw", consent_id=first.consent_id, category=Category.HEALTH)
    clock.advance(days=1)  # then the person gives it again, in an amendment
    service.register(
        paper_submission(PNR, amends=first.consent_id, categories=["referral", "health"]),
        actor="cw",
    )
    block = service.block(identity, actor="cw", party="region")
    clock.advance(days=1)
    service.lift_block(identity, block.id, actor="cw")
    text = render_receipt(service.person(identity, actor="test"))
    assert "uppgifter om uppgifter" not in text
    assert "  - din hälsa" in text
    assert (
        "för uppgifter om din hälsa den 2 januari 2025 kl. 01.00. Det gällde version 1; "
        "version 2, som gäller nu, registrerades efter det."
    ) in " ".join(text.split())
    assert "(hävd den " in text and "gäller inte längre)" in text


def test_an_ended_consent_is_told_in_the_past_tense(hub: Hub, clock: Clock) -> None:
    service = ConsentService(hub, clock=clock)
    identity = parse_identity(PNR)
    service.register(paper_submission(PNR), actor="cw")
    clock.advance(days=3)
    service.withdraw(identity, actor="cw")
    text = " ".join(render_receipt(service.person(identity, actor="test")).split())
    assert "Du sa ja till att dessa parter fick lämna uppgifter om dig till varandra" in text
    assert "Du har sagt ja" not in text and "Därefter upphör det" not in text
    assert (
        "Samtycket gällde från den 1 januari 2025 kl. 01.00 till den 5 januari 2025 kl. 01.00, "
        "då du återkallade det."
    ) in text


def test_cli_exports_fhir_and_receipt(cli, evi_home, tmp_path) -> None:
    from test_consent_support import EXAMPLES

    assert cli("db", "upgrade").code == 0
    assert cli("consent", "register", "--file", str(EXAMPLES / "consent-paper.toml")).code == 0
    fhir = cli("consent", "export", "--pnr", "900101-2385", "--format", "fhir")
    assert fhir.code == 0, fhir.err
    Bundle.model_validate(json.loads(fhir.out))
    receipt = cli("consent", "export", "--pnr", "19900101-2385", "--format", "receipt")
    assert receipt.code == 0 and "KVITTO PÅ DITT SAMTYCKE" in receipt.out
    bad = cli("consent", "export", "--pnr", "19900101-2385", "--format", "pdf")
    assert bad.code == 2


def _z(value) -> str:
    from hub.consent.document import rfc3339

    return rfc3339(value)
