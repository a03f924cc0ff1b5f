"""The caseworker's look-up of one person: JSON API and pages.

Both call :func:`hub.casework.status.consolidated_status` with the signed-in user as the
viewer: their name is the actor in the log, their party (from their web user, never from
the request) is the recipient the gate decides about. So a caseworker at af sees what the
person's consent lets af see, and every look-up is in the log (docs/casework.md).

The personnummer comes only in a POST body (``POST /api/participants/status``, the
``/participants`` form), never in a URL; the answer names the person by pseudonym. When
the user's party may see nothing of the person, the answer (404, the same body and page)
is the one a number the hub does not know gets: whether someone is a client of the joint
team is itself secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.casework.status import NothingToShow, StatusView, Viewer, consolidated_status
from hub.clock import SWEDEN
from hub.context import Hub
from hub.errors import EviError, InputError, StorageError
from hub.model.identity import identity_input
from hub.web.auth import HubDep, require_role
from hub.web.errors import page_message
from hub.web.forms import read_form
from hub.web.i18n import N_
from hub.web.openapi import NOT_FOUND, PAGE, form_body
from hub.web.templating import NavLink, render
from hub.web.users import Role, WebUser

router = APIRouter()

NAV = (NavLink("Person status", "/participants", frozenset({Role.CASEWORKER})),)

Caseworker = Annotated[WebUser, Depends(require_role(Role.CASEWORKER))]


class LookUp(BaseModel):
    """Whom to look up: their personnummer or samordningsnummer."""

    model_config = ConfigDict(extra="forbid")

    pnr: str = Field(min_length=1, max_length=20)


class NothingToShowHere(NothingToShow):
    """:class:`NothingToShow` with what the page says first, in the page's language."""

    page_lead = N_("Nothing the hub holds about that number may be shown to you.")


def _look_up(hub: Hub, user: WebUser, pnr: str) -> StatusView:
    viewer = Viewer(actor=user.actor, party=user.party, role=Role.CASEWORKER.value)
    try:
        return consolidated_status(hub, identity_input(pnr, "pnr"), viewer)
    except NothingToShow:
        raise NothingToShowHere(viewer.party) from None


@router.post("/api/participants/status", responses=NOT_FOUND)
def status(body: LookUp, user: Caseworker, hub: HubDep) -> dict[str, Any]:
    """The person's consolidated status as the user's party may see it (logged)."""
    return _look_up(hub, user, body.pnr).model_dump(mode="json")


@router.get("/participants", response_class=HTMLResponse, responses=PAGE)
def look_up_page(request: Request, user: Caseworker) -> Response:
    return render(request, "casework.html", {"view": None}, user=user)


def person_page(
    request: Request,
    form: dict[str, str],
    user: WebUser,
    template: str,
    build: Callable[[str], dict[str, Any]],
    empty: dict[str, Any],
) -> Response:
    """A page about the person whose number the form gives: ``template`` with what
    ``build(pnr)`` returns, or with ``empty`` and the error's message (and status)."""
    pnr = form.get("pnr")
    try:
        if not pnr:
            raise InputError("pnr: give the person's personnummer or samordningsnummer")
        page = build(pnr)
    except StorageError:  # the operator's words (a host, pg_locks) go to the log: a 503
        raise
    except EviError as exc:
        lead = getattr(exc, "page_lead", None)
        message = page_message(request, exc.http_status, exc.message, lead=lead)
        page = {**empty, "message": message}
        return render(request, template, page, status=exc.http_status, user=user)
    return render(request, template, page, user=user)


@router.post(
    "/participants",
    response_class=HTMLResponse,
    responses={**PAGE, **NOT_FOUND},
    openapi_extra=form_body("pnr", required=["pnr"]),
)
def status_page(
    request: Request,
    user: Caseworker,  # before the form: signed in and allowed, or nothing is read
    form: Annotated[dict[str, str], Depends(read_form)],
    hub: HubDep,
) -> Response:
    def build(pnr: str) -> dict[str, Any]:
        view = _look_up(hub, user, pnr)
        return {"view": view, "seen_at": view.at.astimezone(SWEDEN)}

    return person_page(request, form, user, "casework.html", build, {"view": None})
