"""Connector configuration on SQLite and PostgreSQL: secrets encrypted, all-or-nothing,
state for `evi connectors list`, sync results that pause a failing connector."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from hub.connector import ConnectorConfigError, InProcessTransport, SandboxSettings, service
from hub.connector.registry import get_connector
from hub.context import Hub
from hub.errors import InputError

TOKEN = "kommun-sandbox-token"
AT = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def raw_row(hub: Hub, name: str) -> dict[str, str]:
    with hub.db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT options, secrets FROM connector_config WHERE name = :n"), {"n": name}
        ).one()
    return {"options": json.dumps(row[0]), "secrets": json.dumps(row[1])}


def test_secrets_are_stored_encrypted_and_shown_masked(hub: Hub) -> None:
    shown = service.configure(
        hub, "kommun", {"base_url": "https://k.example", "token": TOKEN}, actor="test"
    )
    assert shown == {"base_url": "https://k.example", "token": "**********"}
    stored = raw_row(hub, "kommun")
    assert TOKEN not in stored["options"] and TOKEN not in stored["secrets"]
    assert "token" in json.loads(stored["secrets"])
    with service.build_connector(hub, "kommun") as connector:
        assert connector.options.token.get_secret_value() == TOKEN  # type: ignore[attr-defined]


def test_configure_is_all_or_nothing(hub: Hub) -> None:
    service.configure(hub, "kommun", {"base_url": "http://k.example"}, actor="test")
    with pytest.raises(InputError, match="kommun option 'page_size'"):
        service.configure(hub, "kommun", {"token": TOKEN, "page_size": "lots"}, actor="test")
    with pytest.raises(InputError, match="kommun has no option 'tokn'"):
        service.configure(hub, "kommun", {"token": TOKEN, "tokn": TOKEN}, actor="test")
    assert service.stored_options(hub, "kommun") == {"base_url": "http://k.example"}


def test_unset_removes_an_option_and_a_secret(hub: Hub) -> None:
    service.configure(hub, "kommun", {"base_url": "http://k.example", "token": TOKEN}, actor="test")
    service.configure(hub, "kommun", {}, unset=["token", "base_url"], actor="test")
    assert service.stored_options(hub, "kommun") == {}


def test_building_without_required_options_says_what_to_run(hub: Hub) -> None:
    service.configure(hub, "af", {"client_id": "hub"}, actor="test")
    with pytest.raises(ConnectorConfigError) as err:
        service.build_connector(hub, "af")
    assert str(err.value) == (
        "af: options 'base_url' and 'client_secret' are not set; run `evi connectors "
        "configure af --set base_url=… --secret-from-env client_secret=ENV_VAR`"
    )


def test_a_secret_that_no_longer_decrypts_is_a_configuration_error(hub: Hub) -> None:
    service.configure(hub, "kommun", {"base_url": "http://k.example", "token": TOKEN}, actor="test")
    with hub.db.session() as session:
        session.execute(
            text("UPDATE connector_config SET secrets = :s WHERE name = 'kommun'"),
            {"s": json.dumps({"token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})},
        )
    with pytest.raises(ConnectorConfigError, match="set the secret again with"):
        service.build_connector(hub, "kommun")


@pytest.mark.parametrize("name", ["kommun", "af", "fk", "region"])
def test_a_configured_connector_is_built_and_checked_in_process(hub: Hub, name: str) -> None:
    cls = get_connector(hub.plugins, name).cls
    service.configure(
        hub, name, cls.sandbox_options(f"http://{name}", hub.settings.resolved_home), actor="test"
    )
    app = cls.sandbox_app(SandboxSettings(population=10))
    assert app is not None
    status = service.check_connector(hub, name, transport=InProcessTransport(app))
    assert status.name == name and status.authority == cls.authority


def test_the_listing_has_the_fields_other_tools_rely_on(hub: Hub) -> None:
    service.set_enabled(hub, "fk", True, actor="test")
    listing = {s.name: s.as_json() for s in service.list_connectors(hub)}
    assert list(listing) == ["af", "fk", "kommun", "region"]
    fk = listing["fk"]
    assert {"name", "authority", "enabled", "version", "last_sync", "status"} <= set(fk)
    assert (fk["enabled"], fk["version"], fk["last_sync"], fk["status"]) == (
        True,
        "1.0.0",
        None,
        None,
    )
    assert listing["af"]["enabled"] is False


def test_repeated_failures_pause_a_connector_until_it_is_enabled_again(hub: Hub) -> None:
    service.set_enabled(hub, "af", True, actor="test")
    for night in range(3):
        with hub.db.session() as session:
            paused = service.record_sync_result(
                session, "af", "failed", AT, error="af: unavailable", pause_after=3
            )
        assert paused is (night == 2)
    status = service.connector_status(hub, "af")
    assert (status.paused, status.status, status.last_sync) == (True, "failed", AT)
    assert "af" not in service.runnable_connectors(hub)
    service.set_enabled(hub, "af", True, actor="test")
    assert "af" in service.runnable_connectors(hub)


def test_a_success_ends_a_run_of_failures(hub: Hub) -> None:
    service.set_enabled(hub, "fk", True, actor="test")
    for status in ("failed", "failed", "ok", "failed", "failed"):
        with hub.db.session() as session:
            service.record_sync_result(session, "fk", status, AT, pause_after=3)
    assert not service.connector_status(hub, "fk").paused
    assert service.runnable_connectors(hub) == ["fk"]


def test_a_sync_result_is_written_inside_the_callers_transaction(hub: Hub) -> None:
    with pytest.raises(RuntimeError), hub.db.session() as session:
        service.record_sync_result(session, "kommun", "ok", AT)
        raise RuntimeError("the sync job failed after recording")
    assert service.connector_status(hub, "kommun").last_sync is None
