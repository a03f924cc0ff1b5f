"""Slowing down repeated failed sign-ins from one client address.

A token is 256 random bits, so guessing one online is hopeless at any rate; this is so
that repeated failures are slowed and visible, as an audit expects. After
:data:`MAX_FAILURES` failed sign-ins from one address within :data:`WINDOW_SECONDS`,
``POST /login`` from that address is answered 429 (with ``Retry-After``) without the token
being looked at, until the oldest of those failures is a window old: a sliding window, so
an address gets at most :data:`MAX_FAILURES` tries in any :data:`WINDOW_SECONDS`.

Only failures count, and nothing resets a count but time: a successful sign-in (from this
address or another) clears no one's failures, so holding one valid token does not buy more
guesses. The address is the one the audit log names (``request.client``, which `evi web
serve` takes from ``X-Forwarded-For`` only when the request comes from one of ``[web]
trusted_proxies``). Where many people share one address (a proxy not named there, an
office behind one NAT), they share its count too: ten failures from the office within five
minutes slow the office's sign-ins for at most five minutes. A page session already open
and a request with ``Authorization: Bearer`` are not affected.

The counts live in the server process (one per `evi web serve`), and their memory is
bounded: at most :data:`MAX_CLIENTS` addresses, each with at most :data:`MAX_FAILURES`
times; past that the address whose last failure is oldest is forgotten.

Written by hand rather than with a rate-limit library such as ``limits``: that would be a
new dependency of the hub for about fifty lines, and what is needed here besides a moving
window (counting failures only, a fixed cap on the addresses held instead of keys left to
expire, and knowing when an address's refusals were last reported, to log them once per
window) would be about as much code on top of it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

MAX_FAILURES: Final = 10
"""Failed sign-ins from one address within :data:`WINDOW_SECONDS` before it is slowed."""

WINDOW_SECONDS: Final = 300
"""The window failures are counted in: five minutes."""

MAX_CLIENTS: Final = 10_000
"""How many addresses are tracked at most (a flood of addresses evicts the oldest): about
12 MB when every one of them has its ten failures."""

Monotonic = Callable[[], float]
"""Seconds from an arbitrary start that never go back (:func:`time.monotonic`); tests give
their own."""


@dataclass
class _Address:
    failures: deque[float]
    reported_until: float = -math.inf
    """Refusals are not logged again before this time (once per window)."""


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused unheard: how long to wait, and whether to log it."""

    retry_after: int
    """Whole seconds until the address may try again (at least 1)."""
    first_in_window: bool
    """The first refusal of this address in a window: the one to write to the audit log."""


@dataclass
class SignInThrottle:
    """Failed sign-ins by client address, in memory; safe to use from several threads."""

    max_failures: int = MAX_FAILURES
    window_seconds: float = WINDOW_SECONDS
    max_clients: int = MAX_CLIENTS
    clock: Monotonic = time.monotonic
    _addresses: OrderedDict[str, _Address] = field(default_factory=OrderedDict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def check(self, address: str) -> Refusal | None:
        """``None`` if ``address`` may try to sign in now; else how long it must wait."""
        with self._lock:
            entry = self._addresses.get(address)
            if entry is None:
                return None
            now = self.clock()
            failures = entry.failures
            while failures and failures[0] <= now - self.window_seconds:
                failures.popleft()
            if len(failures) < self.max_failures:
                if not failures and entry.reported_until <= now:
                    del self._addresses[address]
                return None
            retry_after = max(1, math.ceil(failures[0] + self.window_seconds - now))
            first = entry.reported_until <= now
            if first:
                entry.reported_until = now + self.window_seconds
            return Refusal(retry_after, first)

    def failed(self, address: str) -> None:
        """Count a failed sign-in from ``address``."""
        with self._lock:
            entry = self._addresses.get(address)
            if entry is None:
                entry = _Address(deque(maxlen=self.max_failures))
                self._addresses[address] = entry
            entry.failures.append(self.clock())
            self._addresses.move_to_end(address)
            while len(self._addresses) > self.max_clients:
                self._addresses.popitem(last=False)

    def __len__(self) -> int:
        """How many addresses are tracked."""
        with self._lock:
            return len(self._addresses)
