"""Sign-ins sent all at once from one address get no more token look-ups than the limit.

The throttle checks and reserves a try in one step (hub/web/throttle.py); a try beyond the
limit waits for those in flight and is refused once they failed. Deterministic: each
look-up is held until every request is accounted for (looking a token up, answered, or
waiting for a try in flight), then all go at once; nothing here reads the time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.context import Hub
from hub.web.app import create_app
from hub.web.throttle import MAX_FAILURES, WINDOW_SECONDS, SignInThrottle

REQUESTS = 30  # fewer than the server's 40 worker threads: all are in flight at once
SAFETY = 60.0  # seconds before a stuck test gives up (not an assertion on time)


class HeldLookUps:
    """Stands in for a token look-up: records it and holds it until :meth:`go`."""

    def __init__(self, answer: Any = None) -> None:
        self.answer = answer
        self.inside = 0
        self.answered: list[tuple[int, str | None]] = []
        self.changed = threading.Condition()
        self.released = threading.Event()

    def look_up(self, *args: Any, **kwargs: Any) -> Any:
        with self.changed:
            self.inside += 1
            self.changed.notify_all()
        self.released.wait(SAFETY)
        return self.answer

    def answer_with(self, response: Any) -> None:
        with self.changed:
            self.answered.append((response.status_code, response.headers.get("retry-after")))
            self.changed.notify_all()

    def go_when_all_are_accounted_for(self, throttle: SignInThrottle, total: int) -> None:
        def accounted() -> bool:
            return self.inside + len(self.answered) + throttle.waiting >= total

        with self.changed:
            # The throttle does not notify this condition when a try starts waiting: look
            # again every few milliseconds (SAFETY only ends a test that is stuck).
            for _ in range(int(SAFETY / 0.005)):
                if self.changed.wait_for(accounted, timeout=0.005):
                    break
        self.released.set()


def all_at_once(
    client: TestClient, held: HeldLookUps, send: Callable[[TestClient], Any]
) -> Counter[tuple[int, str | None]]:
    """``REQUESTS`` requests from one address at once; their statuses and Retry-After."""
    start = threading.Barrier(REQUESTS)

    def one() -> None:
        start.wait(SAFETY)
        held.answer_with(send(client))

    threads = [threading.Thread(target=one) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    held.go_when_all_are_accounted_for(client.app.state.sign_in_throttle, REQUESTS)
    for thread in threads:
        thread.join(SAFETY)
    return Counter(held.answered)


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    app = create_app(hub)
    # A clock that stands still: a try refused for the failures waits the whole window; one
    # refused because the tries in flight never ended (patience ran out) would say 1 s.
    app.state.sign_in_throttle = SignInThrottle(clock=lambda: 1000.0)
    with TestClient(app, base_url="https://testserver", client=("203.0.113.5", 5000)) as client:
        yield client


def test_bad_sign_ins_sent_at_once_get_at_most_ten_answers_of_401(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.web import session

    held = HeldLookUps(answer=None)  # not the token of an active user
    monkeypatch.setattr(session, "open_session", held.look_up)
    answers = all_at_once(client, held, lambda c: c.post("/login", data={"token": "a-guess"}))
    window = str(WINDOW_SECONDS)
    assert answers == {(401, None): MAX_FAILURES, (429, window): REQUESTS - MAX_FAILURES}
    assert held.inside == MAX_FAILURES  # the others' tokens were never looked at
    assert client.post("/login", data={"token": "a-guess"}).status_code == 429
