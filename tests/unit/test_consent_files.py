"""Consent files: the documented examples load; a bad file gets one line per problem.

Acceptance 4: bad consent files get one clear error per problem (field, value, why) and
change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_consent_support import CONSENT_DATA, EXAMPLES

from hub.consent.document import submission_document
from hub.consent.errors import ConsentFileError
from hub.consent.files import load_submission
from hub.model.consent import PaperEvidence, SignatureEvidence


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("consent*")))
def test_every_documented_example_loads(name: str) -> None:
    submission = load_submission(EXAMPLES / name)
    assert len(submission.parties) >= 2
    assert submission.valid_from < submission.valid_until


def test_toml_and_json_describe_the_same_consent_the_same_way(tmp_path: Path) -> None:
    toml = load_submission(EXAMPLES / "consent-paper.toml")
    as_json = tmp_path / "same.json"
    as_json.write_text(json.dumps(toml.model_dump(mode="json")))
    again = load_submission(as_json)
    assert submission_document(again) == submission_document(toml)
    assert isinstance(again.evidence, PaperEvidence)


def test_the_canonical_document_ignores_order_and_repeats() -> None:
    base = load_submission(EXAMPLES / "consent-paper.toml")
    shuffled = base.model_copy(
        update={"parties": tuple(reversed(base.parties)), "categories": base.categories[::-1]}
    )
    assert submission_document(shuffled) == submission_document(base)
    document = json.loads(submission_document(base))
    assert document["format"] == "evi-consent/1"
    assert document["parties"] == sorted(document["parties"])
    assert document["valid_from"] == "2025-01-01T00:00:00Z"


def test_a_scan_path_is_relative_to_the_consent_file(tmp_path: Path) -> None:
    text = (EXAMPLES / "consent-paper.toml").read_text()
    text = text.replace('# scan = "scans/2024-12-20-form.pdf"', 'scan = "scans/form.pdf"')
    (tmp_path / "c.toml").write_text(text)
    evidence = load_submission(tmp_path / "c.toml").evidence
    assert isinstance(evidence, PaperEvidence)
    assert evidence.scan == tmp_path / "scans" / "form.pdf"


def problems(name: str) -> list[str]:
    with pytest.raises(ConsentFileError) as failed:
        load_submission(CONSENT_DATA / name)
    return failed.value.problems


def test_every_problem_in_a_file_is_named_with_field_value_and_why() -> None:
    lines = problems("many-problems.toml")
    assert len(lines) == 7
    by_field = {line.split(" ")[0].rstrip(":"): line for line in lines}
    assert set(by_field) == {
        "parties[1]",
        "categories[1]",
        "valid_from",
        "informed_by",
        "pnr",
        "evidence.document_sha256",
        "colour",
    }
    assert '"Arbetsförmedlingen"' in by_field["parties[1]"]
    assert "connector name" in by_field["parties[1]"]
    assert (
        '"economy"' in by_field["categories[1]"] and "not a category" in by_field["categories[1]"]
    )
    assert "timezone offset" in by_field["valid_from"]
    assert "required field is missing" in by_field["informed_by"]
    assert "unknown field" in by_field["colour"]
    assert "check digit" in by_field["pnr"]


def test_a_personnummer_is_never_repeated_in_a_problem() -> None:
    text = " ".join(problems("many-problems.toml"))
    assert "19900101" not in text and "2384" not in text


def test_cross_field_and_list_problems_name_the_field() -> None:
    assert problems("period.json") == [
        'valid_until = "2025-01-01T00:00:00Z": valid_until must be later than valid_from'
    ]
    one_party = problems("one-party.toml")
    assert one_party[0].startswith('parties = ["af", "af"]: needs at least 2 different parties')
    assert one_party[1].startswith('purposes[1] = "marketing": not a purpose')


@pytest.mark.parametrize(
    ("field", "given", "said"),
    [
        ("pnr", 199001012385, 'pnr: must be the number as text, in quotes: "YYYYMMDD-NNNN"'),
        ("parties", "kommun, af", 'parties = "kommun, af": must be a list, e.g. ["kommun"'),
        ("categories", "referral", 'categories = "referral": must be a list, e.g.'),
        ("valid_from", "2025-02-30T00:00:00Z", "no such date (the day or month is out of range)"),
    ],
)
def test_a_value_of_the_wrong_shape_is_told_the_shape_to_give(
    tmp_path: Path, field: str, given: object, said: str
) -> None:
    data = json.loads((EXAMPLES / "consent-paper.json").read_text())
    data[field] = given
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(ConsentFileError) as failed:
        load_submission(tmp_path / "c.json")
    [line] = failed.value.problems
    assert said in line and "Input should be" not in line
    assert "199001012385" not in line and "2385" not in line


def test_signature_evidence_problems_are_named() -> None:
    lines = problems("bad-signature.json")
    assert lines == [
        'evidence.signature = "not base64!!": not valid base64',
        "evidence.certificates = []: needs the signer's certificate (PEM) first",
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken.json", "file: is not valid JSON (Expecting ',' delimiter: line 4"),
        ("duplicate.json", "parties: given twice; keep one"),
    ],
)
def test_unreadable_files_say_where(name: str, expected: str) -> None:
    assert problems(name)[0].startswith(expected)


def test_other_file_types_and_missing_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("pnr: x")
    with pytest.raises(ConsentFileError, match=r"\.json or \.toml"):
        load_submission(tmp_path / "c.yaml")
    with pytest.raises(ConsentFileError, match="does not exist"):
        load_submission(tmp_path / "missing.json")


def test_signature_example_parses_as_signature_evidence() -> None:
    evidence = load_submission(EXAMPLES / "consent-signature.json").evidence
    assert isinstance(evidence, SignatureEvidence)
    assert len(evidence.certificates) == 2


# -- the command line: one line per problem, nothing stored --------------------------------


def test_cli_prints_one_error_line_per_problem_and_stores_nothing(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    result = cli("consent", "register", "--file", str(CONSENT_DATA / "many-problems.toml"))
    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 8  # seven problems and what to do
    assert all(line.startswith(f"error: {CONSENT_DATA / 'many-problems.toml'}: ") for line in lines)
    assert lines[-1].endswith("nothing was stored; fix the file and run again")
    assert "19900101" not in result.err
    assert result.out == ""
    listed = cli("consent", "list", "--json")
    assert json.loads(listed.out) == []


def test_cli_registers_the_documented_examples(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    for name in ("consent-paper.toml", "consent-paper.json"):
        result = cli("consent", "register", "--file", str(EXAMPLES / name))
        assert result.code == 0, result.err
    listed = json.loads(cli("consent", "list", "--json").out)
    assert [e["parties"] for e in listed] == [
        ["af", "fk", "kommun", "team"],
        ["fk", "region", "team"],
    ]
    assert {e["status"] for e in listed} == {"active"}
    amendment = (EXAMPLES / "consent-amendment.toml").read_text()
    amendment = amendment.replace("00000000-0000-4000-8000-000000000000", listed[0]["id"])
    (evi_home / "amend.toml").write_text(amendment)
    amended = cli("consent", "register", "--file", str(evi_home / "amend.toml"))
    assert amended.code == 0, amended.err
    assert amended.out.strip() == listed[0]["id"]
    first = json.loads(cli("consent", "list", "--json").out)[0]
    assert (first["version"], first["parties"]) == (2, ["af", "kommun", "region", "team"])


def test_cli_document_prints_the_bytes_to_sign(cli, evi_home: Path) -> None:
    submission = load_submission(EXAMPLES / "consent-signature.json")
    result = cli("consent", "document", "--file", str(EXAMPLES / "consent-signature.json"))
    assert result.code == 0
    assert result.out.encode() == submission_document(submission)
