"""Signing in and out of the pages, and the start page.

``POST /login`` takes the token from a form (never from the URL) and, if it belongs to an
active user, sets it as the session cookie: HttpOnly (no script can read it),
SameSite=Strict (no other site can make the browser send it, which also keeps other sites
from posting the pages' forms) and Secure (sent over HTTPS only; browsers treat
http://127.0.0.1 and http://localhost as secure too). The cookie holds the token itself,
so replacing the token or disabling the user ends every session at once; it lasts a working
day (:data:`SESSION_SECONDS`) even if the browser stays open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from hub.context import Hub
from hub.web.auth import SESSION_COOKIE, CurrentUser, get_hub
from hub.web.forms import read_form
from hub.web.templating import render
from hub.web.users import authenticate

router = APIRouter()

SESSION_SECONDS = 8 * 3600
"""How long a page session lasts before the token must be given again."""


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html")


@router.post("/login")
def login(
    request: Request,
    form: Annotated[dict[str, str], Depends(read_form)],
    hub: Annotated[Hub, Depends(get_hub)],
) -> Response:
    user = authenticate(hub, form.get("token", ""))
    if user is None:
        return render(
            request,
            "login.html",
            {"message": "that token is not valid (unknown, replaced, or its user is disabled)"},
            status=401,
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        form["token"],
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        path="/",
        max_age=SESSION_SECONDS,
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        path="/",
    )
    return response


@router.get("/")
def home(request: Request, user: CurrentUser) -> Response:
    return render(request, "home.html", user=user)
