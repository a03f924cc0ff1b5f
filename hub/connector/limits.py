"""Answers read within bounds: a deadline for the whole request and a size limit.

httpx's ``timeout`` bounds each wait for the next bytes, not a request in all, and httpx
reads a body whole; an authority that trickles an endless answer, or sends a huge one,
would hold a sync or fill its memory. :class:`~hub.connector.http.JsonApi` (and the OAuth
flow, :mod:`hub.connector.auth`) read every answer through these: streamed, cut off at
:data:`MAX_BODY_BYTES` and at the request's deadline (:data:`DEADLINE_FACTOR` x
``timeout_seconds``). Written by hand: httpx offers neither a total deadline nor a body
limit, and these are a few lines over its streaming interface.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar

import httpx

from hub.connector.errors import ConnectorError, TransientConnectorError, UnusableAnswerError

MAX_BODY_BYTES = 32 * 1024 * 1024
"""The largest answer accepted (after decompression): a page of records is far smaller."""

DEADLINE_FACTOR = 3.0
"""One request (its OAuth token request included) must be answered in full within this
many times ``timeout_seconds``; the timeout itself bounds each wait for the next bytes."""

ERROR_BODY_BYTES = 64 * 1024
"""An error answer's body is read (and thrown away) up to this size, so the kept-alive
connection can serve the next request; a larger one is cut off with the connection."""

# Headers that describe the wire form of a body already decoded here.
_WIRE_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})

# The deadline (time.monotonic()) of the request this thread is making through JsonApi;
# the OAuth flow reads it for the token request it makes on the way.
DEADLINE: ContextVar[float | None] = ContextVar("evi_connector_deadline", default=None)


def request_deadline(timeout: httpx.Timeout | Mapping[str, float | None]) -> float:
    """Seconds one request may take in all: :data:`DEADLINE_FACTOR` × its longest timeout
    (an ``httpx.Timeout``, or the ``timeout`` extension of a request)."""
    values = timeout.as_dict() if isinstance(timeout, httpx.Timeout) else timeout
    limits = [t for t in values.values() if t]
    return DEADLINE_FACTOR * (max(limits) if limits else 10.0)


def current_deadline(request: httpx.Request) -> float:
    """The deadline (``time.monotonic()``) of the request being made: the one
    :class:`JsonApi` set for this thread, else one from ``request``'s own timeouts."""
    deadline = DEADLINE.get()
    if deadline is not None:
        return deadline
    return time.monotonic() + request_deadline(request.extensions.get("timeout") or {})


def content_length(response: httpx.Response) -> int | None:
    """The declared ``Content-Length`` (``None`` when absent or unreadable)."""
    declared = response.headers.get("content-length", "").strip()
    if not (declared.isascii() and declared.isdigit()):
        return None
    return int(declared) if len(declared) < 19 else sys.maxsize


def _size(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MiB" if n % mib == 0 else f"{n // 1024} KiB"


def too_large(connector: str, what: str, limit: int) -> UnusableAnswerError:
    return UnusableAnswerError(
        connector,
        f"the authority's answer to {what} is larger than {_size(limit)}; nothing from it "
        "was used (lower page_size if the connector has one, or ask the authority)",
    )


def too_slow(connector: str, request: httpx.Request, seconds: float) -> TransientConnectorError:
    where = f"{request.url.scheme}://{request.url.netloc.decode()}"
    return TransientConnectorError(
        connector,
        f"{where} did not finish answering {request.method} {request.url.path} within "
        f"{seconds:.0f} s ({DEADLINE_FACTOR:g} × timeout_seconds)",
    )


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/…+json`` (parameters such as charset aside)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,40}/[a-z0-9][a-z0-9.+-]{0,60}")


def media_type(content_type: str | None) -> str:
    """The media type for a message: shown only if it looks like one (it is the
    authority's text, and messages never repeat what an authority sent otherwise)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media:
        return "no content type"
    return media if _MEDIA_TYPE.fullmatch(media) else "another content type"


def drain(response: httpx.Response, deadline: float) -> None:
    """Read a small error answer to its end so its connection can be reused; leave a large
    or slow one (closing the response then drops the connection)."""
    if response.is_stream_consumed:
        return  # read already (a transport that buffers, as the in-process one)
    declared = content_length(response)
    if declared is not None and declared > ERROR_BODY_BYTES:
        return
    seen = 0
    try:
        for chunk in response.iter_raw():
            seen += len(chunk)
            if seen > ERROR_BODY_BYTES or time.monotonic() > deadline:
                return
    except httpx.HTTPError:
        return


def buffered(response: httpx.Response, body: bytes) -> httpx.Response:
    """A plain response holding ``body`` (already decoded) and the answer's headers."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _WIRE_HEADERS]
    extensions = {
        k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")
    }
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=extensions,
    )


class CappedStream(httpx.SyncByteStream):
    """A response stream cut off at ``limit`` bytes or at ``deadline``: for an answer httpx
    reads itself (one an auth flow sees), which :meth:`JsonApi.request` cannot stream."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        *,
        limit: int,
        deadline: float,
        too_large: Callable[[], ConnectorError],
        too_slow: Callable[[], ConnectorError],
    ) -> None:
        self._inner = inner
        self._limit = limit
        self._deadline = deadline
        self._too_large = too_large
        self._too_slow = too_slow

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise self._too_large()
            if time.monotonic() > self._deadline:
                raise self._too_slow()
            yield chunk

    def close(self) -> None:
        self._inner.close()
