"""After the database is restored from a backup, the witness copies it no longer matches
are recorded as superseded (`evi log restored --yes`, logged), not failed on for ever;
until then the nightly sync and the workers refuse to write over the lost history."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

NUMBER = "199001012385"


@pytest.fixture
def witnessed_home(cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVI_LEDGER__WITNESS_DIR", "witness")
    result = cli("demo", "--seed", "3", "--population", "40")
    assert result.code == 0, result.err
    return evi_home


def _restore(home: Path, backup: Path) -> None:
    """Put ``backup`` in place of the live SQLite file, as an operator restores one."""
    for suffix in ("-wal", "-shm"):
        (home / f"evi.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, home / "evi.db")


def test_a_restore_is_refused_by_the_nightly_job_until_it_is_recorded(
    cli, witnessed_home: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "nightly.db"
    assert cli("db", "backup", str(backup)).code == 0
    # the hub goes on after the backup: a look-up and a checkpoint the witness keeps
    cli("consent", "show", "--pnr", NUMBER)
    assert cli("log", "checkpoint", "--new").code == 0
    newest = sorted((witnessed_home / "witness").iterdir())[-1].name

    _restore(witnessed_home, backup)

    broken = cli("log", "verify")
    assert broken.code == 4 and "the ledger was truncated" in broken.out
    refused = cli("sync", "--sandbox")
    assert refused.code == 2
    assert f"witness copy {newest}" in refused.err and "evi log restored --yes" in refused.err
    worker = cli("worker", "--once")
    assert worker.code == 2 and f"witness copy {newest}" in worker.err
    for _ in range(3):  # the restored hub writes on (look-ups), past the copy's size
        cli("consent", "show", "--pnr", NUMBER)
    grown = cli("sync", "--sandbox")
    assert grown.code == 2 and f"no longer gives the root of witness copy {newest}" in grown.err

    asked = cli("log", "restored")
    assert asked.code == 2 and newest in asked.err and "rerun with --yes" in asked.err
    done = cli("log", "restored", "--yes", "--actor", "olle.drift")
    assert done.code == 0, done.err
    assert f"1 witness copies superseded ({newest})" in done.err

    verified = cli("log", "verify")
    assert verified.code == 0, verified.out + verified.err
    assert f"superseded witness copy {newest}: by the restore recorded at entry" in verified.out
    as_json = json.loads(cli("log", "verify", "--json").out)
    assert [c["name"] for c in as_json["superseded_witness_copies"]] == [newest]
    entries = cli("log", "search", "--action", "log_restored", "--format", "jsonl").out
    (entry,) = [json.loads(line) for line in entries.splitlines()]
    assert newest in entry["reason"] and entry["actor"].startswith("olle.drift via cli:")

    # the hub goes on: the night runs, writes over the sizes the lost copies covered, and
    # the log still verifies against every copy it has not superseded
    night = cli("sync", "--sandbox")
    assert night.code == 0, night.err
    assert cli("log", "verify").code == 0
    assert cli("log", "restored").err.startswith("nothing to record")


def test_an_acknowledgment_must_name_a_restore_entry(
    cli, witnessed_home: Path, tmp_path: Path
) -> None:
    from sqlalchemy import text

    from hub.context import open_hub
    from hub.settings import get_settings

    name = sorted((witnessed_home / "witness").iterdir())[0].name
    get_settings.cache_clear()
    hub = open_hub()
    with hub.db.session() as session:  # someone hides a copy by hand
        session.execute(
            text("INSERT INTO hub_meta (key, value) VALUES (:key, '0')"),
            {"key": f"witness_superseded:{name}"},
        )
    hub.close()
    result = cli("log", "verify")
    assert result.code == 4
    assert f"witness copy {name} is recorded as superseded by entry 0, which is no" in result.out
