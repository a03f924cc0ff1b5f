"""`evi consent …` in-process: the interface other tools rely on, and clear refusals."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_consent_support import EXAMPLES, paper_fields, skatteverket_numbers

PNR = "199001012385"  # the number in docs/examples/consent-paper.toml (Skatteverket test)
(OTHER,) = skatteverket_numbers(1)
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
LIST_FIELDS = {
    "id",
    "version",
    "pnr",
    "participant",
    "status",
    "parties",
    "categories",
    "purposes",
    "valid_from",
    "valid_until",
    "withdrawn_at",
    "blocks",
}


@pytest.fixture
def registered(cli, evi_home: Path) -> str:
    assert cli("db", "upgrade").code == 0
    result = cli("consent", "register", "--file", str(EXAMPLES / "consent-paper.toml"))
    assert result.code == 0, result.err
    return result.out.strip()


def listed(cli) -> list[dict]:
    result = cli("consent", "list", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert isinstance(data, list)
    return data


def test_list_json_has_the_documented_fields(cli, registered: str) -> None:
    assert cli("consent", "block", "--pnr", PNR, "--category", "health").code == 0
    (entry,) = listed(cli)
    assert set(entry) >= LIST_FIELDS
    assert entry["id"] == registered and entry["version"] == 1
    assert entry["pnr"] == PNR
    assert re.fullmatch(r"p-[0-9a-f]{32}", entry["participant"])
    assert entry["status"] == "active" and entry["withdrawn_at"] is None
    assert entry["parties"] == ["af", "fk", "kommun", "team"]
    assert entry["purposes"] == ["coordination"]
    for key in ("valid_from", "valid_until"):
        assert RFC3339_UTC.match(entry[key]), entry[key]
    (block,) = entry["blocks"]
    assert (block["party"], block["category"], block["until"]) == (None, "health", None)
    assert RFC3339_UTC.match(block["from"])


def test_participant_is_the_pseudonym_the_ledger_uses(cli, registered: str) -> None:
    (entry,) = listed(cli)
    from hub.context import open_hub

    hub = open_hub()
    try:
        assert entry["participant"] == hub.keys.pseudonym(PNR)
    finally:
        hub.close()


def test_whole_withdrawal_shows_in_the_list(cli, registered: str) -> None:
    result = cli("consent", "withdraw", "--pnr", "900101-2385")
    assert result.code == 0, result.err
    assert "withdrew everything" in result.err
    (entry,) = listed(cli)
    assert entry["status"] == "withdrawn"
    assert RFC3339_UTC.match(entry["withdrawn_at"])
    again = cli("consent", "withdraw", "--pnr", PNR)
    assert again.code == 1 and "no consent in force" in again.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_number_can_come_from_stdin_or_a_hidden_prompt_not_the_command_line(
    cli, registered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On the command line a number is in every local user's `ps` and the shell's history.
    monkeypatch.setattr("sys.stdin", io.StringIO("19900101-2385\n"))
    piped = cli("consent", "show", "--pnr", "-", "--json")
    assert piped.code == 0, piped.err
    assert json.loads(piped.out)["consents"][0]["id"] == registered
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or PNR)
    typed = cli("consent", "withdraw", "--pnr", "-")
    assert typed.code == 0 and "withdrew everything" in typed.err
    assert asked == ["personnummer or samordningsnummer: "]
    (entry,) = listed(cli)
    assert entry["status"] == "withdrawn"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    empty = cli("consent", "show", "--pnr", "-")
    assert empty.code == 2 and "standard input, which had none" in empty.err


def test_partial_withdrawal_keeps_the_consent_active(cli, registered: str) -> None:
    result = cli("consent", "withdraw", "--pnr", PNR, "--party", "fk", "--category", "plan")
    assert result.code == 0, result.err
    (entry,) = listed(cli)
    assert entry["status"] == "active" and entry["withdrawn_at"] is None
    (withdrawal,) = entry["withdrawals"]
    assert (withdrawal["party"], withdrawal["category"]) == ("fk", "plan")


def test_block_and_unblock(cli, registered: str) -> None:
    until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    blocked = cli("consent", "block", "--pnr", PNR, "--party", "af", "--until", until)
    assert blocked.code == 0, blocked.err
    block_id = blocked.out.strip()
    lifted = cli("consent", "unblock", "--pnr", PNR, "--block", block_id)
    assert lifted.code == 0, lifted.err
    (block,) = listed(cli)[0]["blocks"]
    assert block["id"] == block_id
    assert datetime.fromisoformat(block["until"]) < datetime.fromisoformat(until)


def test_a_block_for_a_party_the_hub_does_not_have_is_refused(cli, registered: str) -> None:
    # A block is the person's "not to them": one recorded for a mistyped party would stop
    # nothing while everyone believed it in force.
    blocked = cli("consent", "block", "--pnr", PNR, "--party", "fkk")
    assert blocked.code == 2, blocked.err
    assert "--party fkk: not a party of this hub; one of kommun, af, fk, region, team" in (
        blocked.err
    )
    assert PNR not in blocked.err
    assert listed(cli)[0]["blocks"] == []  # nothing recorded
    assert cli("consent", "block", "--pnr", PNR, "--party", "fk").code == 0


def test_a_consent_naming_a_party_the_hub_does_not_have_is_refused(cli, evi_home: Path) -> None:
    # It would cover nothing for the party meant, and look right in every listing.
    path = evi_home / "c.json"
    path.write_text(json.dumps(paper_fields(PNR, parties=["kommun", "fkk", "team"])))
    assert cli("db", "upgrade").code == 0
    refused = cli("consent", "register", "--file", str(path))
    assert refused.code == 2, refused.err
    assert "parties: fkk is not a party of this hub; one of kommun, af, fk, region, team" in (
        refused.err
    )
    assert PNR not in refused.err
    assert listed(cli) == []


def test_show_says_a_withdrawal_an_amendment_came_after(
    cli, registered: str, evi_home: Path
) -> None:
    assert cli("consent", "withdraw", "--pnr", PNR, "--party", "fk").code == 0
    paper = (EXAMPLES / "consent-paper.toml").read_text()
    amendment = evi_home / "amendment.toml"
    amendment.write_text(paper.replace("\nparties =", f'\namends = "{registered}"\nparties =', 1))
    assert cli("consent", "register", "--file", str(amendment)).code == 0
    shown = cli("consent", "show", "--pnr", PNR).out
    assert "withdrawn party fk from " in shown and "(of v1 and before)" in shown


def test_a_consent_whose_period_has_ended_is_registered_with_a_note(cli, evi_home: Path) -> None:
    path = evi_home / "old.json"
    old = {"valid_from": "2024-01-01T00:00:00Z", "valid_until": "2025-01-01T00:00:00Z"}
    path.write_text(json.dumps(paper_fields(PNR, informed_at="2023-12-01T00:00:00Z", **old)))
    assert cli("db", "upgrade").code == 0
    result = cli("consent", "register", "--file", str(path))
    assert result.code == 0, result.err
    assert "note: its period ended 2025-01-01T00:00:00Z, before now" in result.err
    assert listed(cli)[0]["status"] == "expired"


def test_the_same_consent_registered_twice_is_refused_until_the_first_is_withdrawn(
    cli, registered: str
) -> None:
    # A double click or a file given twice would be listed, and withdrawn, twice.
    again = cli("consent", "register", "--file", str(EXAMPLES / "consent-paper.toml"))
    assert again.code == 2, again.err
    assert f"this consent is already registered: consent {registered} version 1" in again.err
    assert len(listed(cli)) == 1
    assert cli("consent", "withdraw", "--pnr", PNR).code == 0
    anew = cli("consent", "register", "--file", str(EXAMPLES / "consent-paper.toml"))
    assert anew.code == 0, anew.err  # given again after a withdrawal: a consent of its own
    assert len(listed(cli)) == 2


def test_show_accepts_any_written_form_of_the_number(cli, registered: str) -> None:
    for form in (PNR, "19900101-2385", "900101-2385", "9001012385"):
        result = cli("consent", "show", "--pnr", form)
        assert result.code == 0, (form, result.err)
        assert registered in result.out
    shown = json.loads(cli("consent", "show", "--pnr", PNR, "--json").out)
    assert shown["consents"][0]["history"][0]["evidence"] == "paper"


def test_an_invalid_number_is_refused_without_repeating_it(cli, registered: str) -> None:
    result = cli("consent", "show", "--pnr", "19900101-2384")
    assert result.code == 2
    assert result.err.startswith("error: --pnr: wrong check digit")
    assert "19900101" not in result.err


def test_an_unknown_person_is_not_found(cli, registered: str) -> None:
    result = cli("consent", "show", "--pnr", OTHER)
    assert result.code == 1
    assert "no consent or block is registered for this person" in result.err
    assert OTHER not in result.err


def test_bad_options_are_refused_and_change_nothing(cli, registered: str) -> None:
    assert cli("consent", "withdraw", "--pnr", PNR, "--party", "Försäkringskassan").code == 2
    assert cli("consent", "withdraw", "--pnr", PNR, "--category", "economy").code == 2
    assert cli("consent", "block", "--pnr", PNR, "--until", "2020-01-01T00:00:00Z").code == 2
    assert cli("consent", "block", "--pnr", PNR, "--until", "tomorrow").code == 2
    (entry,) = listed(cli)
    assert entry["withdrawals"] == [] and entry["blocks"] == []


def test_plain_list_shows_pseudonyms_not_numbers(cli, registered: str) -> None:
    result = cli("consent", "list")
    assert result.code == 0
    assert registered in result.out and PNR not in result.out


def test_a_protected_person_is_listed_without_number(cli, registered: str) -> None:
    from hub.context import open_hub
    from hub.model.identity import parse_identity
    from hub.store.participants import ParticipantRepository

    hub = open_hub()
    try:
        with hub.db.session() as session:
            ParticipantRepository(session, hub.keys).ensure(
                parse_identity(PNR), protected_identity=True
            )
    finally:
        hub.close()
    (entry,) = listed(cli)
    assert entry["pnr"] is None and entry["protected_identity"] is True
    assert PNR not in cli("consent", "list", "--json").out


def test_register_before_db_upgrade_says_what_to_do(cli, evi_home: Path) -> None:
    path = evi_home / "c.json"
    path.write_text(json.dumps(paper_fields(PNR)))
    result = cli("consent", "register", "--file", str(path))
    assert result.code == 1
    assert "run `evi db upgrade` first" in result.err


def test_docs_describe_every_reason_code_and_list_field() -> None:
    from hub.consent.gate import Reason

    text = (Path(__file__).parents[2] / "docs" / "consent.md").read_text()
    for reason in Reason:
        assert f"`{reason.value}`" in text, reason
    for key in LIST_FIELDS:
        assert f"`{key}`" in text, key
