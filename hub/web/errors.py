"""The web edge's translation of errors into responses: the one place it happens.

* :class:`hub.errors.EviError` -> the error's ``http_status`` and its one-line message.
* a request FastAPI cannot validate -> 422 naming the fields, never the values given
  (a value may be a personnummer; see :mod:`hub.model.problems`).
* anything else -> 500 "internal error"; the server log gets the exception's type, and its
  traceback only at debug level (an exception's text may quote data).

API paths (``/api/…``) answer ``{"detail": message}``; pages answer the error page, which
leads with what the status means in the page's language (:data:`PAGE_LEADS`) and then
gives the message (in English: the hub's messages are shared with the CLI and the API).
No response ever carries a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.errors import EviError
from hub.model.problems import problem
from hub.web.i18n import N_, tr
from hub.web.security import HSTS, add_security_headers

log = logging.getLogger(__name__)

PAGE_LEADS = {
    403: N_("Your role may not use this page."),
    404: N_("There is no such page or item."),
    409: N_("That cannot be done now."),
    422: N_("Check what you entered."),
    500: N_("Something went wrong on the server; the server's log says what."),
}
"""What an error status means, at the top of the error page (500's for any other)."""


class NotAuthenticated(EviError):
    """No token, or one that belongs to no active user."""

    http_status = 401


class Forbidden(EviError):
    """A signed-in user whose role may not use this page or endpoint."""

    http_status = 403


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def error_response(request: Request, status: int, message: str) -> Response:
    """The response for an error: JSON for the API, the error page otherwise."""
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
        return render(request, "login.html", {"message": note}, status=401)
    user = getattr(request.state, "user", None)
    page = {"status": status, "message": page_message(request, status, message)}
    return render(request, "error.html", page, status=status, user=user)


def page_message(request: Request, status: int, message: str) -> str:
    """An error as a page shows it: what the status means in the page's language, then
    the hub's message (English, as the CLI and the API give it)."""
    return f"{tr(request, PAGE_LEADS.get(status, PAGE_LEADS[500]))} ({message})"


async def _evi_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EviError)
    return error_response(request, exc.http_status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    response = error_response(request, exc.status_code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers.setdefault(name, value)
    return response


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    lines = sorted({problem(err, skip=("body", "query", "path")) for err in exc.errors()})
    return error_response(request, 422, "invalid request: " + "; ".join(lines))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error in %s %s (%s)", request.method, request.url.path, type(exc).__name__)
    log.debug("traceback of that internal error", exc_info=exc)
    response = error_response(request, 500, "internal error; the server log names its type")
    # This response is sent by Starlette's outermost middleware, past SecurityHeaders.
    add_security_headers(response.headers)
    if request.url.scheme == "https":
        response.headers[HSTS[0]] = HSTS[1]
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EviError, _evi_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _internal_error)
