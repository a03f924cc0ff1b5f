"""Failed sign-ins slowed by client address (hub/web/throttle.py).

After ten failures from one address within five minutes, ``POST /login`` from it answers
429 with the sign-in page and ``Retry-After``, without looking at the token, until the
window has passed; other addresses are not affected, a success resets nothing, the first
refusal of a window is in the audit log, and the addresses held are capped. The clock is
the test's own: nothing here waits or reads the time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from web_support import FakeClock, token_for

from hub.context import Hub
from hub.web.app import create_app
from hub.web.auth import SESSION_COOKIE
from hub.web.throttle import MAX_FAILURES, WINDOW_SECONDS, SignInThrottle
from hub.web.users import Role


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _client_at(hub: Hub, clock: FakeClock, address: str, language: str = "en") -> TestClient:
    """A client of the app (as web_support.web_client makes it) connecting from ``address``,
    the app's throttle on the test's clock."""
    app = create_app(hub)
    app.state.sign_in_throttle = SignInThrottle(clock=clock)
    return TestClient(
        app,
        base_url="https://testserver",
        headers={"accept-language": language},
        client=(address, 50000),
    )


@pytest.fixture
def client(hub: Hub, clock: FakeClock) -> Iterator[TestClient]:
    with _client_at(hub, clock, "203.0.113.5") as client:
        yield client


def _fail(client: TestClient, times: int = MAX_FAILURES) -> None:
    for _ in range(times):
        response = client.post("/login", data={"token": "a-guess"}, follow_redirects=False)
        assert response.status_code == 401


@pytest.fixture
def looked_up(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token the sign-in looks up."""
    from hub.web import session

    tokens: list[str] = []
    real = session.open_session

    def spy(hub: Hub, token: str, **kwargs: Any) -> Any:
        tokens.append(token)
        return real(hub, token, **kwargs)

    monkeypatch.setattr(session, "open_session", spy)
    return tokens


def test_after_ten_failures_sign_ins_are_429_without_looking_at_the_token(
    hub: Hub, client: TestClient, looked_up: list[str]
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    _fail(client)
    assert len(looked_up) == MAX_FAILURES
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 429
    assert len(looked_up) == MAX_FAILURES  # the right token was not even looked up
    assert response.headers["retry-after"] == str(WINDOW_SECONDS)
    assert "set-cookie" not in response.headers
    assert SESSION_COOKIE not in client.cookies
    assert "Too many failed sign-ins from this address. Try again in 5 minutes." in response.text
    assert '<form method="post" action="/login"' in response.text  # the sign-in page
    assert response.headers["cache-control"] == "no-store"  # and its headers


def test_nine_failures_are_not_slowed(hub: Hub, client: TestClient) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    _fail(client, MAX_FAILURES - 1)
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303


def test_the_address_may_sign_in_again_once_the_window_has_passed(
    hub: Hub, client: TestClient, clock: FakeClock
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    _fail(client)
    clock.now += WINDOW_SECONDS - 61
    almost = client.post("/login", data={"token": token}, follow_redirects=False)
    assert almost.status_code == 429 and almost.headers["retry-after"] == "61"
    assert "Try again in 2 minutes." in almost.text
    clock.now += 60
    last = client.post("/login", data={"token": token}, follow_redirects=False)
    assert last.status_code == 429 and last.headers["retry-after"] == "1"
    assert "Try again in 1 minute." in last.text
    clock.now += 1
    assert client.post("/login", data={"token": token}, follow_redirects=False).status_code == 303


def test_a_sliding_window_allows_one_more_try_per_failure_that_ages_out(
    client: TestClient, clock: FakeClock
) -> None:
    _fail(client, 1)
    clock.now += 60
    _fail(client, MAX_FAILURES - 1)
    assert client.post("/login", data={"token": "x"}).status_code == 429
    clock.now += WINDOW_SECONDS - 60  # the first failure is a window old; the others not
    _fail(client, 1)
    blocked = client.post("/login", data={"token": "x"})
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "60"


def test_other_addresses_are_not_slowed_and_a_success_resets_no_count(
    hub: Hub, client: TestClient, clock: FakeClock
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    other = TestClient(client.app, base_url="https://testserver", client=("198.51.100.7", 1))
    _fail(client)
    with other:
        assert other.post("/login", data={"token": "a-guess"}).status_code == 401
        signed_in = other.post("/login", data={"token": token}, follow_redirects=False)
        assert signed_in.status_code == 303
    response = client.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 429


def test_a_refusal_is_in_the_audit_log_once_per_window_with_the_address_only(
    hub: Hub, client: TestClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    token = token_for(hub, "dso", Role.PRIVACY_OFFICER)
    caplog.set_level(logging.INFO, logger="hub.web.audit")
    _fail(client)
    for _ in range(3):
        client.post("/login", data={"token": token})
    clock.now += WINDOW_SECONDS
    _fail(client)
    client.post("/login", data={"token": token})
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.web.audit"]
    refused = [line for line in lines if line.startswith("sign-ins from ")]
    assert (
        refused
        == [
            "sign-ins from 203.0.113.5 refused for 300 s: 10 failed within 5 minutes "
            "(not logged again for 5 minutes)"
        ]
        * 2
    )
    assert len(lines) == 2 * MAX_FAILURES + 2  # each failure, and each window's refusal
    assert not any(token in line or "a-guess" in line for line in lines)


def test_the_page_says_it_in_swedish(hub: Hub, clock: FakeClock) -> None:
    with _client_at(hub, clock, "203.0.113.5", language="sv") as client:
        _fail(client)
        response = client.post("/login", data={"token": "x"})
    assert response.status_code == 429
    assert '<html lang="sv">' in response.text
    expected = "För många misslyckade inloggningar från den här adressen. Försök igen om 5 minuter."
    assert expected in response.text


def test_the_address_counted_is_the_one_the_trusted_proxy_names(
    hub: Hub, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """As `evi web serve` runs it: X-Forwarded-For is believed from the proxy alone."""
    app = create_app(hub)
    app.state.sign_in_throttle = SignInThrottle(clock=clock)
    proxied = ProxyHeadersMiddleware(app, trusted_hosts="10.0.4.7")
    caplog.set_level(logging.INFO, logger="hub.web.audit")

    def post(peer: str, forwarded: str) -> int:
        with TestClient(proxied, base_url="https://testserver", client=(peer, 1)) as client:
            headers = {"x-forwarded-for": forwarded}
            return client.post("/login", data={"token": "x"}, headers=headers).status_code

    for _ in range(MAX_FAILURES):
        assert post("10.0.4.7", "203.0.113.5") == 401
    assert post("10.0.4.7", "203.0.113.5") == 429
    assert post("10.0.4.7", "203.0.113.6") == 401  # another client behind the same proxy
    for _ in range(MAX_FAILURES):  # a client not behind the proxy cannot pose as another
        assert post("192.0.2.9", "203.0.113.6") == 401
    assert post("192.0.2.9", "203.0.113.7") == 429
    assert post("10.0.4.7", "203.0.113.6") == 401
    refused = [r.getMessage() for r in caplog.records if "refused for" in r.getMessage()]
    assert [line.split()[2] for line in refused] == ["203.0.113.5", "192.0.2.9"]


def test_the_addresses_held_are_capped_forgetting_the_oldest(clock: FakeClock) -> None:
    throttle = SignInThrottle(max_failures=2, window_seconds=60, max_clients=3, clock=clock)
    for address in ("a", "b", "c", "d", "e"):
        throttle.failed(address)
        throttle.failed(address)
    assert len(throttle) == 3
    assert throttle.check("a") is None and throttle.check("b") is None  # forgotten
    assert all(throttle.check(address) is not None for address in ("c", "d", "e"))
    throttle.failed("c")  # c failed last: d is now the oldest
    throttle.failed("f")
    assert len(throttle) == 3 and throttle.check("d") is None


def test_an_address_whose_failures_aged_out_is_forgotten(clock: FakeClock) -> None:
    throttle = SignInThrottle(max_failures=2, window_seconds=60, clock=clock)
    throttle.failed("a")
    clock.now += 60
    assert throttle.check("a") is None
    assert len(throttle) == 0
