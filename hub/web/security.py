"""Headers every response carries, and an access log that never prints a query string.

The pages show personal data (pseudonyms, who saw whom), so nothing may be cached
(``no-store``), framed, sniffed or given away in a ``Referer``. The policy allows only
this origin's own files: the templates use no inline script or style and no outside
assets.

Uvicorn's access log prints the path *and the query string*, as sent; `evi web serve`
gives it :class:`PathOnly`, which keeps the line, drops the query and masks what looks
like an identity number in the path. Identities are never put in a path or query in the
first place (endpoints that take one use POST), but someone may type one into a path
(``GET /participants/199001012385``, a 404), and a query string may hold a pseudonym or a
search filter, which is not the access log's business.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.ledger.event import IDENTITY_NUMBER

SECURITY_HEADERS: Final = {
    "cache-control": "no-store",
    "pragma": "no-cache",
    "content-security-policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
        "object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

HSTS: Final = ("strict-transport-security", "max-age=31536000")
"""Sent when the request came over HTTPS (as the TLS proxy reports it): browsers then
refuse plain HTTP to this host for a year. Never sent over plain HTTP, where it means
nothing and would only confuse a test set-up on 127.0.0.1."""


def add_security_headers(headers: MutableHeaders) -> None:
    """Set every header of :data:`SECURITY_HEADERS` (replacing what a handler set)."""
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                add_security_headers(headers)
                if secure:
                    headers[HSTS[0]] = HSTS[1]
            await send(message)

        await self.app(scope, receive, send_with_headers)


MASK: Final = "[masked]"
"""What the access log shows instead of an identity number in a path."""

_DIGIT = r"(?:\d|%3\d)"
_LOGGED_IDENTITY_NUMBER: Final = re.compile(
    rf"{_DIGIT}*{_DIGIT}{{6}}(?:[-+]|%2[bBdD])?{_DIGIT}{{4}}{_DIGIT}*"
)
""":data:`hub.ledger.event.IDENTITY_NUMBER` (six digits, perhaps ``-`` or ``+``, four
digits) as uvicorn logs a path, as it came: a digit may be percent-encoded (``%31``), and
so may the ``-`` or ``+``; the digits around the match go with it (the century of a
twelve-digit number)."""


def masked_path(path: str) -> str:
    """``path`` with every run matching the identity-number pattern (``199001012385``,
    ``19900101-2385``, ``900101-2385``, or the same percent-encoded) replaced by
    :data:`MASK`. Any run of ten digits or more is masked, whatever it was meant to be."""
    masked = _LOGGED_IDENTITY_NUMBER.sub(MASK, path)
    return IDENTITY_NUMBER.sub(MASK, masked)  # nothing left, should the pattern change


class PathOnly(logging.Filter):
    """A filter for uvicorn's access logger: the request line without its query string,
    and with identity numbers in the path masked (:func:`masked_path`).

    Uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with (client, method, path?query, version,
    status). A record of any other shape is dropped rather than risk printing a query.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str)):
            return False
        path = masked_path(args[2].split("?", 1)[0])
        record.args = (args[0], args[1], path, args[3], args[4])
        return True
