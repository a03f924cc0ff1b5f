"""`evi connectors`, `evi plugins`, `evi sandbox`: one clear line on error, no secret shown."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.context import Hub

TOKEN = "kommun-sandbox-token"
Cli = Callable[..., Any]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def one_line_error(result: Any) -> str:
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("error: ") and "Traceback" not in result.err
    return str(result.err)


def test_list_json_has_the_stable_fields(cli: Cli, hub: Hub) -> None:
    assert cli("connectors", "enable", "region").code == 0
    result = cli("connectors", "list", "--json")
    assert result.code == 0, result.err
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert sorted(rows) == ["af", "fk", "kommun", "region"]
    assert rows["region"]["enabled"] is True and rows["kommun"]["enabled"] is False
    for row in rows.values():
        assert {"name", "authority", "enabled", "version", "last_sync", "status"} <= set(row)


def test_list_as_a_table(cli: Cli, hub: Hub) -> None:
    cli("connectors", "enable", "af")
    lines = cli("connectors", "list").out.splitlines()
    assert lines[0].split() == ["NAME", "AUTHORITY", "VERSION", "ENABLED", "LAST", "SYNC", "STATUS"]
    af = next(line for line in lines if line.startswith("af "))
    assert "Arbetsförmedlingen" in af and "yes" in af and "never" in af


def test_configure_masks_the_secret_everywhere(cli: Cli, hub: Hub) -> None:
    result = cli(
        "connectors",
        "configure",
        "kommun",
        "--set",
        f"token={TOKEN}",
        "--set",
        "base_url=http://kommun.example/",
    )
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"base_url": "http://kommun.example", "token": "**********"}
    shown = cli("connectors", "show", "kommun")
    assert json.loads(shown.out)["options"]["token"] == "**********"
    assert all(TOKEN not in text for text in (result.out, result.err, shown.out, shown.err))
    # typed on the command line, the secret is in the process list and the shell history
    assert "warning: kommun option 'token' is a secret given on the command line" in result.err
    assert "--secret-from-env token=ENV_VAR" in result.err


def test_a_secret_can_come_from_the_environment(
    cli: Cli, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AF_SECRET", "from-the-environment")
    result = cli("connectors", "configure", "af", "--secret-from-env", "client_secret=AF_SECRET")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"client_secret": "**********"}
    missing = cli("connectors", "configure", "af", "--secret-from-env", "client_secret=NOPE")
    assert missing.code == 2 and "NOPE" not in missing.err


def test_an_unknown_option_is_one_line_and_changes_nothing(cli: Cli, hub: Hub) -> None:
    result = cli("connectors", "configure", "kommun", "--set", "tokn=abc", "--set", "page_size=5")
    assert result.code == 2
    assert "kommun has no option 'tokn'" in one_line_error(result)
    assert json.loads(cli("connectors", "show", "kommun").out)["options"] == {}


def test_a_bad_value_names_the_option_but_not_the_value(cli: Cli, hub: Hub) -> None:
    result = cli("connectors", "configure", "kommun", "--set", "page_size=9999")
    assert result.code == 2
    assert "'page_size': Input should be less than or equal to 500" in one_line_error(result)


def test_spec_marks_secrets_write_only(cli: Cli, hub: Hub) -> None:
    schema = json.loads(cli("connectors", "spec", "af").out)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["client_secret"]["writeOnly"] is True
    assert set(schema["required"]) == {"base_url", "client_id", "client_secret"}


def test_check_with_missing_options_says_what_to_run(cli: Cli, hub: Hub) -> None:
    result = cli("connectors", "check", "kommun")
    assert result.code == 2
    wanted = "evi connectors configure kommun --set base_url=… --secret-from-env token=ENV_VAR"
    assert wanted in one_line_error(result)


def test_check_with_the_authority_down_is_one_line_exit_75_without_the_secret(
    cli: Cli, hub: Hub, closed_port: int
) -> None:
    cli(
        "connectors",
        "configure",
        "kommun",
        "--set",
        f"token={TOKEN}",
        "--set",
        f"base_url=http://127.0.0.1:{closed_port}",
    )
    result = cli("connectors", "check", "kommun")
    assert result.code == 75
    line = one_line_error(result)
    assert f"cannot reach http://127.0.0.1:{closed_port}" in line
    assert TOKEN not in result.out + result.err


def test_an_unknown_connector_is_named(cli: Cli, hub: Hub) -> None:
    result = cli("connectors", "enable", "csn")
    assert result.code == 1
    assert "no connector named 'csn'" in one_line_error(result)


def test_disable_takes_a_connector_out(cli: Cli, hub: Hub) -> None:
    cli("connectors", "enable", "fk")
    assert cli("connectors", "disable", "fk").err == "fk: disabled\n"
    rows = json.loads(cli("connectors", "list", "--json").out)
    assert not any(row["enabled"] for row in rows)


def test_plugins_list_shows_each_plugin_with_version_and_hooks(cli: Cli, evi_home: Path) -> None:
    rows = {row["name"]: row for row in json.loads(cli("plugins", "list", "--json").out)}
    for name in ("kommun", "af", "fk", "region"):
        assert rows[name]["hooks"] == ["evi_register_connectors"]
        assert rows[name]["source"] == "built-in" and rows[name]["version"]
    text = cli("plugins", "list").out
    assert any(line.startswith("kommun  built-in") for line in text.splitlines())


def test_sandbox_serve_refuses_a_taken_port_in_one_line(
    cli: Cli, evi_home: Path, taken_port: int
) -> None:
    result = cli("sandbox", "serve", "kommun", "--port", str(taken_port))
    assert result.code == 2
    assert f"port {taken_port} on 127.0.0.1 is in use" in one_line_error(result)


def test_sandbox_serve_refuses_an_impossible_population(
    cli: Cli, evi_home: Path, closed_port: int
) -> None:
    result = cli("sandbox", "serve", "af", "--port", str(closed_port), "--population", "99999")
    assert result.code == 2
    assert "population must be between 1 and 23966" in one_line_error(result)


def test_sandbox_connect_configures_the_test_credentials_without_showing_them(
    cli: Cli, hub: Hub
) -> None:
    result = cli("sandbox", "connect", "af", "--url", "http://127.0.0.1:8702/")
    assert result.code == 0, result.err
    assert json.loads(result.out)["client_secret"] == "**********"
    assert "af-sandbox-secret" not in result.out + result.err


# -- https over the network --------------------------------------------------------------


@pytest.mark.parametrize("name", ["fk", "region"])
def test_a_client_certificate_connector_on_plain_http_is_refused_even_locally(
    cli: Cli, hub: Hub, closed_port: int, name: str
) -> None:
    """Before: `check` went ahead over plain http, where the certificate is never shown
    (the review saw `ok` from a plain-http server)."""
    url = f"http://127.0.0.1:{closed_port}"
    assert cli("sandbox", "connect", name, "--url", url).code == 0
    result = cli("connectors", "check", name)
    assert result.code == 2
    assert one_line_error(result) == (
        f"error: {name}: base_url {url} is plain http, which cannot "
        f"carry the client certificate; set it with `evi connectors configure {name} "
        "--set base_url=https://…`\n"
    )


def test_a_bearer_token_is_not_sent_over_plain_http_to_another_machine(cli: Cli, hub: Hub) -> None:
    """Before: the token and the identity numbers went out unencrypted, without a word."""
    cli("connectors", "configure", "kommun", "--set", f"token={TOKEN}")
    cli("connectors", "configure", "kommun", "--set", "base_url=http://kommun.example")
    result = cli("connectors", "check", "kommun")
    assert result.code == 2
    line = one_line_error(result)
    assert "base_url http://kommun.example is plain http" in line
    assert "--set base_url=https://…" in line and TOKEN not in result.out + result.err


def test_an_oauth_token_url_on_plain_http_is_refused(cli: Cli, hub: Hub) -> None:
    cli("sandbox", "connect", "af", "--url", "https://af.example")
    cli("connectors", "configure", "af", "--set", "token_url=http://login.example/token")
    result = cli("connectors", "check", "af")
    assert result.code == 2
    assert "token_url http://login.example is plain http" in one_line_error(result)


def test_configuring_enabling_and_disabling_a_connector_is_logged_without_values(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where a connector sends personal data, and with which credentials, is on record.
    assert cli("db", "upgrade").code == 0
    monkeypatch.setenv("KOMMUN_TOKEN", "hemlig-token-123")
    assert (
        cli(
            "connectors", "configure", "kommun", "--set", "base_url=https://kommun.example",
            "--secret-from-env", "token=KOMMUN_TOKEN", "--actor", "ola.it",
        ).code
        == 0
    )  # fmt: skip
    assert cli("connectors", "enable", "kommun").code == 0
    assert cli("connectors", "disable", "kommun").code == 0
    assert cli("connectors", "configure", "kommun", "--unset", "token").code == 0
    found = cli("log", "search", "--action", "connector_changed", "--format", "jsonl")
    entries = [json.loads(line) for line in found.out.splitlines()]
    assert [e["reason"] for e in entries] == [
        "kommun: set base_url, token (secret)",
        "kommun: enabled",
        "kommun: disabled",
        "kommun: unset token",
    ]
    assert entries[0]["actor"].startswith("ola.it via cli:")
    assert {e["role"] for e in entries} == {"administrator"}
    assert {e["recipient"] for e in entries} == {"kommun"}
    assert "hemlig-token-123" not in found.out and "kommun.example" not in found.out


def test_an_empty_secret_is_refused_and_a_relative_path_is_kept_absolute(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cli("db", "upgrade").code == 0
    monkeypatch.setenv("EMPTY", "")
    for args in (("--set", "token="), ("--secret-from-env", "token=EMPTY")):
        refused = cli("connectors", "configure", "kommun", *args)
        assert refused.code == 2, refused.err
        assert "kommun option 'token' is empty" in refused.err
    # a nightly job runs from another directory than the administrator's shell
    monkeypatch.chdir(tmp_path)
    done = cli("connectors", "configure", "region", "--set", "client_cert=tls/client.pem")
    assert done.code == 0, done.err
    assert json.loads(done.out)["client_cert"] == str(tmp_path / "tls" / "client.pem")


def test_secret_from_env_mistakes_say_what_to_give(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    bare = cli("connectors", "configure", "kommun", "--secret-from-env", "token")
    assert bare.code == 2
    assert "each --secret-from-env takes KEY=ENV_VAR (for example" in bare.err
    unset = cli("connectors", "configure", "kommun", "--secret-from-env", "token=NO_SUCH_VAR_X")
    assert unset.code == 2
    assert "--secret-from-env token: the environment variable given is not set" in unset.err
    assert "NO_SUCH_VAR_X" not in unset.err  # it may be the secret itself, typed by mistake


def test_unmapped_lists_the_codes_the_mapping_does_not_know(cli, evi_home: Path, hub: Hub) -> None:
    from datetime import UTC, datetime

    from record_support import add_record

    from hub.model.identity import parse_identity
    from hub.store.participants import ParticipantRepository
    from tests.conftest import DATA

    number = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1]
    assert cli("connectors", "unmapped", "kommun").err.startswith("kommun: every stored")
    with hub.db.session() as session:
        person = ParticipantRepository(session, hub.keys).ensure(parse_identity(number))
        for i, codes in enumerate([["X1"], ["X1", "Y9"], [], ["X1"]]):
            add_record(
                session,
                person.id,
                origin="kommun" if i < 3 else "af",
                source_id=f"r{i}",
                kind="benefit",
                category="benefit",
                body={"kind": "benefit", "type": "unmapped"},
                at=datetime(2026, 11, 1 + i, tzinfo=UTC),
                unmapped=[{"field": "type", "code": c} for c in codes],
            )
    listed = cli("connectors", "unmapped", "kommun", "--json")
    assert listed.code == 0, listed.err
    assert [(c["field"], c["code"], c["records"]) for c in json.loads(listed.out)] == [
        ("type", "X1", 2),
        ("type", "Y9", 1),
    ]
    text = cli("connectors", "unmapped", "kommun").out
    assert "type" in text and "X1" in text and "2026-11-02T00:00:00Z" in text
    assert number not in text
    assert cli("connectors", "unmapped", "nosuch").code == 1  # not installed: says which are


def test_forget_only_counts_without_yes(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    counted = cli("connectors", "forget", "kommun")
    assert counted.code == 2
    assert "kommun: would forget 0 registration(s);" in counted.err
    assert "rerun with --yes" in counted.err
    assert cli("log", "search", "--action", "connector_changed", "--format", "jsonl").out == ""
    done = cli("connectors", "forget", "kommun", "--yes")
    assert done.code == 0 and "kommun: forgot 0 registration(s)" in done.err
    logged = cli("log", "search", "--action", "connector_changed", "--format", "jsonl").out
    assert "forgot its cursor and 0 registration(s) at the old address" in logged


def test_pointing_a_synced_connector_elsewhere_says_how_to_start_afresh_there(
    cli, demo_home: Path
) -> None:
    assert cli("sync", "--sandbox", "--connector", "kommun").code == 0
    moved = cli("connectors", "configure", "kommun", "--set", "base_url=http://127.0.0.1:9")
    assert moved.code == 0, moved.err
    (warning,) = [line for line in moved.err.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: kommun now points at another address (was ")
    assert " registration(s) and its cursor made at the old one" in warning
    assert "run `evi connectors forget kommun`" in warning
    same = cli("connectors", "configure", "kommun", "--set", "base_url=http://127.0.0.1:9")
    assert "warning:" not in same.err  # the same address again
    never = cli("connectors", "configure", "af", "--set", "base_url=http://127.0.0.1:9")
    assert "warning:" not in never.err  # never synced: nothing held from the old address
