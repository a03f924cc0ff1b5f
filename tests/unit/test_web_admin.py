"""The administrator's pages: connectors, sync history and dead letters, and retrying
them, as `evi connectors list`, `evi sync history` and `evi transfers …` show and do."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tls_support import client_certificate
from web_support import bearer, token_for, web_client

from hub.context import Hub
from hub.store.tables.connectors import ConnectorConfigRow
from hub.web.templating import swedish_time
from hub.web.users import Role


@pytest.fixture
def admin(failed_home: Hub) -> Iterator[tuple[TestClient, str]]:
    token = token_for(failed_home, "ola.admin", Role.ADMINISTRATOR, party="kommun")
    with web_client(failed_home) as client:
        yield client, token


def _failed(cli) -> list[dict[str, object]]:
    return json.loads(cli("transfers", "failed", "--json").out)


def test_the_api_shows_what_the_cli_shows(admin: tuple[TestClient, str], cli) -> None:
    client, token = admin
    connectors = client.get("/api/admin/connectors", headers=bearer(token)).json()
    assert connectors == json.loads(cli("connectors", "list", "--json").out)
    runs = client.get("/api/admin/sync/history", headers=bearer(token)).json()
    assert runs == json.loads(cli("sync", "history", "--json").out)[: len(runs)]
    assert runs[0]["connector"] == "fk" and runs[0]["counts"]["dead_lettered"] > 0
    fk = client.get("/api/admin/sync/history?connector=fk&limit=1", headers=bearer(token))
    assert [r["connector"] for r in fk.json()] == ["fk"]
    failed = client.get("/api/admin/transfers/failed", headers=bearer(token)).json()
    assert failed == _failed(cli) and failed
    assert all(str(f["participant"]).startswith("p-") for f in failed)


def test_the_page_lists_dead_letters_and_retries_one_then_all(
    admin: tuple[TestClient, str],
    cli,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, token = admin
    caplog.set_level(logging.INFO, logger="hub.web.audit")
    # the CLI calls below reconfigure the root logger; keep the audit logger's records
    monkeypatch.setattr(logging.getLogger("hub.web.audit"), "handlers", [caplog.handler])
    client.post("/login", data={"token": token})
    page = client.get("/admin")
    assert page.status_code == 200
    failed = _failed(cli)
    assert f"Retry all {len(failed)}" in page.text
    assert all(str(f["participant"]) in page.text for f in failed)
    first = failed[0]["id"]
    one = client.post("/admin/transfers/retry", data={"id": str(first)}, follow_redirects=False)
    assert one.status_code == 303 and one.headers["location"] == "/admin?queued=1"
    assert "1 transfer queued again" in client.get(one.headers["location"]).text
    assert [f["id"] for f in _failed(cli)] == [f["id"] for f in failed[1:]]
    rest = client.post("/admin/transfers/retry", data={"all": "1"})
    assert f"{len(failed) - 1} transfers queued again" in rest.text
    assert _failed(cli) == []
    assert "No failed transfers" in rest.text
    assert cli("sync", "--sandbox", "--connector", "fk").code == 0  # delivered this time
    assert _failed(cli) == []
    audit = [r.getMessage() for r in caplog.records if r.name == "hub.web.audit"]
    assert "transfers queued again by ola.admin: 1" in audit
    assert f"transfers queued again by ola.admin: {len(failed) - 1}" in audit


def test_retrying_through_the_api_by_id_and_the_mistakes_it_refuses(
    admin: tuple[TestClient, str], cli
) -> None:
    client, token = admin
    failed = _failed(cli)
    ids = [f["id"] for f in failed[:2]]
    done = client.post("/api/admin/transfers/retry", json={"ids": ids}, headers=bearer(token))
    assert done.status_code == 200 and done.json() == {"queued": 2}
    again = client.post("/api/admin/transfers/retry", json={"ids": ids}, headers=bearer(token))
    assert again.status_code == 404 and str(ids[0]) in again.json()["detail"]
    loose = ({"all": "yes"}, {"all": 1}, {"all": "true"})  # retrying all is said with true
    # an id is a JSON number: true, "1" and 1.0 were read as id 1 (found by the web fuzz walk)
    strict = ({"ids": [True]}, {"ids": ["1"]}, {"ids": [1.0]})
    for body in (
        {},
        {"ids": [1], "all": True},
        {"ids": "all"},
        {"ids": [2**70]},
        {"ids": [0]},
        *strict,
    ):
        refused = client.post("/api/admin/transfers/retry", json=body, headers=bearer(token))
        assert refused.status_code == 422
    for body in loose:
        refused = client.post("/api/admin/transfers/retry", json=body, headers=bearer(token))
        assert refused.status_code == 422, body
        assert refused.json()["detail"] == "invalid request: all: Input should be a valid boolean"
    broken = client.post(
        "/api/admin/transfers/retry",
        content=b'{"all": tru',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["detail"] == (
        "invalid request: body: not valid JSON (Expecting value at character 8); send a JSON object"
    )
    assert len(_failed(cli)) == len(failed) - 2  # nothing else changed
    client.post("/login", data={"token": token})
    for text in ("nine", "²", "９", "9" * 5000, str(2**70), "0"):
        bad = client.post("/admin/transfers/retry", data={"id": text})
        assert bad.status_code == 422 and "choose a failed transfer" in bad.text
    assert len(_failed(cli)) == len(failed) - 2


def test_only_an_administrator_may_see_or_retry(failed_home: Hub, cli) -> None:
    for role in (Role.CASEWORKER, Role.PRIVACY_OFFICER, Role.STEERING_GROUP):
        token = token_for(failed_home, f"someone.{role.value}", role)
        with web_client(failed_home) as client:
            for path in ("/api/admin/connectors", "/api/admin/transfers/failed"):
                assert client.get(path, headers=bearer(token)).status_code == 403
            body = {"all": True}
            retry = client.post("/api/admin/transfers/retry", json=body, headers=bearer(token))
            assert retry.status_code == 403
            enable = client.post("/api/admin/connectors/fk/disable", headers=bearer(token))
            assert enable.status_code == 403
            client.post("/login", data={"token": token})
            assert client.get("/admin").status_code == 403
            assert "Administration" not in client.get("/").text
    assert _failed(cli)  # still there
    assert _listed(cli, "fk")["enabled"] is True


# -- connectors: enable, disable (resume a pause), check ---------------------------------


@pytest.fixture
def connector_admin(hub: Hub) -> Iterator[tuple[TestClient, str]]:
    token = token_for(hub, "ola.admin", Role.ADMINISTRATOR, party="kommun")
    with web_client(hub) as client:
        yield client, token


def _listed(cli, name: str) -> dict[str, object]:
    return next(c for c in json.loads(cli("connectors", "list", "--json").out) if c["name"] == name)


def test_disabling_and_resuming_a_paused_connector(
    connector_admin: tuple[TestClient, str],
    hub: Hub,
    cli,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, token = connector_admin
    caplog.set_level(logging.INFO, logger="hub.web.audit")
    monkeypatch.setattr(logging.getLogger("hub.web.audit"), "handlers", [caplog.handler])
    on = client.post("/api/admin/connectors/kommun/enable", headers=bearer(token)).json()
    assert on["enabled"] is True and _listed(cli, "kommun")["enabled"] is True
    with hub.db.session() as session:  # as a run of failed nights leaves it
        row = session.get(ConnectorConfigRow, "kommun")
        assert row is not None
        row.paused, row.consecutive_failures = True, 3
    client.post("/login", data={"token": token})
    page = client.get("/admin")
    assert 'action="/admin/connectors/kommun/enable"' in page.text and "Resume" in page.text
    resumed = client.post("/admin/connectors/kommun/enable", follow_redirects=False)
    assert resumed.status_code == 303 and resumed.headers["location"] == "/admin?enabled=kommun"
    assert "kommun: enabled" in client.get(resumed.headers["location"]).text
    assert _listed(cli, "kommun")["paused"] is False
    client.post("/admin/connectors/kommun/disable")
    assert _listed(cli, "kommun")["enabled"] is False
    assert "<script>" not in client.get("/admin?enabled=<script>").text  # nothing echoed
    audit = [r.getMessage() for r in caplog.records if r.name == "hub.web.audit"]
    assert "connector kommun enabled by ola.admin" in audit
    assert "connector kommun disabled by ola.admin" in audit


def test_checking_a_connector_answers_ok_or_what_went_wrong(
    connector_admin: tuple[TestClient, str], hub: Hub, cli, tmp_path: Path
) -> None:
    client, token = connector_admin
    port = _free_port()
    secret = "a-kommun-token-that-must-not-show"
    cli("connectors", "configure", "kommun", "--set", f"token={secret}", "--set",
        f"base_url=http://127.0.0.1:{port}")  # fmt: skip
    down = client.post("/api/admin/connectors/kommun/check", headers=bearer(token))
    assert down.status_code == 200
    assert (
        down.json()["ok"] is False
        and f"cannot reach http://127.0.0.1:{port}" in down.json()["detail"]
    )
    assert secret not in down.text
    unknown = client.post("/api/admin/connectors/csn/check", headers=bearer(token))
    assert unknown.status_code == 404 and "no connector named 'csn'" in unknown.json()["detail"]
    server = subprocess.Popen(
        [sys.executable, "-m", "hub", "sandbox", "serve", "kommun", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port)
        assert cli("sandbox", "connect", "kommun", "--url", f"http://127.0.0.1:{port}").code == 0
        up = client.post("/api/admin/connectors/kommun/check", headers=bearer(token)).json()
        authority = _listed(cli, "kommun")["authority"]
        assert up == {
            "name": "kommun",
            "ok": True,
            "detail": f"{authority} answered and accepted our credentials",
        }
        client.post("/login", data={"token": token})
        page = client.post("/admin/connectors/kommun/check")
        assert page.status_code == 200 and "kommun: ok: " in page.text
    finally:
        server.terminate()
        server.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int) -> None:
    for _ in range(200):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the sandbox did not start on port {port}")


def test_the_page_warns_about_a_client_certificate_that_expires_soon(
    admin: tuple[TestClient, str], cli, tmp_path: Path
) -> None:
    client, token = admin
    until = (datetime.now(UTC) + timedelta(days=12)).replace(second=0, microsecond=0)
    cert, key = client_certificate(tmp_path, until)
    done = cli(
        "connectors",
        "configure",
        "fk",
        "--set",
        f"client_cert={cert}",
        "--set",
        f"client_key={key}",
    )
    assert done.code == 0, done.err
    client.post("/login", data={"token": token})
    page = client.get("/admin").text
    assert f"Client certificate valid until {swedish_time(until)}" in page
    assert page.count("Client certificate valid until") == 1  # region's runs for a year
    swedish = client.get("/admin", headers={"Accept-Language": "sv"}).text
    assert "Klientcertifikatet gäller till" in swedish


def test_a_retry_asking_for_both_ids_and_all_is_told_which_to_give(
    admin: tuple[TestClient, str],
) -> None:
    client, token = admin
    both = client.post(
        "/api/admin/transfers/retry", json={"ids": [1], "all": True}, headers=bearer(token)
    )
    assert both.status_code == 422
    assert "give either ids (from /api/admin/transfers/failed) or all: true" in both.text
    assert "not a JSON object" not in both.text


def test_a_connectors_last_error_is_shown_with_its_controls_escaped(
    connector_admin: tuple[TestClient, str], hub: Hub
) -> None:
    """An authority's words can be in it: a bidi override (U+202E) shown raw would show the
    rest of the line backwards (hostile-authority walk); autoescaping stops only HTML."""
    client, token = connector_admin
    client.post("/api/admin/connectors/kommun/enable", headers=bearer(token))
    with hub.db.session() as session:
        row = session.get(ConnectorConfigRow, "kommun")
        assert row is not None
        row.last_error = "kommun: the authority answered \u202eKO\x1b[2J"
    client.post("/login", data={"token": token})
    page = client.get("/admin").text
    assert "answered \\u202eKO\\x1b[2J" in page
    assert "\u202e" not in page and "\x1b" not in page
