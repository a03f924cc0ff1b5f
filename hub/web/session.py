"""Signing in and out of the pages, and the start page.

``POST /login`` takes the token from a form (never from the URL) and, if it belongs to an
active user, opens a page session (:mod:`hub.web.page_sessions`) and sets its secret, not
the token, as the session cookie: HttpOnly (no script can read it), SameSite=Strict (no
other site can make the browser send it, which also keeps other sites from posting the
pages' forms) and Secure (sent over HTTPS only; browsers treat http://127.0.0.1 and
http://localhost as secure too), named with the ``__Host-`` prefix so that no other
subdomain can set or replace it (:data:`~hub.web.auth.SESSION_COOKIE`). The session
lasts a working day (:data:`~hub.web.page_sessions.SESSION_SECONDS`) even if the
browser stays open; ``POST
/logout`` ends it on the server as well as in the browser, and replacing the user's token
or disabling them ends all their sessions at once.

Signing in, a refused sign-in and signing out are written to the ``hub.web.audit`` log
(on by default under `evi web serve`): who, never a token or session secret; a refused
sign-in names only the client address.

Repeated failures from one client address are slowed (:mod:`hub.web.throttle`, the app's
``state.sign_in_throttle``, which counts wrong bearer tokens too: :mod:`hub.web.auth`):
past the limit, ``POST /login`` answers 429 with the sign-in page, a message saying how
long to wait and ``Retry-After``, without looking at the token; the first such answer in
a window is in the audit log (the address only). The try is checked and reserved in one
step before the token is looked up, so sign-ins sent all at once get no more look-ups
than the limit.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.context import Hub
from hub.web.auth import CurrentUser, client_address, get_hub, session_cookie
from hub.web.errors import local_path
from hub.web.forms import read_form
from hub.web.i18n import tr, tr_n
from hub.web.openapi import PAGE, REDIRECT, form_body
from hub.web.page_sessions import SESSION_SECONDS, end_session, open_session
from hub.web.templating import render
from hub.web.throttle import Refusal, SignInThrottle

router = APIRouter()
audit = logging.getLogger("hub.web.audit")


def _throttled(request: Request, refusal: Refusal) -> Response:
    """The sign-in page again, 429: too many failures from this address, wait this long."""
    if refusal.first_in_window:
        throttle: SignInThrottle = request.app.state.sign_in_throttle
        window = math.ceil(throttle.window_seconds / 60)
        audit.warning(
            "sign-ins from %s refused for %d s: %d failed within %d minutes "
            "(not logged again for %d minutes)",
            client_address(request),
            refusal.retry_after,
            throttle.max_failures,
            window,
            window,
        )
    minutes = math.ceil(refusal.retry_after / 60)
    message = tr_n(
        request,
        "Too many failed sign-ins from this address. Try again in %(num)d minute.",
        "Too many failed sign-ins from this address. Try again in %(num)d minutes.",
        minutes,
    )
    response = render(request, "login.html", {"message": message}, status=429)
    response.headers["retry-after"] = str(refusal.retry_after)
    return response


@router.get("/login", response_class=HTMLResponse, responses=PAGE)
def login_page(request: Request) -> Response:
    return render(request, "login.html")


@router.post(
    "/login",
    response_class=HTMLResponse,
    status_code=303,
    responses={
        **REDIRECT,
        401: {"description": "not the token of an active user: the sign-in form again"},
        429: {"description": "too many failed sign-ins from this address; `Retry-After`"},
    },
    openapi_extra=form_body("token", "next", required=["token"]),
)
def login(
    request: Request,
    form: Annotated[dict[str, str], Depends(read_form)],
    hub: Annotated[Hub, Depends(get_hub)],
) -> Response:
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    client = client_address(request)
    opened = throttle.look_up(client, lambda: open_session(hub, form.get("token", "")))
    if isinstance(opened, Refusal):
        return _throttled(request, opened)  # the token was not looked at
    if opened is None:
        audit.warning("sign-in refused from %s: not the token of an active user", client)
        return render(
            request,
            "login.html",
            {
                "message": tr(
                    request,
                    "That token is not valid (unknown, replaced, or its user is disabled).",
                ),
                "next": form.get("next") if local_path(form.get("next", "")) else None,
            },
            status=401,
        )
    user = opened.user
    audit.info("signed in: %s (%s, %s) from %s", user.name, user.party, user.role.value, client)
    back = form.get("next", "")
    response = RedirectResponse(back if local_path(back) else "/", status_code=303)
    response.set_cookie(
        session_cookie(request),
        opened.secret,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        path="/",
        max_age=SESSION_SECONDS,
    )
    return response


@router.post("/logout", response_class=HTMLResponse, status_code=303, responses=REDIRECT)
def logout(request: Request, hub: Annotated[Hub, Depends(get_hub)]) -> Response:
    user = end_session(hub, request.cookies.get(session_cookie(request), ""))
    if user is not None:
        audit.info("signed out: %s", user.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        session_cookie(request),
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        path="/",
    )
    return response


@router.get("/", response_class=HTMLResponse, responses=PAGE)
def home(request: Request, user: CurrentUser) -> Response:
    return render(request, "home.html", user=user)
