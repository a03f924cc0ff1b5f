"""`evi demo` and production: the demo never lands on a real deployment's data, and
`environment = "production"` refuses what is only fit for a developer's machine."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub.settings import get_settings


@pytest.fixture
def real_kommun(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    configured = cli(
        "connectors", "configure", "kommun", "--set", "base_url=https://api.kommun.example"
    )
    assert configured.code == 0, configured.err


def kommun_options(cli) -> str:
    shown = cli("connectors", "show", "kommun")
    assert shown.code == 0, shown.err
    return shown.out


def tables(home: Path) -> list[str]:
    if not (home / "evi.db").exists():
        return []
    with sqlite3.connect(home / "evi.db") as db:
        return [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]


def test_the_demo_refuses_a_home_set_up_for_real_authorities(cli, real_kommun: None) -> None:
    refused = cli("demo", "--setup-only")
    assert refused.code == 2
    assert "set up for real authorities (kommun)" in refused.err
    assert "nothing was changed" in refused.err
    assert "https://api.kommun.example" in kommun_options(cli)
    listed = cli("consent", "list", "--json")
    assert listed.code == 0 and listed.out.strip() == "[]"


def test_the_demo_may_run_again_on_its_own_home(cli, evi_home: Path) -> None:
    assert cli("demo", "--setup-only", "--population", "20").code == 0
    again = cli("demo", "--setup-only", "--population", "20")
    assert again.code == 0, again.err


def test_production_refuses_the_example_ledger_origin(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_ENVIRONMENT", "production")
    refused = cli("db", "upgrade")
    assert refused.code == 2
    assert "EVI_LEDGER__ORIGIN" in refused.err and "cannot change later" in refused.err
    assert tables(evi_home) == []
    assert cli("config", "show").code == 0  # what is set can still be looked at
    monkeypatch.setenv("EVI_LEDGER__ORIGIN", "evi.kommun.example/ledger")
    get_settings.cache_clear()
    assert cli("db", "upgrade").code == 0


def test_production_refuses_a_log_without_a_minimum_retention(
    cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_ENVIRONMENT", "production")
    monkeypatch.setenv("EVI_LEDGER__ORIGIN", "evi.kommun.example/ledger")
    monkeypatch.setenv("EVI_LEDGER__MINIMUM_RETENTION_DAYS", "0")
    refused = cli("db", "upgrade")
    assert refused.code == 2
    assert "minimum_retention_days is 0" in refused.err
    assert "EVI_LEDGER__MINIMUM_RETENTION_DAYS" in refused.err
    assert tables(evi_home) == []
    monkeypatch.setenv("EVI_LEDGER__MINIMUM_RETENTION_DAYS", "90")  # shorter, but a floor
    get_settings.cache_clear()
    assert cli("db", "upgrade").code == 0


def test_production_refuses_the_demo(cli, evi_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVI_ENVIRONMENT", "production")
    monkeypatch.setenv("EVI_LEDGER__ORIGIN", "evi.kommun.example/ledger")
    refused = cli("demo", "--setup-only")
    assert refused.code == 2 and 'environment = "production"' in refused.err
    assert tables(evi_home) == []  # not even the schema


def test_a_setup_only_home_is_told_the_command_that_reaches_its_authorities() -> None:
    import httpx

    from connectors.af.connector import AfConnector
    from hub.demo.run import _next_step
    from hub.demo.sandboxes import SandboxTarget

    def target(url: str | None) -> SandboxTarget:
        transport = None if url else httpx.MockTransport(lambda _r: httpx.Response(200))
        return SandboxTarget("af", AfConnector, url or "http://af.sandbox.invalid", transport)

    in_process = {"af": target(None), "fk": target(None)}
    assert "run `evi sync --sandbox`" in _next_step(in_process)
    served = {"af": target("http://127.0.0.1:8001"), "fk": target("https://127.0.0.1:8002")}
    assert "run `evi sync` (or `evi demo` with the same --sandbox-url" in _next_step(served)
    mixed = {"af": target("http://127.0.0.1:8001"), "fk": target(None)}
    assert "run `evi demo` with the same --sandbox-url options" in _next_step(mixed)
    assert "would play af in-process too" in _next_step(mixed)
