"""`evi web serve` while PostgreSQL ends its connections (a restart, a fail-over, a DBA's
``pg_terminate_backend``): every answer is the page or JSON asked for, or a 503 saying the
database is not available, never a 500 "internal error"; and the next request, once the
server answers again, is answered as usual.

The cut is real and made at a chosen statement (:mod:`test_database_away_support`): under
the transfer log's reads through the driver's own cursor (the tree of proofs and
checkpoints, the verification's scan), and at the first, middle and last statement of the
pages and API calls of every role.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from casework_support import PNR, register_caseload
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from test_consent_support import Clock
from test_database_away_support import (
    POSTGRES_ONLY,
    counted,
    cut_before,
    end_session_backend,
    nth,
)
from web_support import bearer, token_for, web_client

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.ledger import verify_scan
from hub.ledger.service import new_checkpoint
from hub.ledger.tree import StoredTree
from hub.web.errors import UNAVAILABLE
from hub.web.users import Role

OWN = {"sec-fetch-site": "same-origin"}
PERIOD = {"from": "2025-04-01", "to": "2025-06-30"}


@pytest.fixture
def served(hub: Hub) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """A caseload with a signed checkpoint, a user of each role (their bearer headers)."""
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2099-01-01T00:00:00Z")
    new_checkpoint(hub)
    users = {
        "caseworker": token_for(hub, "anna.af", Role.CASEWORKER, party="af"),
        "officer": token_for(hub, "olle.dso", Role.PRIVACY_OFFICER, party="kommun"),
        "steering": token_for(hub, "sara.sg", Role.STEERING_GROUP, party="team"),
        "admin": token_for(hub, "ola.admin", Role.ADMINISTRATOR, party="kommun"),
    }
    with web_client(hub) as client:
        yield client, {role: {**OWN, **bearer(token)} for role, token in users.items()}


def _unavailable(answer: Any) -> bool:
    return answer.status_code == 503 and answer.json() == {"detail": UNAVAILABLE}


@POSTGRES_ONLY
def test_a_connection_ended_under_the_logs_verification_scan_is_a_503_then_it_answers(
    hub: Hub, served: tuple[TestClient, dict[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verification reads every entry through the driver's own cursor, which no
    statement of SQLAlchemy's wraps: the server's error came through as the driver's."""
    client, users = served
    real = verify_scan.EntryScan.run

    def ended_first(scan: verify_scan.EntryScan) -> Any:
        end_session_backend(scan.session)
        return real(scan)

    monkeypatch.setattr(verify_scan.EntryScan, "run", ended_first)
    assert _unavailable(client.post("/api/log/verify", headers=users["officer"]))
    client.post("/login", data={"token": users["officer"]["Authorization"][7:]}, headers=OWN)
    page = client.post("/log/verify", headers=OWN)
    assert page.status_code == 503
    assert "The service cannot answer right now; try again in a while." in page.text
    monkeypatch.setattr(verify_scan.EntryScan, "run", real)
    verified = client.post("/api/log/verify", headers=users["officer"])
    assert verified.status_code == 200 and verified.json()["ok"] is True


@POSTGRES_ONLY
def test_a_connection_ended_under_the_logs_proofs_is_a_503_then_it_answers(
    hub: Hub, served: tuple[TestClient, dict[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person's log extract proves each entry from the stored tree (the driver's cursor)."""
    client, users = served
    real = StoredTree.fetch

    def ended_first(tree: StoredTree, keys: Any) -> Any:
        end_session_backend(tree.session)
        return real(tree, keys)

    monkeypatch.setattr(StoredTree, "fetch", ended_first)
    asked = {"json": {"pnr": PNR}, "headers": users["officer"]}
    assert _unavailable(client.post("/api/log/extract", **asked))
    monkeypatch.setattr(StoredTree, "fetch", real)
    extract = client.post("/api/log/extract", **asked)
    assert extract.status_code == 200 and extract.json()["entries"]


# (method, path, role, request arguments): pages and API calls of every role
ASKED: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("GET", "/healthz", None, {}),
    ("GET", "/api/admin/connectors", "admin", {}),
    ("GET", "/api/admin/transfers/failed/summary", "admin", {}),
    ("POST", "/api/admin/connectors/fk/disable", "admin", {}),
    ("GET", "/admin", "admin", {}),
    ("POST", "/api/participants/status", "caseworker", {"json": {"pnr": PNR}}),
    ("POST", "/api/participants/extract", "officer", {"json": {"pnr": PNR}}),
    ("GET", "/api/log/entries", "officer", {"params": {"limit": 5}}),
    ("GET", "/api/log/sample", "officer", {"params": {"size": 3}}),
    ("GET", "/log/checkpoint", "officer", {}),
    ("GET", "/api/stats", "steering", {"params": PERIOD}),
    ("POST", "/login", "caseworker", {"follow_redirects": False}),
]


@POSTGRES_ONLY
def test_a_connection_ended_at_any_point_of_a_request_is_its_answer_or_a_503(
    hub: Hub, served: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    """For each request: the connection ended before its first, middle and last statement
    (in one test: the caseload and users are made once)."""
    client, users = served
    for method, path, role, kwargs in ASKED:
        headers = users[role] if role else OWN
        if path == "/login":  # the sign-in form: the token in the body, not a header
            kwargs = {**kwargs, "data": {"token": headers["Authorization"][7:]}}
            headers = OWN

        def ask() -> Any:
            client.cookies.clear()
            return client.request(method, path, headers=headers, **kwargs)  # noqa: B023

        usual = ask()  # the first loads what the process keeps (the keys)
        with counted(hub.db.engine) as sent:
            assert ask().status_code == usual.status_code in (200, 303), path
        for n in sorted({1, (len(sent) + 1) // 2, len(sent)}):
            with cut_before(hub.db.engine, nth(n)) as cut:
                answer = ask()
            where = f"{method} {path}, statement {n} of {len(sent)}"
            assert cut, f"{where}: not sent"
            assert answer.status_code in (usual.status_code, 503), (where, answer.text[:300])
            if answer.status_code == 503:
                assert "the database is not available" in answer.text, where
            assert "internal error" not in answer.text, where
            assert ask().status_code == usual.status_code, where  # the server answers again


@pytest.mark.parametrize(
    "raised",
    [
        OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error")),
        sqlite3.OperationalError("disk I/O error"),  # the driver's own, unwrapped
    ],
    ids=["sqlalchemy", "driver"],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_database_gone_outside_a_unit_of_work_is_a_503_not_an_internal_error(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, raised: Exception
) -> None:
    """The web edge's last net, as the commands' is: a database failure an operator can act
    on that no unit of work put in words (a read made outside one) is the 503 of a
    database not available, its words in the server's log. Before: a 500, "internal error"."""
    token = token_for(hub, "anna.af", Role.CASEWORKER, party="af")

    def gone(_hub: Hub) -> None:
        raise raised

    with web_client(hub) as client:
        client.post("/login", data={"token": token}, headers=OWN)
        monkeypatch.setattr(Hub, "require_schema", gone)
        caplog.set_level(logging.ERROR, logger="hub.web.errors")
        health = client.get("/healthz")
        page = client.post("/participants", data={"pnr": PNR}, headers=OWN)
    assert health.status_code == 503 and health.json() == {"detail": UNAVAILABLE}
    assert page.status_code == 503
    assert "The service cannot answer right now; try again in a while." in page.text
    assert "internal error" not in page.text + health.text
    said = [r.getMessage() for r in caplog.records]
    assert any("disk" in line for line in said), said
    assert not any("internal error" in line for line in said), said


OPERATORS_WORDS = (
    "another database session has held a lock this command needs for longer than "
    "lock_timeout; see pg_stat_activity and pg_locks on postgresql+psycopg://evi@db.example/evi"
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_page_a_database_failure_stops_shows_a_503_and_logs_the_operators_words(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The caseworker's, the register extract's and the administrator's forms put a refused
    request's message on the page; a database failure's message is the operator's (a
    host, a database user, pg_locks) and goes to the server's log, the page saying only
    that the service cannot answer, as the API does. Before: the page showed it."""
    from hub.errors import StorageError
    from hub.web import admin, casework, extract

    def failed(*_args: Any, **_kwargs: Any) -> Any:
        raise StorageError(OPERATORS_WORDS)

    monkeypatch.setattr(casework, "consolidated_status", failed)
    monkeypatch.setattr(extract, "held_data", failed)
    monkeypatch.setattr(admin, "_retry", failed)
    monkeypatch.setattr(admin, "_set_enabled", failed)
    officer = token_for(hub, "olle.dso", Role.PRIVACY_OFFICER, party="kommun")
    admin_token = token_for(hub, "ola.admin", Role.ADMINISTRATOR, party="kommun")
    forms = [
        (token_for(hub, "anna.af", Role.CASEWORKER, party="af"), "/participants", {"pnr": PNR}),
        (officer, "/extract", {"pnr": PNR}),
        (
            admin_token,
            "/admin/transfers/retry",
            {"all": "1"},
        ),
        (
            admin_token,
            "/admin/connectors/af/disable",
            {},
        ),
    ]
    caplog.set_level(logging.ERROR, logger="hub.web.errors")
    for token, path, form in forms:
        with web_client(hub) as client:
            client.post("/login", data={"token": token}, headers=OWN)
            page = client.post(path, data=form, headers=OWN)
        assert page.status_code == 503, (path, page.text[:300])
        assert "The service cannot answer right now; try again in a while." in page.text, path
        assert "db.example" not in page.text and "pg_locks" not in page.text, path
    logged = [r.getMessage() for r in caplog.records]
    assert sum("pg_locks" in line for line in logged) == len(forms), logged
