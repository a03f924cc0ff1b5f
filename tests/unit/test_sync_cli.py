"""`evi sync`, `evi sync history`, `evi transfers …` as an administrator runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hub.settings import get_settings


def test_sync_prints_the_report_and_history_remembers_it(cli, demo_home: Path) -> None:
    result = cli("sync", "--sandbox")
    assert result.code == 0, result.err
    when, table = result.out.splitlines()[0], result.out.splitlines()[1:]
    # a nightly log (`evi sync >> sync.log`) says when each run was, in UTC
    assert re.fullmatch(r"sync started \S+Z, finished \S+Z", when), when
    header = table[0].split()
    assert header[:4] == ["connector", "status", "pulled", "stored"]
    assert {
        "refused",
        "unmapped",
        "queued",
        "delivered",
        "denied",
        "retried",
        "dead_lettered",
    } <= set(header)
    # the first night registers the people whose consent names each authority
    registered = re.findall(
        r"^(\w+): registered (\d+) and cancelled 0 people at the authority$", result.out, re.M
    )
    assert {name for name, _ in registered} == {"af", "fk", "kommun", "region"}
    assert all(int(n) > 0 for _, n in registered)
    plain = cli("sync", "history").out.splitlines()
    assert plain and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in plain)
    history = cli("sync", "history", "--json")
    rows = json.loads(history.out)
    assert {r["connector"] for r in rows} == {"af", "fk", "kommun", "region"}
    assert all(r["status"] == "ok" and r["counts"]["pulled"] >= 0 for r in rows)
    listing = json.loads(cli("connectors", "list", "--json").out)
    assert all(c["last_sync"] and c["status"] == "ok" for c in listing)


def test_dry_run_from_the_command_line_says_nothing_changed(cli, demo_home: Path) -> None:
    result = cli("sync", "--sandbox", "--dry-run")
    assert result.code == 0, result.err
    assert "would register" in result.out
    assert "dry run: nothing was stored, queued, sent or logged" in result.out
    assert json.loads(cli("sync", "history", "--json").out) == []


def test_from_start_reads_everything_again_and_sends_nothing_twice(cli, demo_home: Path) -> None:
    assert cli("sync", "--sandbox").code == 0
    again = cli("sync", "--sandbox", "--from-start", "--json")
    assert again.code == 0, again.err
    report = json.loads(again.out)["connectors"]
    assert sum(r["pulled"] for r in report) > 0
    assert sum(r["queued"] + r["delivered"] for r in report) == 0


def test_naming_a_disabled_connector_is_a_configuration_error(cli, demo_home: Path) -> None:
    assert cli("connectors", "disable", "af").code == 0
    result = cli("sync", "--sandbox", "--connector", "af")
    assert result.code == 2
    assert "evi connectors enable af" in result.err


def test_naming_a_connector_that_is_not_installed_is_a_configuration_error(
    cli, demo_home: Path
) -> None:
    result = cli("sync", "--sandbox", "--connector", "kommunen")
    assert result.code == 2
    assert "no connector named 'kommunen'" in result.err
    assert "installed: af, fk, kommun, region" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--connector", "fk", "--since", ""), "--since: give the cursor to start from"),
        (("--connector", "fk", "--since", "x", "--from-start"), "--since CURSOR or --from-start"),
        (("--since", "2026-01-01T00:00:00Z"), "a cursor is one connector's; name that connector"),
        (("--connector", "af", "--connector", "fk", "--since", "x"), "--connector NAME --since"),
    ],
)
def test_a_since_that_cannot_be_used_is_refused_before_the_run(
    cli, demo_home: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli("sync", "--sandbox", *args)
    assert result.code == 2, result.err
    assert message in result.err and result.out == ""
    assert json.loads(cli("sync", "history", "--json").out) == []  # no run, nothing paused


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("fk", "the cursor (the stored one, or the one given with --since)"),
        # af's cursor is opaque: only Arbetsförmedlingen can refuse it (HTTP 400)
        ("af", "Arbetsförmedlingen refused the cursor (the stored one, or the one given"),
    ],
)
def test_a_mistyped_since_is_answered_on_the_spot_and_never_pauses_the_connector(
    cli, demo_home: Path, name: str, said: str
) -> None:
    for _ in range(4):  # more than the failed nights that pause a connector (3)
        result = cli("sync", "--sandbox", "--connector", name, "--since", "yesterday")
        assert result.code == 2, result.err
        assert said in " ".join(result.out.split())
    rows = {r["name"]: r for r in json.loads(cli("connectors", "list", "--json").out)}
    assert not rows[name]["paused"]
    runs = json.loads(cli("sync", "history", "--json").out)
    assert [r["status"] for r in runs] == ["config_error"] * 4  # each run still in history
    assert cli("sync", "--sandbox", "--connector", name).code == 0  # the night goes on


def test_an_origin_the_log_was_not_signed_as_is_refused_before_the_night_starts(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("sync", "--sandbox").code == 0  # signs the night's checkpoint
    runs = cli("sync", "history", "--json").out
    monkeypatch.setenv("EVI_LEDGER__ORIGIN", "kommun.example/evi")
    get_settings.cache_clear()
    for command in (("sync", "--sandbox"), ("worker", "--once")):
        refused = cli(*command)
        assert refused.code == 2, refused.err
        assert "signed as 'evi-hub.example/ledger'" in refused.err
        assert cli("sync", "history", "--json").out == runs  # no run began: nothing pulled


def test_a_routing_rule_to_a_party_there_is_not_is_refused_before_the_night_starts(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = cli("sync", "history", "--json").out
    (demo_home / "evi.toml").write_text(
        '[[routing]]\nkinds = ["referral"]\nto = ["team"]\n\n'
        '[[routing]]\nkinds = ["closure"]\nto = ["fkk"]\n'
    )
    monkeypatch.setenv("EVI_CONFIG", str(demo_home / "evi.toml"))
    get_settings.cache_clear()
    for args in ((), ("--dry-run",)):
        refused = cli("sync", "--sandbox", *args)
        assert refused.code == 2, refused.err
        assert "routing rule 2 (closure): to 'fkk' is neither a party of this hub" in refused.err
        assert "kommun, af, fk, region, team, referring_party, case_parties" in refused.err
    assert cli("sync", "history", "--json").out == runs  # nothing began


def test_history_of_a_connector_that_is_not_there_says_which_are(cli, demo_home: Path) -> None:
    for name in ("kommunen", "FK", ""):
        result = cli("sync", "history", "--connector", name)
        assert result.code == 2, (name, result.err)
        assert f"--connector {name!r}: no connector of that name" in result.err
        assert "installed: af, fk, kommun, region" in result.err
    assert cli("sync", "--sandbox", "--connector", "fk").code == 0
    assert [
        r["connector"] for r in json.loads(cli("sync", "history", "-c", "fk", "--json").out)
    ] == ["fk"]


def test_a_demo_home_synced_without_sandbox_says_how_at_once(cli, demo_home: Path) -> None:
    result = cli("sync")  # the demo's connectors live in-process: only --sandbox reaches them
    assert result.code == 2
    lines = [line for line in result.out.splitlines() if line.startswith("af: ")]
    assert lines == [
        "af: base_url http://af.sandbox.invalid never resolves (.invalid): `evi demo` sets "
        "such addresses for its in-process sandboxes, which only `evi sync --sandbox` and "
        "`evi demo` reach; to reach the authority: `evi connectors configure af --set "
        "base_url=https://…`"
    ]
    rows = json.loads(cli("sync", "history", "--json").out)
    assert {r["status"] for r in rows} == {"config_error"}
    assert all(r["counts"]["pulled"] == 0 for r in rows)


def test_failed_transfers_are_listed_with_a_reason_and_can_be_retried(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("sync", "--sandbox", "--queue-only").code == 0
    # fk refuses every push: its items become dead letters after one attempt
    from sync_support import knobs

    from hub.context import open_hub
    from hub.demo.run import demo_sandboxes

    monkeypatch.setenv("EVI_SYNC__MAX_ATTEMPTS", "1")
    hub = open_hub(get_settings())
    knobs(demo_sandboxes(hub)["fk"], fail_rate=1.0)
    result = cli("sync", "--sandbox", "--connector", "fk")
    assert result.code == 1
    failed = json.loads(cli("transfers", "failed", "--json").out)
    assert failed and all(f["recipient"] == "fk" and "gave up" in f["reason"] for f in failed)
    assert all(f["participant"].startswith("p-") for f in failed)
    knobs(demo_sandboxes(hub)["fk"], fail_rate=0.0)
    retried = cli("transfers", "retry", "--all")
    assert retried.code == 0
    assert f"{len(failed)} transfer(s) queued again" in retried.err
    assert cli("sync", "--sandbox", "--connector", "fk").code == 0
    assert json.loads(cli("transfers", "failed", "--json").out) == []
    hub.close()


def test_retrying_an_unknown_transfer_names_it(cli, demo_home: Path) -> None:
    result = cli("transfers", "retry", "999999")
    assert result.code == 1
    assert "no dead letter with id 999999" in result.err
    assert cli("transfers", "retry").code == 2


def test_a_worker_leaves_out_a_connector_it_cannot_build_and_serves_the_rest(
    cli, demo_home: Path
) -> None:
    # af points at a real (if silent) address; the other three keep the demo's in-process
    # placeholders, which a worker cannot reach
    assert cli("connectors", "configure", "af", "--set", "base_url=http://127.0.0.1:9").code == 0
    result = cli("worker", "--once")
    assert result.code == 0, result.err
    warned = [line for line in result.err.splitlines() if line.startswith("warning: ")]
    assert [line.split(":")[1].strip() for line in warned] == ["fk", "kommun", "region"]
    assert all("its transfers wait until this is fixed" in line for line in warned)
    assert "worker stopped; 0 transfers delivered" in result.err


def test_a_worker_that_can_build_no_connector_says_why(cli, demo_home: Path) -> None:
    result = cli("worker", "--once")
    assert result.code == 2
    assert "only `evi sync --sandbox` and `evi demo` reach" in result.err


def test_a_running_worker_follows_connector_changes_and_waits_out_a_database_outage(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading
    from datetime import timedelta

    from hub.commands import sync as sync_command
    from hub.context import open_hub
    from hub.errors import StorageError

    # af and kommun point at a real (if silent) address, so a worker can build them
    for name in ("af", "kommun"):
        assert (
            cli("connectors", "configure", name, "--set", "base_url=http://127.0.0.1:9").code == 0
        )
    for name in ("fk", "region"):
        assert cli("connectors", "disable", name).code == 0
    served: list[list[str]] = []
    away = {"rounds": 0}
    stop = threading.Event()

    class Recording:
        def __init__(self, hub: object, connectors: dict[str, object], **kwargs: object) -> None:
            self.connectors = sorted(connectors)

        def run(self) -> dict[str, object]:
            if away["rounds"]:
                away["rounds"] -= 1
                raise StorageError("lost the connection to the database server")
            served.append(self.connectors)
            if len(served) == 2:
                assert cli("connectors", "disable", "af").code == 0  # as an administrator does
            if len(served) == 4:
                away["rounds"] = 2
            if len(served) == 5:
                stop.set()
            return {}

    monkeypatch.setattr(sync_command, "Deliverer", Recording)
    monkeypatch.setattr(sync_command, "_MAX_AWAY_WAIT", 0.05)
    hub = open_hub()
    try:
        sync_command.serve(hub, stop, once=False, poll=0.01, lease=timedelta(seconds=60))
    finally:
        hub.close()
    assert served[:2] == [["af", "kommun"], ["af", "kommun"]]
    assert served[2:] == [["kommun"], ["kommun"], ["kommun"]]  # af disabled while running
    err = capsys.readouterr().err
    assert "connectors changed; worker serves: kommun" in err
    assert err.count("warning: lost the connection to the database server; the worker tries") == 2
    assert "run the command again" not in err  # the one-shot command's advice
    assert err.count("the database answers again; the worker goes on") == 1


def _serve_rounds(
    monkeypatch: pytest.MonkeyPatch, between: Any, *, delivered: int = 0, at_most: int = 5
) -> tuple[int, list[int]]:
    """Run a worker whose every round delivers ``delivered`` transfers to af, calling
    ``between(round)`` after each, for at most ``at_most`` rounds (a worker that should
    have stopped by then ends there, and its test fails); returns how many it delivered
    and the rounds run."""
    import threading
    from datetime import timedelta

    from hub.commands import sync as sync_command
    from hub.context import open_hub
    from hub.sync.delivery import DeliveryCounts

    rounds: list[int] = []
    stop = threading.Event()

    class Counting:
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            pass

        def run(self) -> dict[str, DeliveryCounts]:
            rounds.append(len(rounds))
            between(len(rounds))
            if len(rounds) == at_most:
                stop.set()
            return {"af": DeliveryCounts(delivered=delivered)}

    monkeypatch.setattr(sync_command, "Deliverer", Counting)
    monkeypatch.setattr(sync_command, "new_checkpoint", lambda _hub: None)
    hub = open_hub()
    try:
        done = sync_command.serve(hub, stop, once=False, poll=0.01, lease=timedelta(seconds=60))
    finally:
        hub.close()
    return done, rounds


def _execute(statement: str) -> None:
    """Change the database behind a running worker's back, as another program would."""
    from sqlalchemy import text

    from hub.context import open_hub

    hub = open_hub()
    with hub.db.session() as session:
        session.execute(text(statement))
    hub.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # it could no longer open the connector secrets the rotation re-encrypted
        ("rotate", "the key 'connector-secrets' was rotated"),
        # a newer release upgraded the database meanwhile
        ("UPDATE alembic_version SET version_num = '0099'", "newer than this installation"),
        # restored from a backup: it would log over a history now lost
        ("UPDATE ledger_head SET size = size - 1", r"the transfer log went from \d+ to \d+"),
    ],
    ids=["key rotated", "schema upgraded", "log restored"],
)
def test_a_running_worker_stops_when_the_database_moves_on_under_it(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch, change: str, message: str
) -> None:
    # exit 2 lets systemd's Restart= start it afresh with what is current
    from hub.errors import ConfigError

    assert cli("connectors", "configure", "af", "--set", "base_url=http://127.0.0.1:9").code == 0

    def meanwhile(round_: int) -> None:
        if round_ == 2 and change == "rotate":
            assert cli("keys", "rotate", "connector-secrets", "--yes").code == 0
        elif round_ == 2:
            _execute(change)

    with pytest.raises(ConfigError, match=message) as raised:
        _serve_rounds(monkeypatch, meanwhile)
    assert raised.value.message.endswith("the worker stops: start it again")


def test_a_worker_says_what_each_round_delivered(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("connectors", "configure", "af", "--set", "base_url=http://127.0.0.1:9").code == 0
    done, rounds = _serve_rounds(monkeypatch, lambda _round: None, delivered=3, at_most=2)
    assert (done, len(rounds)) == (6, 2)
    assert capsys.readouterr().err.count("delivered 3 (af 3)") == 2


def test_a_worker_names_the_enabled_connectors_the_plugins_leave_out(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("connectors", "configure", "af", "--set", "base_url=http://127.0.0.1:9").code == 0
    monkeypatch.setenv("EVI_PLUGINS", "af,evidence-paper,evidence-signature,witness-directory")
    result = cli("worker", "--once")
    assert result.code == 0, result.err
    assert (
        "warning: enabled but not loaded, so not served: fk, kommun, region (left out by "
        "EVI_PLUGINS, or not installed); their transfers wait"
    ) in result.err


def test_a_connector_the_plugins_leave_out_is_named_as_not_synced(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "EVI_PLUGINS", "kommun,af,evidence-paper,evidence-signature,witness-directory"
    )
    result = cli("sync", "--sandbox")
    assert result.code == 0, result.err
    assert "enabled but not loaded, so not synced: fk, region (left out by EVI_PLUGINS" in (
        result.err
    )
    ran = {line.split()[0] for line in result.out.splitlines()[2:] if line.strip()}
    assert {"af", "kommun"} <= ran and not {"fk", "region"} & ran


def test_an_identity_number_typed_as_a_transfer_id_or_limit_is_not_repeated(
    cli, demo_home: Path
) -> None:
    """Before: "no dead letter with id 199001012385" and "--limit 199001012385: …" (seen
    fuzzing the web API, which answers with the same messages)."""
    number = "199001012385"  # a Skatteverket test number, pasted where an id goes
    retried = cli("transfers", "retry", "999999", number)
    assert retried.code == 1 and number not in retried.err
    assert "no dead letter with id 999999 (and 1 shaped like identity numbers)" in retried.err
    listed = cli("transfers", "failed", "--limit", number)
    assert listed.code == 2 and number not in listed.err and "--limit: a page holds" in listed.err


def test_ids_no_transfer_can_have_are_not_found_not_a_database_error(cli, demo_home: Path) -> None:
    """Before, on PostgreSQL: an id beyond the integer column was an internal error
    (DataError), in `evi transfers retry` and as `--after` of `evi transfers failed`."""
    for huge in ("2147483648", "9223372036854775807"):
        retried = cli("transfers", "retry", huge)
        assert retried.code == 1 and "no dead letter with" in retried.err, retried.err
        listed = cli("transfers", "failed", "--after", huge)
        assert listed.code == 0 and "internal error" not in listed.err, listed.err


def test_a_run_the_database_stops_half_way_says_what_stays(
    cli, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarting while `evi sync` delivers, after the night's records were
    stored and queued. Before: "…; nothing of this one was kept", which the operator reads
    as a night to run again from scratch; what it stored stays, and the history says so."""
    from hub.errors import StorageError
    from hub.sync.delivery import Deliverer

    def restarted(_self: Deliverer) -> Any:
        raise StorageError(
            "lost the connection to the database server; check that it is running and run "
            "the command again; nothing of this one was kept"
        )

    monkeypatch.setattr(Deliverer, "run", restarted)
    result = cli("sync", "--sandbox")
    assert result.code == 1
    said = result.err.splitlines()[-1]  # after the progress lines
    assert said.startswith("error: lost the connection to the database server; the run")
    assert "nothing of this one was kept" not in said
    assert "what it had stored, delivered and logged stays" in said
    rows = json.loads(cli("sync", "history", "--json").out)
    assert {r["status"] for r in rows} == {"failed"}
    assert sum(r["counts"]["stored"] for r in rows) > 0  # stored, as it says
