"""Retrying transient failures: exponential backoff with full jitter, ``Retry-After`` honoured.

Only :class:`TransientConnectorError` is retried. Configuration and authority errors go
straight to the caller: retrying a wrong password or a refused request only hammers the
authority (the retry storms connector users complain about).

The budget is small on purpose and injectable, as is the wait itself (``sleep``), so tests
check the waits without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_random_exponential

from hub.connector.errors import TransientConnectorError

T = TypeVar("T")
log = logging.getLogger("hub.connector")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before giving up on a transient failure.

    * ``attempts``: tries in total, the first included (1 means never retry).
    * ``initial_wait`` / ``max_wait``: exponential backoff ``initial_wait * 2**n`` capped at
      ``max_wait``, each wait drawn uniformly below that ("full jitter"), so many clients
      that failed together do not come back together.
    * ``max_retry_after``: the longest ``Retry-After`` (seconds) worth waiting for within
      one run; an authority asking for longer gets the error back at once, to retry on the
      next run. ``Retry-After: 0`` or none means normal backoff.
    * ``sleep``: how to wait; tests pass a function that records the waits.
    """

    attempts: int = 4
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying it on :class:`TransientConnectorError` within this budget.

        The last error is re-raised with how many attempts were made; any other exception
        propagates at once.
        """
        backoff = wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, TransientConnectorError) and exc.retry_after is not None:
                return exc.retry_after
            return float(backoff(state))

        def should_retry(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if not isinstance(exc, TransientConnectorError):
                return False
            return exc.retry_after is None or exc.retry_after <= self.max_retry_after

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait_s = state.next_action.sleep if state.next_action else 0.0
            log.info("%s; retrying in %.1f s (attempt %d)", exc, wait_s, state.attempt_number)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            retry=should_retry,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(fn)
        except TransientConnectorError as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            if exc.retry_after is not None and exc.retry_after > self.max_retry_after:
                hint = f"it asks to wait {exc.retry_after:.0f} s; try again later"
            elif tries > 1:
                hint = f"tried {tries} times in a row"
            else:
                raise
            raise TransientConnectorError(
                exc.connector, f"{exc.detail} ({hint})", retry_after=exc.retry_after
            ) from None


NO_RETRY = RetryPolicy(attempts=1)
"""A policy that never retries, for one-off calls such as ``evi connectors check``."""
