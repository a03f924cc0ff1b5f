"""Who the transfer log says ran a CLI command: always the operating-system user
(`cli:<user>`); a name given with `--actor` is kept as on whose behalf (`NAME via
cli:<user>`), never in its place. One helper makes it: `hub.ledger.service.cli_actor`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_consent_support import EXAMPLES, ledger, skatteverket_numbers

from hub.context import open_hub
from hub.errors import InputError
from hub.ledger.service import cli_actor

COMMANDS = Path(__file__).parents[2] / "hub" / "commands"
PNR = "199001012385"  # the number in docs/examples/consent-paper.toml


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "root")


def test_the_log_names_who_ran_the_command_and_keeps_the_name_given_as_on_whose_behalf(
    root: None,
) -> None:
    assert cli_actor() == "cli:root"
    assert cli_actor("anna.af") == "anna.af via cli:root"
    assert cli_actor("steering:anna") == "steering:anna via cli:root"


def test_without_a_user_name_the_runner_is_unknown_not_whoever_was_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_user() -> str:
        raise KeyError("uid 1234")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert cli_actor() == "cli:unknown"
    assert cli_actor("anna.af") == "anna.af via cli:unknown"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "olle.dso via cli:alice",  # would read as if alice had run it
        "olle dso",
        "olle.dso\n",
        '=HYPERLINK("http://evil.example")',
        "-cmd",
        "x" * 49,
        skatteverket_numbers(1)[0],
        "900101-2385",
        "olle.900101-2385",
    ],
)
def test_a_name_that_is_not_one_is_refused_without_repeating_it(root: None, name: str) -> None:
    with pytest.raises(InputError) as refused:
        cli_actor(name)
    assert "--actor" in refused.value.message
    assert not name.strip() or name.strip() not in refused.value.message


def test_every_command_with_actor_has_it_made_by_the_one_helper() -> None:
    with_actor = {
        p.name: p.read_text() for p in COMMANDS.glob("*.py") if '"--actor"' in p.read_text()
    }
    assert {"consent.py", "keys.py", "participants.py", "stats.py", "users.py"} <= set(with_actor)
    for name, source in with_actor.items():
        assert source.count('"--actor"') == source.count("cli_actor(actor)"), name
        assert not re.search(r"actor\s+or\b|getpass", source), name


def test_a_consent_registered_for_someone_records_both_names(
    root: None, cli: Any, evi_home: Path
) -> None:
    assert cli("db", "upgrade").code == 0
    file = str(EXAMPLES / "consent-paper.toml")
    done = cli("consent", "register", "--file", file, "--actor", "anna.af")
    assert done.code == 0, done.err
    shown = cli("consent", "show", "--pnr", PNR, "--json")
    (consent,) = json.loads(shown.out)["consents"]
    assert consent["history"][0]["recorded_by"] == "anna.af via cli:root"
    opened = open_hub()
    try:
        entries = ledger(opened.db)
    finally:
        opened.close()
    registered = [e["actor"] for e in entries if e["action"] == "consent_registered"]
    assert registered == ["anna.af via cli:root"]

    refused = cli("consent", "withdraw", "--pnr", PNR, "--actor", "anna.af via cli:alice")
    assert refused.code == 2 and "--actor" in refused.err
    opened = open_hub()
    try:
        assert ledger(opened.db) == entries  # refused before anything was done or logged
    finally:
        opened.close()
