"""Reading consents leaves a trace: `evi consent show`, `export` and `list` each append a
`consent_read` entry (by pseudonym, or one for a whole list) before anything is printed;
being a client of the joint team is itself secret (OSL 26 kap.)."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from casework_support import OTHER, PNR, STRANGER, register_caseload
from test_consent_support import Clock, ledger

from hub.consent.service import ConsentService
from hub.context import Hub


@pytest.fixture
def caseload(hub: Hub) -> Hub:
    """PNR has a consent (running until 2099); OTHER has stored records but none."""
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2099-01-01T00:00:00Z")
    return hub


def _no_number(entries: list[dict[str, Any]]) -> None:
    text = json.dumps(entries)
    for number in (PNR, OTHER, STRANGER):
        assert number not in text and number[2:] not in text


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("show",), "show"),
        (("show", "--json"), "show"),
        (("export", "--format", "fhir"), "export fhir"),
        (("export", "--format", "receipt"), "export receipt"),
    ],
    ids=["show", "show --json", "export fhir", "export receipt"],
)
def test_showing_or_exporting_a_persons_consents_is_logged_by_pseudonym(
    caseload: Hub, cli: Any, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], what: str
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "root")
    before = len(ledger(caseload.db))
    shown = cli("consent", args[0], "--pnr", PNR, *args[1:])
    assert shown.code == 0, shown.err
    (entry,) = ledger(caseload.db)[before:]
    assert entry["action"] == "consent_read" and entry["outcome"] == "success"
    assert entry["participant"] == caseload.keys.pseudonym(PNR)
    assert (entry["actor"], entry["role"]) == ("cli:root", "administrator")
    assert entry["reason"] == f"{what}: 1 consents"
    _no_number([entry])


class _FirstWrite(io.TextIOWrapper):
    """Standard output that notes the ledger's actions when the first text arrives."""

    def __init__(self, database: Any) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8")
        self.database = database
        self.seen: list[str] | None = None

    def write(self, text: str) -> int:
        if self.seen is None and text:
            self.seen = [e["action"] for e in ledger(self.database)]
        return super().write(text)


@pytest.mark.parametrize(
    "args",
    [("show", "--pnr", PNR, "--json"), ("list",), ("list", "--json")],
    ids=["show --json", "list", "list --json"],
)
def test_the_read_is_on_record_before_anything_is_printed(
    caseload: Hub, cli: Any, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    before = len(ledger(caseload.db))
    out = _FirstWrite(caseload.db)
    monkeypatch.setattr(sys, "stdout", out)
    assert cli("consent", *args).code == 0
    assert out.seen is not None and out.seen[before:] == ["consent_read"]


def test_listing_every_consent_is_one_entry_naming_no_one(caseload: Hub, cli: Any) -> None:
    before = len(ledger(caseload.db))
    plain = cli("consent", "list")
    assert plain.code == 0, plain.err
    with_numbers = cli("consent", "list", "--json")
    assert with_numbers.code == 0 and PNR in with_numbers.out  # the JSON holds the numbers
    entries = ledger(caseload.db)[before:]
    assert [(e["action"], e["participant"], e["reason"]) for e in entries] == [
        ("consent_read", None, "list: 1 consents of 1 people"),
        ("consent_read", None, "list json: 1 consents of 1 people"),
    ]
    assert all(e["actor"].startswith("cli:") and e["role"] == "administrator" for e in entries)
    _no_number(entries)


def test_reads_name_whom_they_were_made_for(
    caseload: Hub, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reception sharing one operating-system account names the caseworker reading.
    monkeypatch.setattr("getpass.getuser", lambda: "reception")
    before = len(ledger(caseload.db))
    for args in (
        ("show", "--pnr", PNR),
        ("export", "--pnr", PNR, "--format", "receipt"),
        ("list",),
    ):
        assert cli("consent", *args, "--actor", "anna.kommun").code == 0
    entries = ledger(caseload.db)[before:]
    assert [e["actor"] for e in entries] == ["anna.kommun via cli:reception"] * 3


def test_looking_up_the_consents_of_an_unknown_number_is_logged_too(
    caseload: Hub, cli: Any
) -> None:
    before = len(ledger(caseload.db))
    for args in (("show",), ("export", "--format", "receipt")):
        missing = cli("consent", args[0], "--pnr", STRANGER, *args[1:])
        assert missing.code == 1 and STRANGER not in missing.err + missing.out
    entries = ledger(caseload.db)[before:]
    assert [(e["action"], e["outcome"], e["reason"]) for e in entries] == [
        ("consent_read", "minor_failure", "not_a_participant"),
    ] * 2
    assert {e["participant"] for e in entries} == {caseload.keys.pseudonym(STRANGER)}
    _no_number(entries)


def test_a_log_search_finds_the_reads_of_one_person(caseload: Hub, cli: Any) -> None:
    assert cli("consent", "show", "--pnr", PNR).code == 0
    found = cli("log", "search", "--pnr", PNR, "--action", "consent_read", "--format", "jsonl")
    assert found.code == 0, found.err
    (line,) = found.out.splitlines()
    assert json.loads(line)["reason"] == "show: 1 consents"
