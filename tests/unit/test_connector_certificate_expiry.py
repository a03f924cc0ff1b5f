"""A client certificate about to expire is warned about before the night it stops its
connector: `evi connectors list` and `check`, `evi sync` and `evi worker` say so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tls_support import client_certificate

from hub.connector.expiry import CertificateNotice, expiring
from hub.connector.service import certificate_warnings, connector_status
from hub.context import open_hub
from hub.settings import get_settings

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_only_certificates_within_the_warning_period_are_named() -> None:
    statuses = [
        ("fk", NOW + timedelta(days=9, hours=2)),
        ("region", NOW + timedelta(days=31)),
        ("kommun", None),
        ("af", NOW - timedelta(days=1)),
    ]
    notices = expiring(statuses, now=NOW, within_days=30)
    assert [n.connector for n in notices] == ["fk", "af"]
    assert expiring(statuses, now=NOW, within_days=0) == []


def test_the_warning_says_when_and_how_to_renew() -> None:
    soon = CertificateNotice("fk", NOW + timedelta(days=9, hours=2)).message(NOW)
    assert "fk: its client certificate expires on 2026-12-14 14:00 UTC (in 9 days)" in soon
    assert "evi connectors configure fk --set client_cert=PATH --set client_key=PATH" in soon
    today = CertificateNotice("fk", NOW + timedelta(hours=3)).message(NOW)
    assert "(within a day)" in today
    one = CertificateNotice("fk", NOW + timedelta(days=1, hours=3)).message(NOW)
    assert "(in 1 day)" in one
    gone = CertificateNotice("fk", NOW - timedelta(days=2)).message(NOW)
    assert "expired on 2026-12-03 12:00 UTC and the authority cannot be reached" in gone


def _install(cli, tmp_path: Path, name: str, valid_for: timedelta) -> datetime:
    """Give connector ``name`` a client certificate that expires ``valid_for`` from now."""
    until = (datetime.now(UTC) + valid_for).replace(microsecond=0)
    folder = tmp_path / name
    folder.mkdir()
    cert, key = client_certificate(folder, until)
    done = cli(
        "connectors",
        "configure",
        name,
        "--set",
        f"client_cert={cert}",
        "--set",
        f"client_key={key}",
    )
    assert done.code == 0, done.err
    return until


def test_list_and_check_warn_about_a_certificate_that_expires_soon(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    until = _install(cli, tmp_path, "fk", timedelta(days=10, hours=1))
    listing = cli("connectors", "list")
    assert listing.code == 0, listing.err
    assert (
        f"warning: fk: its client certificate expires on {until:%Y-%m-%d %H:%M} UTC (in 10 days)"
        in listing.err
    )
    # the demo's own sandbox certificates run for a year: nothing to say about region
    assert "region" not in listing.err
    rows = {row["name"]: row for row in json.loads(cli("connectors", "list", "--json").out)}
    assert rows["fk"]["client_cert_expires"] == until.isoformat()
    assert rows["region"]["client_cert_expires"] is not None
    assert rows["kommun"]["client_cert_expires"] is None  # a token, no certificate


def test_check_warns_about_the_connector_it_checks_even_when_disabled(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    # `evi connectors check NAME` prints these lines after its verdict; a connector is
    # often checked before it is enabled
    _install(cli, tmp_path, "fk", timedelta(days=5, hours=1))
    assert cli("connectors", "disable", "fk").code == 0
    hub = open_hub(get_settings())
    status = connector_status(hub, "fk")
    assert certificate_warnings(hub, [status]) == []
    (line,) = certificate_warnings(hub, [status], enabled_only=False)
    assert line.startswith("fk: its client certificate expires on") and "(in 5 days)" in line


def test_sync_warns_and_still_runs_while_the_certificate_is_valid(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    _install(cli, tmp_path, "region", timedelta(days=3))
    result = cli("sync", "--sandbox", "--connector", "region")
    assert result.code == 0, result.err
    assert "warning: region: its client certificate expires on" in result.err
    assert "(in 2 days)" in result.err or "(in 3 days)" in result.err
    quiet = cli("sync", "--sandbox", "--connector", "kommun")
    assert "client certificate" not in quiet.err


def test_the_warning_period_is_configurable_and_zero_turns_it_off(
    cli, demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(cli, tmp_path, "fk", timedelta(days=45))
    assert "client certificate" not in cli("connectors", "list").err  # default: 30 days
    monkeypatch.setenv("EVI_SYNC__CERTIFICATE_WARNING_DAYS", "60")
    assert "warning: fk: its client certificate expires" in cli("connectors", "list").err
    monkeypatch.setenv("EVI_SYNC__CERTIFICATE_WARNING_DAYS", "0")
    assert "client certificate" not in cli("connectors", "list").err


def test_a_disabled_connector_is_not_warned_about_in_the_list(
    cli, demo_home: Path, tmp_path: Path
) -> None:
    _install(cli, tmp_path, "fk", timedelta(days=5))
    assert cli("connectors", "disable", "fk").code == 0
    assert "client certificate" not in cli("connectors", "list").err
