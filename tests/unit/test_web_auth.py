"""Signing in to the web edge: tokens by their digest, roles, the cookie, the headers.

Every response carries the security headers; no token, an unknown, replaced or disabled
one is 401; a role a route does not allow is 403; the token is never stored in clear. The
pages' cookie holds a page session's secret, never the token, and the server ends the
session on sign-out, after a working day, and when the user's access changes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from web_support import bearer, token_for, web_client

from hub.context import Hub
from hub.web.auth import SESSION_COOKIE
from hub.web.page_sessions import SESSION_SECONDS, open_session
from hub.web.security import SECURITY_HEADERS, PathOnly
from hub.web.users import Role, disable_user, replace_token


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with web_client(hub) as client:
        yield client


def test_health_check_answers_without_signing_in(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    # what uptime monitors ask by default: the same status and headers, no body
    head = client.head("/healthz")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == response.headers["content-type"]


@pytest.mark.parametrize(
    "path", ["/healthz", "/login", "/static/style.css", "/api/log/entries", "/log", "/nowhere"]
)
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert response.headers["strict-transport-security"] == "max-age=31536000"  # over https


def test_hsts_is_sent_only_over_https(hub: Hub) -> None:
    app = web_client(hub).app
    with TestClient(app, base_url="http://127.0.0.1") as plain:
        assert "strict-transport-security" not in plain.get("/login").headers
    with TestClient(app, base_url="https://evi.example") as secure:
        assert "max-age=" in secure.get("/login").headers["strict-transport-security"]


def test_the_api_without_a_token_is_401_with_a_json_detail(client: TestClient) -> None:
    response = client.get("/api/log/entries")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_an_unknown_token_or_another_scheme_is_401(client: TestClient) -> None:
    assert client.get("/api/log/entries", headers=bearer("not-a-token")).status_code == 401
    basic = client.get("/api/log/entries", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


def test_a_wrong_role_is_403_and_the_right_one_gets_in(hub: Hub, client: TestClient) -> None:
    caseworker = token_for(hub, "anna.af", Role.CASEWORKER, party="af")
    officer = token_for(hub, "dso.kommun", Role.PRIVACY_OFFICER, party="kommun")
    refused = client.get("/api/log/entries", headers=bearer(caseworker))
    assert refused.status_code == 403
    assert "privacy_officer" in refused.json()["detail"]
    assert client.get("/api/log/entries", headers=bearer(officer)).status_code == 200


def test_a_disabled_user_is_refused_at_once(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    assert client.get("/api/log/entries", headers=bearer(token)).status_code == 200
    disable_user(hub, "dso", actor="test")
    response = client.get("/api/log/entries", headers=bearer(token))
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]


def test_a_replaced_token_stops_working_and_the_new_one_works(hub: Hub, client: TestClient) -> None:
    old = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    new = replace_token(hub, "dso", actor="test").token
    assert new != old
    assert client.get("/api/log/entries", headers=bearer(old)).status_code == 401
    assert client.get("/api/log/entries", headers=bearer(new)).status_code == 200


def test_tokens_are_stored_only_as_their_sha256(hub: Hub) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    with hub.db.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM web_user"))]
    assert len(rows) == 1
    cells = [str(cell) for cell in rows[0]]
    assert token not in " ".join(cells)
    assert hashlib.sha256(token.encode()).hexdigest() in cells


def test_signing_in_sets_a_strict_httponly_cookie_that_opens_the_pages(
    hub: Hub, client: TestClient
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    assert client.get("/log").status_code == 401  # the sign-in page, in place
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("__host-evi_session=") and "path=/" in cookie
    assert "domain" not in cookie  # the __Host- prefix: Secure, Path=/, no Domain
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert "max-age=28800" in cookie  # a working day, even if the browser stays open
    assert token not in response.headers.get("location", "")
    page = client.get("/log")
    assert page.status_code == 200
    assert "Transfer log" in page.text and "dso" in page.text
    client.post("/logout")
    assert client.get("/log").status_code == 401


def _session_rows(hub: Hub) -> list[tuple[Any, ...]]:
    with hub.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM web_session"))]


def test_the_cookie_holds_a_session_secret_stored_only_as_its_sha256(
    hub: Hub, client: TestClient
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    client.post("/login", data={"token": token})
    secret = client.cookies[SESSION_COOKIE]
    assert secret and secret != token
    cells = " ".join(str(cell) for row in _session_rows(hub) for cell in row)
    assert secret not in cells and token not in cells
    assert hashlib.sha256(secret.encode()).hexdigest() in cells
    assert client.get("/log").status_code == 200


def test_signing_out_ends_the_session_on_the_server(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    client.post("/login", data={"token": token})
    copied = client.cookies[SESSION_COOKIE]  # e.g. taken from the browser before sign-out
    client.post("/logout")
    assert _session_rows(hub) == []
    with web_client(hub) as other:
        other.cookies.set(SESSION_COOKIE, copied)
        response = other.get("/api/log/entries")
    assert response.status_code == 401
    assert "session has ended" in response.json()["detail"]


def test_a_session_ends_after_a_working_day_whatever_the_browser_keeps(
    hub: Hub, client: TestClient
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    now = datetime.now(UTC)
    almost = open_session(hub, token, clock=lambda: now - timedelta(seconds=SESSION_SECONDS - 60))
    expired = open_session(hub, token, clock=lambda: now - timedelta(seconds=SESSION_SECONDS + 1))
    assert almost and expired
    client.cookies.set(SESSION_COOKIE, almost.secret)
    assert client.get("/log").status_code == 200
    client.cookies.set(SESSION_COOKIE, expired.secret)
    assert client.get("/log").status_code == 401
    client.post("/login", data={"token": token})  # signing in clears expired sessions
    assert len(_session_rows(hub)) == 2


def test_a_new_token_ends_the_users_page_sessions(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    client.post("/login", data={"token": token})
    assert client.get("/log").status_code == 200
    replace_token(hub, "dso", actor="test")
    assert client.get("/log").status_code == 401
    assert _session_rows(hub) == []


def test_signing_in_and_out_is_in_the_audit_log_without_a_token_or_secret(
    hub: Hub, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER, party="kommun")
    caplog.set_level(logging.INFO, logger="hub.web.audit")
    client.post("/login", data={"token": "a-guess"})
    client.post("/login", data={"token": token})
    secret = client.cookies[SESSION_COOKIE]
    client.post("/logout")
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.web.audit"]
    assert lines[0].startswith("sign-in refused from ") and "a-guess" not in lines[0]
    assert lines[1].startswith("signed in: dso (kommun, privacy_officer) from ")
    assert lines[2] == "signed out: dso"
    assert not any(token in line or secret in line for line in lines)


def test_a_wrong_token_on_the_sign_in_form_is_refused(client: TestClient) -> None:
    response = client.post("/login", data={"token": "guess"}, follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "not valid" in response.text


def test_signing_in_leads_back_to_the_page_asked_for_and_never_elsewhere(
    hub: Hub, client: TestClient
) -> None:
    token = token_for(hub, "sara.forbund", Role.STEERING_GROUP, party="team")
    asked = client.get("/stats?from=2025-01-01&to=2025-06-30")  # a bookmark, signed out
    assert asked.status_code == 401
    assert (
        '<input type="hidden" name="next" value="/stats?from=2025-01-01&amp;to=2025-06-30">'
        in asked.text
    )
    wrong = client.post("/login", data={"token": "guess", "next": "/stats?from=2025-01-01"})
    assert 'name="next" value="/stats?from=2025-01-01"' in wrong.text  # kept for the retry
    back = client.post(
        "/login",
        data={"token": token, "next": "/stats?from=2025-01-01&to=2025-06-30"},
        follow_redirects=False,
    )
    assert back.status_code == 303
    assert back.headers["location"] == "/stats?from=2025-01-01&to=2025-06-30"
    numbered = client.get("/admin?x=199001012385")  # refused before sign-in, never echoed
    assert numbered.status_code == 403 and "199001012385" not in numbered.text
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example", "/login"):
        sent = client.post(
            "/login", data={"token": token, "next": elsewhere}, follow_redirects=False
        )
        assert sent.headers["location"] == "/", elsewhere


def test_the_cookie_stops_working_when_the_user_is_disabled(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    client.post("/login", data={"token": token})
    assert client.get("/log").status_code == 200
    disable_user(hub, "dso", actor="test")
    assert client.get("/log").status_code == 401


def test_a_page_the_role_may_not_see_is_403_and_not_in_the_navigation(
    hub: Hub, client: TestClient
) -> None:
    token = token_for(hub, "stina", Role.STEERING_GROUP, party="kommun")
    client.post("/login", data={"token": token})
    home = client.get("/")
    assert home.status_code == 200
    assert 'href="/log"' not in home.text
    page = client.get("/log")
    assert page.status_code == 403
    assert "privacy_officer" in page.text


def test_a_privacy_officer_sees_the_log_in_the_navigation(hub: Hub, client: TestClient) -> None:
    client.post("/login", data={"token": token_for(hub, "dso", Role.PRIVACY_OFFICER)})
    assert 'href="/log"' in client.get("/").text


def test_an_internal_error_answers_without_a_traceback(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail 190001019802")

    monkeypatch.setattr("hub.ledger.service.search", broken)
    caplog.set_level(logging.DEBUG)
    # raise_server_exceptions: the client raises what the app lets out to the server, which
    # uvicorn would log with its traceback and text; nothing may get out.
    with TestClient(
        web_client(hub).app, base_url="https://testserver", raise_server_exceptions=True
    ) as client:
        response = client.get("/api/log/entries", headers=bearer(token))
    assert response.status_code == 500
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("hub")]
    assert logged[0] == (logging.ERROR, "internal error in GET /api/log/entries (RuntimeError)")
    assert [level for level, _ in logged[1:]] == [logging.DEBUG]  # the traceback, debug only
    assert response.json() == {"detail": "internal error; the server log names its type"}
    assert "Traceback" not in response.text and "190001019802" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_the_server_log_of_an_internal_error_masks_a_number_typed_into_the_path(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = token_for(hub, "ola.admin", Role.ADMINISTRATOR, party="kommun")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr("hub.web.admin.check_connector", broken)
    caplog.set_level(logging.ERROR, logger="hub.web.errors")
    with web_client(hub) as client:
        answer = client.post("/api/admin/connectors/199001012385/check", headers=bearer(token))
    assert answer.status_code == 500
    (line,) = [r.getMessage() for r in caplog.records if r.name == "hub.web.errors"]
    assert line == "internal error in POST /api/admin/connectors/[masked]/check (RuntimeError)"


def test_the_access_log_keeps_the_path_but_never_the_query() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/log/entries?participant=p-1&from=2025-01-01", "1.1", 200),
        None,
    )
    assert PathOnly().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /api/log/entries HTTP/1.1" 200'
    odd = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", ("/x?pnr=1",), None)
    assert not PathOnly().filter(odd)


def test_serve_starts_with_a_hint_when_nobody_can_sign_in(
    hub: Hub, cli: Any, served: list[Any]
) -> None:
    result = cli("web", "serve", "--port", "8999")
    token_for(hub, "dso", Role.PRIVACY_OFFICER)
    again = cli("web", "serve", "--port", "8999")
    assert result.code == again.code == 0, result.err
    assert "evi users add" in result.err and "evi users add" not in again.err
    assert [c.port for c in served] == [8999, 8999]
    assert [c.host for c in served] == ["127.0.0.1", "127.0.0.1"]


def test_serve_believes_forwarded_headers_only_from_the_configured_proxies(
    hub: Hub, cli: Any, served: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("web", "serve").code == 0
    monkeypatch.setenv("EVI_WEB__TRUSTED_PROXIES", "10.0.4.7, 10.0.5.0/24")
    assert cli("web", "serve").code == 0
    monkeypatch.setenv("EVI_WEB__TRUSTED_PROXIES", "*")
    refused = cli("web", "serve")
    assert [c.forwarded_allow_ips for c in served] == ["127.0.0.1", "10.0.4.7, 10.0.5.0/24"]
    assert refused.code == 2 and "web.trusted_proxies" in refused.err
