"""Retrying: Retry-After is honoured, backoff is bounded and jittered, only transient errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hub.connector import (
    AuthorityError,
    ConnectorConfigError,
    RetryPolicy,
    TransientConnectorError,
)
from hub.connector.errors import MAX_RETRY_AFTER_SECONDS
from hub.connector.http import parse_retry_after


class Flaky:
    """Raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def policy(waits: list[float], **kwargs: float) -> RetryPolicy:
    return RetryPolicy(sleep=waits.append, **kwargs)  # type: ignore[arg-type]


def test_retry_after_is_waited_exactly() -> None:
    waits: list[float] = []
    fn = Flaky(
        TransientConnectorError("x", "busy", retry_after=7),
        TransientConnectorError("x", "busy", retry_after=2.5),
    )
    assert policy(waits).call(fn) == "done"
    assert waits == [7, 2.5]


@pytest.mark.parametrize("retry_after", [None, 0, -3])
def test_zero_or_absent_retry_after_means_jittered_exponential_backoff(
    retry_after: float | None,
) -> None:
    waits: list[float] = []
    errors = [TransientConnectorError("x", "busy", retry_after=retry_after) for _ in range(3)]
    policy(waits, attempts=4, initial_wait=0.5, max_wait=1.5).call(Flaky(*errors))
    caps = [0.5, 1.0, 1.5]  # 0.5 * 2**n, capped at max_wait
    assert len(waits) == 3
    assert all(0 <= w <= cap for w, cap in zip(waits, caps, strict=True))


def test_jitter_spreads_the_waits_of_many_clients() -> None:
    waits: list[float] = []
    for _ in range(30):
        policy(waits, initial_wait=1.0).call(Flaky(TransientConnectorError("x", "busy")))
    assert len(set(waits)) > 20


@pytest.mark.parametrize(
    "error", [ConnectorConfigError("x", "bad token"), AuthorityError("x", "refused")]
)
def test_configuration_and_authority_errors_are_never_retried(error: Exception) -> None:
    waits: list[float] = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        policy(waits).call(fn)
    assert fn.calls == 1 and waits == []


def test_an_exhausted_budget_says_how_many_attempts_were_made() -> None:
    waits: list[float] = []
    fn = Flaky(*[TransientConnectorError("kommun", "the authority is unavailable")] * 5)
    with pytest.raises(TransientConnectorError) as err:
        policy(waits, attempts=3).call(fn)
    assert str(err.value) == "kommun: the authority is unavailable (tried 3 times in a row)"
    assert fn.calls == 3 and len(waits) == 2


def test_a_retry_after_beyond_the_limit_is_handed_back_at_once() -> None:
    waits: list[float] = []
    fn = Flaky(TransientConnectorError("af", "rate-limited", retry_after=3600))
    with pytest.raises(TransientConnectorError, match="asks to wait 3600 s") as err:
        policy(waits, max_retry_after=120).call(fn)
    assert fn.calls == 1 and waits == []
    assert err.value.retry_after == 3600


def test_a_single_attempt_policy_raises_the_original_error() -> None:
    original = TransientConnectorError("fk", "down")
    with pytest.raises(TransientConnectorError) as err:
        RetryPolicy(attempts=1).call(Flaky(original))
    assert err.value is original


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("0", None),
        (None, None),
        ("soon", None),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:59:00 GMT", None),
        # never longer than a day: the authority cannot put us off for years
        ("7200", 7200.0),
        ("90000", 86400.0),
        ("1e12", 86400.0),
        ("9" * 400, 86400.0),  # too long a number for a float: still "very long"
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
        # not a number of seconds at all: as if absent (normal backoff)
        ("inf", None),
        ("Infinity", None),
        ("-inf", None),
        ("nan", None),
        ("1e400", None),
    ],
)
def test_retry_after_header_forms(header: str | None, seconds: float | None) -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=lambda: now) == seconds


@pytest.mark.parametrize(
    ("given", "kept"),
    [(float("inf"), None), (float("nan"), None), (1e12, 86400.0), (7200, 7200), (90, 90)],
)
def test_a_transient_error_keeps_only_a_usable_retry_after(
    given: float, kept: float | None
) -> None:
    # Connectors may raise it themselves; whatever they pass, the outbox can add it to now.
    error = TransientConnectorError("x", "busy", retry_after=given)
    assert error.retry_after == kept
    assert MAX_RETRY_AFTER_SECONDS == 86400
    if error.retry_after is not None:
        assert datetime.now(UTC) + timedelta(seconds=error.retry_after) > datetime.now(UTC)


@pytest.mark.parametrize("header", ["1e12", "inf", "99999999999999999999"])
def test_an_absurd_retry_after_neither_stalls_the_run_nor_breaks_the_outbox(header: str) -> None:
    """Before: ``inf`` and ``1e12`` were kept as they came; ``now + timedelta(seconds=…)`` in
    the outbox then overflowed, and ``inf`` was waited for within the run."""
    from hub.connector import JsonApi, build_client

    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, headers={"Retry-After": header})

    client = build_client(
        "af", "https://af.example", timeout_seconds=5, transport=httpx.MockTransport(handler)
    )
    waits: list[float] = []
    api = JsonApi("af", client, RetryPolicy(attempts=3, sleep=waits.append))
    with pytest.raises(TransientConnectorError) as err:
        api.request("GET", "/x")
    assert all(w <= 120 for w in waits)  # nothing above the policy's max_retry_after
    retry_after = err.value.retry_after
    assert retry_after is None or retry_after <= 86400
    datetime.now(UTC) + timedelta(seconds=retry_after or 0)  # what retry_later does
