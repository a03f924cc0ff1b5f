"""Fault knobs as ASGI middleware: latency, 503s, 429 with Retry-After, stalls, bad JSON.

Faults are drawn from a generator seeded with the sandbox's seed, one draw per request,
so the same requests in the same order meet the same faults. ``fault_budget`` caps the
total. The ``/_sandbox`` endpoints are never faulted (tests and the demo read them).

A stall on a read happens before the app runs; a stall on a write happens *after* the app
has stored it, and the answer comes too late for the client: the classic "did my push
arrive?" case that idempotency keys exist for.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from hub.connector.sandbox import SandboxSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAIL, RATE_LIMIT, STALL, MALFORMED = "fail", "rate_limit", "stall", "malformed"


class Faults:
    """Decides, request by request, which fault (if any) to inject."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self._rng = random.Random(f"evi-faults:{settings.seed}")
        self._injected = 0
        self._lock = threading.Lock()

    def update(self, settings: SandboxSettings) -> None:
        with self._lock:
            self.settings = settings
            self._injected = 0

    def draw(self) -> str | None:
        with self._lock:
            s = self.settings
            budget_left = s.fault_budget is None or self._injected < s.fault_budget
            u = self._rng.random()
            if not budget_left:
                return None
            edge = 0.0
            for kind, rate in (
                (FAIL, s.fail_rate),
                (RATE_LIMIT, s.rate_limit_rate),
                (STALL, s.timeout_rate),
                (MALFORMED, s.malformed_rate),
            ):
                edge += rate
                if u < edge:
                    self._injected += 1
                    return kind
            return None


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FaultMiddleware:
    """Wraps a sandbox app and injects the faults :class:`Faults` draws."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        settings = self.faults.settings
        if settings.latency_ms:
            await anyio.sleep(settings.latency_ms / 1000)
        fault = self.faults.draw()
        if fault == FAIL:
            body = json.dumps({"error": "service temporarily unavailable"}).encode()
            await _send_json(send, 503, body, [])
        elif fault == RATE_LIMIT:
            headers = []
            if settings.retry_after_seconds:
                headers.append((b"retry-after", str(settings.retry_after_seconds).encode()))
            body = json.dumps({"error": "too many requests"}).encode()
            await _send_json(send, 429, body, headers)
        elif fault == MALFORMED:
            await _send_json(send, 200, b'{"truncated": [{"id": ', [])
        elif fault == STALL and scope["method"] == "GET":
            await anyio.sleep(settings.stall_seconds)
            await self.app(scope, receive, send)
        elif fault == STALL:
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            await anyio.sleep(settings.stall_seconds)
            for message in held:
                await send(message)
        else:
            await self.app(scope, receive, send)
