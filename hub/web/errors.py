"""The web edge's translation of errors into responses: the one place it happens.

* :class:`hub.errors.EviError` -> the error's ``http_status`` and its one-line message.
* a request FastAPI cannot validate -> 422 naming the fields, never the values given
  (a value may be a personnummer; see :mod:`hub.model.problems`).
* a :class:`hub.errors.StorageError` -> 503 saying only that the database is unavailable;
  its message (host, user, database, the driver's words) goes to the server log. So is a
  database gone away (a restart, a fail-over, a full disk) that reached the edge without
  a unit of work to put it in words (:func:`hub.store.db.database_away`): a 503, never
  the 500 below.
* anything else -> 500 "internal error" (:class:`InternalErrors`); the server log gets the
  exception's type, and its traceback only at debug level (an exception's text may quote
  data).

API paths (``/api/…``) answer ``{"detail": message}``; pages answer the error page, which
leads with what the status means in the page's language (:data:`PAGE_LEADS`, or the
error's own ``page_lead``) and then
gives the message (in English: the hub's messages are shared with the CLI and the API).
No response ever carries a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import EviError, StorageError
from hub.ledger.event import IDENTITY_NUMBER
from hub.model.problems import problem
from hub.store.db import database_away
from hub.web.i18n import N_, tr
from hub.web.security import masked_path

log = logging.getLogger(__name__)

PAGE_LEADS = {
    403: N_("Your role may not use this page."),
    404: N_("There is no such page or item."),
    405: N_("There is no such page or item."),  # e.g. /logout typed into the address bar
    409: N_("That cannot be done now."),
    413: N_("What you sent is too large."),
    422: N_("Check what you entered."),
    429: N_("Too many attempts; wait a while and try again."),
    500: N_("Something went wrong on the server; the server's log says what."),
    503: N_("The service cannot answer right now; try again in a while."),
}
"""What an error status means, at the top of the error page (500's for any other)."""


class NotAuthenticated(EviError):
    """No token, or one that belongs to no active user."""

    http_status = 401


class Forbidden(EviError):
    """A signed-in user whose role may not use this page or endpoint."""

    http_status = 403


def local_path(text: str) -> bool:
    """Whether ``text`` is a path on this server to send a browser back to after signing in
    (``/stats?from=…``): never another site (``//host``, ``https://…``, a backslash some
    browsers read as a slash), never the sign-in itself."""
    return (
        text.startswith("/")
        and not text.startswith("//")
        and "\\" not in text
        and not any(ord(c) < 0x20 for c in text)
        and not text.startswith(("/login", "/logout"))
        and len(text) <= 2000
        and not IDENTITY_NUMBER.search(text)  # never written back into a page
    )


def wants_json(request: Request) -> bool:
    """Whether an error is answered as ``{"detail": …}``: on the API, and to a program that
    sent its bearer token (a browser never does), e.g. fetching ``/stats.csv``."""
    if request.url.path.startswith("/api/") or request.url.path == "/healthz":
        return True
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def error_response(
    request: Request, status: int, message: str, *, lead: str | None = None
) -> Response:
    """The response for an error: JSON for the API, the error page otherwise (``lead``: what
    the page says first, if not what the status means)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    from hub.web.auth import session_cookie
    from hub.web.templating import render

    if status == 401:  # the sign-in form, in place, in the page's language
        if request.cookies.get(session_cookie(request)):
            note = tr(
                request,
                "Your session has ended (signed out, after a working day, or your access "
                "changed). Sign in again.",
            )
        else:
            note = tr(request, "Sign in to see this page.")
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        after = {"next": back} if request.method == "GET" and local_path(back) else {}
        return render(request, "login.html", {"message": note, **after}, status=401)
    user = getattr(request.state, "user", None)
    page = {"status": status, "message": page_message(request, status, message, lead=lead)}
    return render(request, "error.html", page, status=status, user=user)


def page_message(request: Request, status: int, message: str, *, lead: str | None = None) -> str:
    """An error as a page shows it: what the status means (or ``lead``) in the page's
    language, then the hub's message (English, as the CLI and the API give it)."""
    return f"{tr(request, lead or PAGE_LEADS.get(status, PAGE_LEADS[500]))} ({message})"


UNAVAILABLE = "the database is not available; the server's log says why"


def _unavailable(request: Request, message: str) -> Response:
    """503: the database is not available. ``message`` may name the database's host, user
    and name and the driver's words: for the operator's log, not for whoever asks
    (/healthz needs no sign-in)."""
    path = masked_path(request.url.path)
    log.error("database error in %s %s: %s", request.method, path, message)
    return error_response(request, StorageError.http_status, UNAVAILABLE)


async def _evi_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EviError)
    if isinstance(exc, StorageError):
        return _unavailable(request, exc.message)
    return error_response(
        request, exc.http_status, exc.message, lead=getattr(exc, "page_lead", None)
    )


UNREADABLE_BODY = (
    "invalid request: body: not valid JSON (not UTF-8, nested too deeply, or a number too "
    "long); send a JSON object in UTF-8"
)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI's answer to a JSON body its parser gave up on with something other than
        # a syntax error (which is already a 422): invalid UTF-8, nesting too deep for the
        # parser's recursion, an integer over Python's 4300 digits. The same 422 as any
        # other body that is not valid JSON, saying what to fix.
        return error_response(request, 422, UNREADABLE_BODY)
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        takes = " or ".join(m for m in allowed if m != "HEAD") or "no method"
        response = error_response(request, 405, f"this path takes only {takes}")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    response = error_response(request, exc.status_code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers.setdefault(name, value)
    return response


def every_route(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """``routes`` and those of the routers included among them (FastAPI wraps an included
    router in one route that keeps it as ``original_router``; the hub's have no prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from every_route(included.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path. Starlette's own ``Allow`` names only the
    first route it tried (``GET`` for ``OPTIONS /login``, which takes ``POST`` too)."""
    methods: set[str] = set()
    # matched as the app saw the request (inside /static, root_path has grown by the mount)
    root = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    scope = {**request.scope, "root_path": root}
    for route in every_route(request.app.router.routes):
        match, _ = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Route) and route.methods:
            methods |= route.methods
        elif isinstance(route, Mount):  # /static: files, as StaticFiles serves them
            methods |= {"GET", "HEAD"}
    return sorted(methods)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    lines = sorted({problem(err, skip=("body", "query", "path")) for err in exc.errors()})
    return error_response(request, 422, "invalid request: " + "; ".join(lines))


def _internal_error(request: Request, exc: Exception) -> Response:
    path = masked_path(request.url.path)
    log.error("internal error in %s %s (%s)", request.method, path, type(exc).__name__)
    log.debug("traceback of that internal error", exc_info=exc)
    return error_response(request, 500, "internal error; the server log names its type")


class InternalErrors:
    """ASGI middleware: any other exception becomes the 500 answer here, and goes no further
    (but a client that went away before its body arrived is no error of the server's, and
    a database gone away outside a unit of work is the 503 of a :class:`StorageError`).

    Starlette's own last resort (an ``Exception`` handler) answers too, but then raises the
    exception again for the server, and uvicorn logs it with its traceback and text, which
    may quote data. Placed inside :class:`~hub.web.security.SecurityHeaders`, so the answer
    gets the same headers as any other."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except ClientDisconnect:
            # The body stopped coming: the client went away, or BodyLimit cut it off and
            # answered 413 itself. Nobody is left to answer, and nothing went wrong here.
            path = masked_path(scope["path"])
            log.debug("the client went away during %s %s", scope["method"], path)
        except Exception as exc:
            away = database_away(exc)
            if away is not None:
                response = _unavailable(Request(scope), away)
            else:
                response = _internal_error(Request(scope), exc)
            if not started:
                await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """The handlers above, and :class:`InternalErrors` (add it before SecurityHeaders)."""
    app.add_exception_handler(EviError, _evi_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(InternalErrors)
