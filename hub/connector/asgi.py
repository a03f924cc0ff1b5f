"""Run a connector's synchronous ``httpx.Client`` against an ASGI app in this process.

httpx ships :class:`httpx.ASGITransport` for *async* clients only, while connectors use a
plain ``httpx.Client`` (the sync job is synchronous). :class:`InProcessTransport` is the
small bridge, written here because neither httpx nor Starlette offers a public one
(Starlette's ``TestClient`` transport is private and re-raises server errors): it hands
each request to ``httpx.ASGITransport`` on an event loop in a helper thread (an anyio
blocking portal) and returns the buffered response.

It behaves like a server rather than a test harness: an exception in the app becomes a
500 response, and the request's read timeout is enforced (``httpx.ReadTimeout``), so the
same client code and the same error classification run in-process and over the network.
There is no TLS in-process; see docs/connectors.md for what that means for mTLS.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import anyio.from_thread
import httpx

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

# Headers that describe the wire encoding of the body we already decoded.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class InProcessTransport(httpx.BaseTransport):
    """A sync httpx transport that serves every request from ``app`` in this process."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
        self._lock = threading.Lock()
        self._stack: contextlib.ExitStack | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def _get_portal(self) -> anyio.from_thread.BlockingPortal:
        with self._lock:
            if self._portal is None:
                stack = contextlib.ExitStack()
                self._portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
                self._stack = stack
            return self._portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        read_timeout = timeouts.get("read")

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
            with anyio.fail_after(read_timeout) if read_timeout else contextlib.nullcontext():
                response = await self._asgi.handle_async_request(inner)
                body = await response.aread()
            return response.status_code, response.headers.raw, body

        try:
            status, raw_headers, body = self._get_portal().call(call)
        except TimeoutError:
            raise httpx.ReadTimeout(
                "the in-process app did not answer in time", request=request
            ) from None
        headers = [(k, v) for k, v in raw_headers if k.decode().lower() not in _WIRE_HEADERS]
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        with self._lock:
            if self._stack is not None:
                self._stack.close()
            self._stack = None
            self._portal = None
