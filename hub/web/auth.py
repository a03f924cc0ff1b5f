"""Who is asking: the user behind a request's token, and the roles a route requires.

A token comes in ``Authorization: Bearer <token>`` (the JSON API) and is looked up by its
SHA-256 (:func:`hub.web.users.authenticate`) on every request: a token that was replaced,
or whose user was disabled, stops working at once. The pages are reached with the session
cookie that ``POST /login`` sets (HttpOnly, SameSite=Strict, Secure): it holds a page
session's secret, looked up the same way (:func:`hub.web.page_sessions.session_user`), and
stops working when the session expires, its user signs out, is disabled or gets a new
token. A request with a bearer token is judged by the token alone.

A wrong bearer token is a guess at a token like a failed sign-in, and is treated as one
(:mod:`hub.web.throttle`, the app's ``state.sign_in_throttle``): it counts towards its
client address's failures, and is written to the ``hub.web.audit`` log with that address
(never the token). Past the limit, a request with a bearer token from that address is
answered 429 with ``Retry-After`` without its token being looked at, and the first such
answer in a window is in the audit log; so an address gets at most the throttle's ten
look-ups of a wrong token in five minutes, by sign-in and bearer token together, and the
audit log at most that many lines about it and one about the refusals.

Routes declare what they need::

    @router.get("/api/…")
    def handler(user: Annotated[WebUser, Depends(require_role(Role.CASEWORKER))]) -> …:

No token, or one that belongs to no active user: 401. A user whose role is not among
those the route requires: 403.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from hub.context import Hub
from hub.web.errors import Forbidden, NotAuthenticated
from hub.web.page_sessions import session_user
from hub.web.throttle import Refusal, SignInThrottle
from hub.web.users import Role, WebUser, authenticate

audit = logging.getLogger("hub.web.audit")

SESSION_COOKIE = "__Host-evi_session"
"""The page session's cookie. The ``__Host-`` prefix makes browsers accept it only with
Secure, Path=/ and no Domain, so a site on another subdomain of the organisation cannot
set or overwrite it (no session fixation across subdomains)."""

PLAIN_SESSION_COOKIE = "evi_session"
"""Its name when the app runs with ``secure_cookies=False`` (tests over plain HTTP to a
host other than localhost), where browsers would refuse the prefix."""


def session_cookie(request: Request) -> str:
    """The session cookie's name for this app."""
    return SESSION_COOKIE if request.app.state.secure_cookies else PLAIN_SESSION_COOKIE


def get_hub(request: Request) -> Hub:
    """The hub the app was created with (see :func:`hub.web.app.create_app`)."""
    hub: Hub = request.app.state.hub
    return hub


def client_address(request: Request) -> str:
    """The client's address: the proxy's ``X-Forwarded-For`` when `evi web serve` trusts
    the proxy (``[web] trusted_proxies``), else the connection's."""
    return request.client.host if request.client else "an unknown address"


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated("send the token as 'Authorization: Bearer <token>'")
    return value.strip()


def current_user(request: Request) -> WebUser:
    """The active user whose token or page session came with the request; 401 otherwise
    (429 for a bearer token from an address with too many failures)."""
    hub = get_hub(request)
    token = _bearer_token(request)
    if token is not None:
        user = _token_user(request, hub, token)
    else:
        secret = request.cookies.get(session_cookie(request))
        if not secret:
            raise NotAuthenticated(
                "sign in: send 'Authorization: Bearer <token>', or sign in on the /login page"
            )
        in_session = session_user(hub, secret)
        if in_session is None:
            raise NotAuthenticated(
                "your session has ended (signed out, expired after a working day, or your "
                "access changed); sign in again on the /login page"
            )
        user = in_session
    request.state.user = user
    return user


def _token_user(request: Request, hub: Hub, token: str) -> WebUser:
    """The active user holding the bearer ``token``, through the sign-in throttle: a wrong
    token counts as a failure of the client's address and is in the audit log."""
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    client = client_address(request)
    found = throttle.look_up(client, lambda: authenticate(hub, token))
    if isinstance(found, Refusal):  # the token was not looked at
        if found.first_in_window:
            window = math.ceil(throttle.window_seconds / 60)
            audit.warning(
                "bearer tokens from %s refused for %d s: %d failed within %d minutes "
                "(not logged again for %d minutes)",
                client,
                found.retry_after,
                throttle.max_failures,
                window,
                window,
            )
        raise HTTPException(
            429,
            f"too many failed sign-ins and wrong tokens from this address; try again in "
            f"{found.retry_after} s",
            headers={"Retry-After": str(found.retry_after)},
        )
    if found is None:
        audit.warning("bearer token refused from %s: not the token of an active user", client)
        raise NotAuthenticated(
            "this token is not valid (unknown, replaced, or its user is disabled); ask an "
            "administrator for a new one (`evi users token NAME`)"
        )
    return found


HubDep = Annotated[Hub, Depends(get_hub)]
"""A route parameter of this type gets the hub the app was created with."""

CurrentUser = Annotated[WebUser, Depends(current_user)]
"""A route parameter of this type gets the signed-in user (any role)."""


def require_role(*roles: Role) -> Callable[[WebUser], WebUser]:
    """A dependency giving the signed-in user if their role is one of ``roles``; 403 if not."""
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError("require_role() needs at least one role")
    names = " or ".join(sorted(r.value for r in allowed))

    def dependency(user: CurrentUser) -> WebUser:
        if user.role not in allowed:
            raise Forbidden(f"this needs the role {names}; you are signed in as {user.role.value}")
        return user

    return dependency
