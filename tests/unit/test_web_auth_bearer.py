"""A wrong bearer token is a guess at a token, like a failed sign-in: it is in the audit
log (the client's address, never the token) and counts towards the address's failures in
the sign-in throttle; past the limit, bearer tokens and sign-ins from that address are
answered 429 without the token being looked at, and the audit log says so once per window.
The clock is the test's own: nothing here waits for it or reads the time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_web_session_throttle import REQUESTS, HeldLookUps, all_at_once
from web_support import FakeClock, bearer, token_for

from hub.context import Hub
from hub.web.app import create_app
from hub.web.throttle import MAX_FAILURES, WINDOW_SECONDS, SignInThrottle
from hub.web.users import Role, WebUser

ADDRESS = "203.0.113.5"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _client_at(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, base_url="https://testserver", client=(address, 50000))


@pytest.fixture
def app(hub: Hub, clock: FakeClock) -> FastAPI:
    app = create_app(hub)
    app.state.sign_in_throttle = SignInThrottle(clock=clock)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with _client_at(app, ADDRESS) as client:
        yield client


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hub.web.audit"]


def test_a_wrong_bearer_token_is_in_the_audit_log_by_address_never_the_token(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.web.audit")
    response = client.get("/api/log/checkpoint", headers=bearer("nope-a-guess"))
    assert response.status_code == 401 and "not valid" in response.json()["detail"]
    assert audit_lines(caplog) == [
        f"bearer token refused from {ADDRESS}: not the token of an active user"
    ]
    assert not any("nope-a-guess" in r.getMessage() for r in caplog.records)


def test_after_ten_wrong_bearer_tokens_the_address_gets_429_and_one_audit_line_per_window(
    hub: Hub, app: FastAPI, client: TestClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER, party="kommun")
    caplog.set_level(logging.INFO, logger="hub.web.audit")
    for _ in range(MAX_FAILURES):
        assert client.get("/", headers=bearer("nope")).status_code == 401
    for _ in range(3):  # a flood: answered unheard, logged once
        flooded = client.get("/api/log/checkpoint", headers=bearer("nope"))
        assert flooded.status_code == 429 and flooded.headers["retry-after"] == "300"
        assert "too many failed sign-ins and wrong tokens" in flooded.json()["detail"]
    # the right token from that address is not looked at either, nor a sign-in
    assert client.get("/", headers=bearer(token)).status_code == 429
    assert client.post("/login", data={"token": token}).status_code == 429
    lines = audit_lines(caplog)
    assert lines == [f"bearer token refused from {ADDRESS}: not the token of an active user"] * (
        MAX_FAILURES
    ) + [
        f"bearer tokens from {ADDRESS} refused for 300 s: 10 failed within 5 minutes "
        "(not logged again for 5 minutes)"
    ]
    assert not any(token in line for line in lines)
    with _client_at(app, "198.51.100.7") as other:  # another address is not affected
        assert other.get("/", headers=bearer(token)).status_code == 200
    clock.now += WINDOW_SECONDS
    assert client.get("/", headers=bearer(token)).status_code == 200


def test_wrong_bearer_tokens_and_failed_sign_ins_share_one_count(client: TestClient) -> None:
    for _ in range(MAX_FAILURES // 2):
        assert client.get("/", headers=bearer("nope")).status_code == 401
    for _ in range(MAX_FAILURES - MAX_FAILURES // 2):
        assert client.post("/login", data={"token": "nope"}).status_code == 401
    assert client.post("/login", data={"token": "nope"}).status_code == 429
    assert client.get("/", headers=bearer("nope")).status_code == 429


def test_wrong_bearer_tokens_sent_at_once_get_at_most_ten_answers_of_401(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.web import auth

    held = HeldLookUps(answer=None)
    monkeypatch.setattr(auth, "authenticate", held.look_up)
    answers = all_at_once(client, held, lambda c: c.get("/", headers=bearer("nope")))
    window = str(WINDOW_SECONDS)
    assert answers == {(401, None): MAX_FAILURES, (429, window): REQUESTS - MAX_FAILURES}
    assert held.inside == MAX_FAILURES


def test_a_program_sending_many_requests_at_once_with_its_token_is_never_refused(
    hub: Hub, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.web import auth

    token = token_for(hub, "dso", Role.PRIVACY_OFFICER, party="kommun")
    user: WebUser | None = auth.authenticate(hub, token)
    held = HeldLookUps(answer=user)  # more at once than the limit: the rest wait their turn
    monkeypatch.setattr(auth, "authenticate", held.look_up)
    answers = all_at_once(client, held, lambda c: c.get("/", headers=bearer(token)))
    assert answers == {(200, None): REQUESTS}
    assert len(client.app.state.sign_in_throttle) == 0  # nothing counted, nothing held
