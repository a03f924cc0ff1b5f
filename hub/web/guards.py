"""Requests refused before any route sees them: from another site, or too large.

**Another site** (:func:`same_origin_only`, a dependency of every route). The session
cookie is ``SameSite=Strict``, which keeps it off requests from *other sites*, but a site
is the registrable domain: every page of ``*.kommun.se`` (an intranet, an e-service with a
flaw) is the same site as the hub and would get the cookie sent along with a form it posts
to the hub. So requests are judged by
where they come from, as the browser reports it (Fetch Metadata, which a page cannot
forge; the "resource isolation policy" of https://web.dev/articles/fetch-metadata):

* ``Sec-Fetch-Site: same-origin`` (the hub's own pages) or ``none`` (typed, bookmarked):
  allowed;
* from another origin (``same-site`` or ``cross-site``), only a plain GET navigation (a
  link) to a page path *without a query string* is allowed; a link to ``/api/…`` or to
  any URL with a query, any POST (a form, sign-in included), and any embedded or scripted
  request is refused (403). The session cookie goes along with a link from another host
  of the same site, and a query is what makes a page act (``/stats?from=…&to=…`` makes a
  report and logs a gate decision per person, ``/api/log/entries?…`` a logged search), so
  a link from elsewhere only opens a page as it is before anyone fills it in. Refused
  rather than redirected to the bare path: one rule, and nothing happens that the user
  did not start from the hub's own page. A bookmark or a typed URL (``none``) keeps its
  query;
* a request without ``Sec-Fetch-Site`` (a program: curl, an API client, a monitor; or a
  very old browser) is refused only if it is a POST with an ``Origin`` that is not the
  hub's own.

A bearer token cannot be attached by another site, so API clients are not affected.

**Too large** (:class:`BodyLimit`): a body over :data:`MAX_BODY_BYTES` is refused with 413
as soon as that is known (its ``Content-Length``, or the bytes read so far), before a
route reads it into memory, signed in or not.

Written by hand: these are a few lines each over the ASGI interface, and no maintained
Starlette package implements the Fetch Metadata policy (starlette-csrf and similar use a
double-submit token, which the pages, having no script, would have to carry in every form).
"""

from __future__ import annotations

import json
from typing import Final

from fastapi import Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import EviError
from hub.web.i18n import N_
from hub.web.security import add_security_headers

MAX_BODY_BYTES: Final = 1_048_576
"""Largest request body: the pages' forms are a few hundred bytes, the largest JSON body
(a retry of 10,000 dead letters by id) about 100 kB."""

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_OWN: Final = frozenset({"same-origin", "none"})


def from_elsewhere(scope: Scope) -> str | None:
    """Why this request, coming from another origin, is refused; ``None`` if it is not."""
    headers = Headers(scope=scope)
    method = scope["method"]
    site = headers.get("sec-fetch-site")
    if site is None:
        origin = headers.get("origin")
        if method in SAFE_METHODS or origin is None or origin == _own_origin(scope, headers):
            return None
        return "it was sent from another origin"
    if site in _OWN:
        return None
    navigation = headers.get("sec-fetch-mode") == "navigate" and headers.get("sec-fetch-dest") in (
        None,
        "document",
    )
    elsewhere = f"another {'site' if site == 'cross-site' else 'origin'}"
    if not (method in SAFE_METHODS and navigation):
        return f"it was sent from {elsewhere}"
    path: str = scope["path"]
    if path == "/api" or path.startswith("/api/"):
        return f"a link from {elsewhere} may not open the API"
    if scope.get("query_string"):
        return f"a link from {elsewhere} may open a page but not with a query"
    return None


def _own_origin(scope: Scope, headers: Headers) -> str:
    # The scheme as the TLS proxy reports it (uvicorn's proxy headers), the host as sent.
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"


class FromElsewhere(EviError):
    """A request :func:`from_elsewhere` refuses."""

    http_status = 403
    page_lead = N_("This was sent from another site; it was not done.")


def same_origin_only(request: Request) -> None:
    """An app-wide dependency: raise :class:`FromElsewhere` for what :func:`from_elsewhere`
    refuses, before any route's own dependencies (sign-in, reading a form) run."""
    if (why := from_elsewhere(request.scope)) is not None:
        raise FromElsewhere(f"refused: {why}; open the hub's own page and do it from there")


class BodyLimit:
    """ASGI middleware: refuse a request body over :data:`MAX_BODY_BYTES` (413, in JSON:
    before the app, its pages and sessions)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is larger than {self.limit} bytes"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.limit:
            await _refuse(send, 413, message)
            return
        seen = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            received = await receive()
            if received["type"] == "http.request" and not refused:
                seen += len(received.get("body", b""))
                if seen > self.limit:
                    # Answer now; the app is told the client went away, and whatever it
                    # sends after that is dropped.
                    refused = True
                    if not started:
                        await _refuse(send, 413, message)
            return {"type": "http.disconnect"} if refused else received

        async def watching_send(sent: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or sent["type"] == "http.response.start"
            await send(sent)

        await self.app(scope, counting_receive, watching_send)


async def _refuse(send: Send, status: int, message: str) -> None:
    """A plain JSON error: this refusal comes before the app's pages and sessions."""
    body = json.dumps({"detail": message}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    add_security_headers(MutableHeaders(scope=start))
    await send(start)
    await send({"type": "http.response.body", "body": body})
