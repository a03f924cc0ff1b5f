"""Slowing down repeated failed sign-ins and wrong bearer tokens from one client address.

A token is 256 random bits, so guessing one online is hopeless at any rate; this is so
that repeated failures are slowed and visible, as an audit expects. After
:data:`MAX_FAILURES` failures from one address within :data:`WINDOW_SECONDS` (a failed
``POST /login`` or a request whose ``Authorization: Bearer`` token is not an active
user's: both are guesses at a token), ``POST /login`` and every request with a bearer
token from that address are answered 429 (with ``Retry-After``) without the token being
looked at, until the oldest of those failures is a window old: a sliding window, so an
address gets at most :data:`MAX_FAILURES` wrong tokens looked up in any
:data:`WINDOW_SECONDS`, however it sends them.

That holds however many requests arrive at once: a try is checked and *reserved* in one
step under the lock (:meth:`SignInThrottle.reserve`), before its token is looked up, and
the reservation becomes a failure (:meth:`SignInThrottle.failed`) or is given back
(:meth:`SignInThrottle.release`) afterwards. While the failures and the tries being
looked up from an address already make :data:`MAX_FAILURES`, a further try waits (at most
:data:`PATIENCE_SECONDS`) for one of them to end: it goes ahead when one succeeded, and is
refused once the failures alone make the limit. So a program sending many requests at
once with a valid token is never refused for its own numbers, and a hundred wrong tokens
sent at once get ten look-ups, the rest 429.

Only failures count, and nothing resets a count but time: a success (from this address or
another) clears no one's failures, so holding one valid token does not buy more guesses.
The address is the one the audit log names (``request.client``, which `evi web serve`
takes from ``X-Forwarded-For`` only when the request comes from one of ``[web]
trusted_proxies``). Where many people share one address (a proxy not named there, an
office behind one NAT), they share its count too: ten failures from the office within five
minutes slow the office's sign-ins and bearer tokens for at most five minutes. A page
session already open (its cookie) is not affected.

The counts live in the server process (one per `evi web serve`), and their memory is
bounded: at most :data:`MAX_CLIENTS` addresses, each with at most :data:`MAX_FAILURES`
times; past that the address whose last failure is oldest is forgotten (with any tries of
it in flight: only a flood of addresses gets there).

Written by hand rather than with a rate-limit library such as ``limits``: that would be a
new dependency of the hub for about a hundred lines, and what is needed here besides a
moving window (counting failures only, reserving tries in flight, a fixed cap on the
addresses held instead of keys left to expire, and knowing when an address's refusals were
last reported, to log them once per window) would be about as much code on top of it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

MAX_FAILURES: Final = 10
"""Failures from one address within :data:`WINDOW_SECONDS` before it is slowed."""

WINDOW_SECONDS: Final = 300
"""The window failures are counted in: five minutes."""

MAX_CLIENTS: Final = 10_000
"""How many addresses are tracked at most (a flood of addresses evicts the oldest): about
12 MB when every one of them has its ten failures."""

PATIENCE_SECONDS: Final = 10.0
"""How long a try waits for the tries in flight from its address (token look-ups, a few
milliseconds each) before it is refused for a second."""

T = TypeVar("T")

Monotonic = Callable[[], float]
"""Seconds from an arbitrary start that never go back (:func:`time.monotonic`); tests give
their own."""


@dataclass
class _Address:
    failures: deque[float]
    reported_until: float = -math.inf
    """Refusals are not logged again before this time (once per window)."""
    in_flight: int = 0
    """Tries reserved and not yet ended (:meth:`SignInThrottle.reserve`)."""


@dataclass(frozen=True)
class Refusal:
    """A try refused unheard: how long to wait, and whether to log it."""

    retry_after: int
    """Whole seconds until the address may try again (at least 1)."""
    first_in_window: bool
    """The first refusal of this address in a window: the one to write to the audit log."""


@dataclass
class SignInThrottle:
    """Failures by client address, in memory; safe to use from several threads."""

    max_failures: int = MAX_FAILURES
    window_seconds: float = WINDOW_SECONDS
    max_clients: int = MAX_CLIENTS
    clock: Monotonic = time.monotonic
    patience: float = PATIENCE_SECONDS
    _addresses: OrderedDict[str, _Address] = field(default_factory=OrderedDict, init=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, init=False)
    _waiting: int = field(default=0, init=False)

    def check(self, address: str) -> Refusal | None:
        """``None`` if ``address`` has failures left now; else how long it must wait.

        Only looks: it reserves nothing, so a sign-in uses :meth:`reserve` instead."""
        with self._changed:
            entry = self._addresses.get(address)
            if entry is None:
                return None
            now = self.clock()
            self._age(entry, now)
            if len(entry.failures) < self.max_failures:
                self._forget_if_idle(address, entry, now)
                return None
            return self._refusal(entry, now)

    def reserve(self, address: str) -> Refusal | None:
        """Check and reserve one try from ``address`` in one step: ``None`` if it may look
        a token up now (then call :meth:`failed` with ``reserved=True`` or :meth:`release`
        when it is done, also if the look-up raises); else how long it must wait.

        While the failures and the tries in flight from ``address`` already make
        :attr:`max_failures`, waits for one of those tries to end."""
        with self._changed:
            while True:
                now = self.clock()
                entry = self._addresses.get(address)
                if entry is not None:
                    self._age(entry, now)
                    if len(entry.failures) >= self.max_failures:
                        return self._refusal(entry, now)
                    if len(entry.failures) + entry.in_flight < self.max_failures:
                        entry.in_flight += 1
                        return None
                else:
                    self._addresses[address] = _Address(
                        deque(maxlen=self.max_failures), in_flight=1
                    )
                    self._evict()
                    return None
                self._waiting += 1
                try:
                    ended = self._changed.wait(self.patience)
                finally:
                    self._waiting -= 1
                if not ended:  # look-ups stuck (a slow database): refuse, do not pile up
                    return Refusal(1, first_in_window=False)

    def failed(self, address: str, *, reserved: bool = False) -> None:
        """Count a failure from ``address`` (``reserved``: the try :meth:`reserve` let
        through, which ends with it)."""
        with self._changed:
            entry = self._addresses.get(address)
            if entry is None:
                entry = _Address(deque(maxlen=self.max_failures))
                self._addresses[address] = entry
            elif reserved and entry.in_flight:
                entry.in_flight -= 1
            entry.failures.append(self.clock())
            self._addresses.move_to_end(address)
            self._evict()
            self._changed.notify_all()

    def release(self, address: str) -> None:
        """End a try :meth:`reserve` let through without counting it (the token was good)."""
        with self._changed:
            entry = self._addresses.get(address)
            if entry is not None:
                entry.in_flight = max(0, entry.in_flight - 1)
                now = self.clock()
                self._age(entry, now)
                self._forget_if_idle(address, entry, now)
            self._changed.notify_all()

    def look_up(self, address: str, find: Callable[[], T | None]) -> T | Refusal | None:
        """``find()`` (a token look-up) as one try from ``address``: a :class:`Refusal`
        without calling it while the address is throttled; else its answer, ``None``
        counted as a failure. The try is reserved first and ended whatever happens."""
        refusal = self.reserve(address)
        if refusal is not None:
            return refusal
        try:
            found = find()
        except BaseException:
            self.release(address)
            raise
        if found is None:
            self.failed(address, reserved=True)
        else:
            self.release(address)
        return found

    @property
    def waiting(self) -> int:
        """How many tries are waiting for a try in flight from their address to end."""
        with self._changed:
            return self._waiting

    def __len__(self) -> int:
        """How many addresses are tracked."""
        with self._changed:
            return len(self._addresses)

    def _age(self, entry: _Address, now: float) -> None:
        failures = entry.failures
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()

    def _forget_if_idle(self, address: str, entry: _Address, now: float) -> None:
        if not entry.failures and not entry.in_flight and entry.reported_until <= now:
            del self._addresses[address]

    def _refusal(self, entry: _Address, now: float) -> Refusal:
        retry_after = max(1, math.ceil(entry.failures[0] + self.window_seconds - now))
        first = entry.reported_until <= now
        if first:
            entry.reported_until = now + self.window_seconds
        return Refusal(retry_after, first)

    def _evict(self) -> None:
        while len(self._addresses) > self.max_clients:
            self._addresses.popitem(last=False)
