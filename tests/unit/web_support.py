"""Helpers of the web tests: a client over the test's hub, users with their tokens."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.context import Hub
from hub.web.app import create_app
from hub.web.users import Role, add_user


class FakeClock:
    """Monotonic seconds that move only when the test says so (the sign-in throttle's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def web_client(hub: Hub, language: str = "en") -> TestClient:
    """A client of the app over ``hub``, on https (the session cookie is Secure), whose
    browser asks for ``language`` (the pages' texts in English are the catalog's ids;
    tests/unit/test_web_i18n.py covers Swedish, the default)."""
    return TestClient(
        create_app(hub), base_url="https://testserver", headers={"accept-language": language}
    )


def token_for(hub: Hub, name: str, role: Role, party: str = "team") -> str:
    return add_user(hub, name, party, role, actor="test").token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
