"""The privacy officer's extracts for a person's request: JSON API and pages.

* The register extract (GDPR article 15): everything stored about the person, from
  :func:`hub.casework.held.held_data`, the same use case as `evi participants extract`.
* The log extract: every transfer-log entry about the person, each with its inclusion
  proof against a checkpoint signed for it, from :func:`hub.ledger.service.extract`, the
  same use case as `evi log extract`.

Both are made with the signed-in user as the actor in the log. The personnummer comes only in
a POST body, never in a URL; the answer is the extract itself, for the officer to review
and hand over (docs/privacy.md), and like every answer it is marked ``no-store``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from hub.casework.held import HeldData, held_data
from hub.context import Hub
from hub.ledger import service as ledger_service
from hub.ledger.extract import Extract
from hub.model.identity import identity_input
from hub.web.auth import HubDep, require_role
from hub.web.casework import LookUp, person_page
from hub.web.forms import read_form
from hub.web.i18n import tr
from hub.web.openapi import NOT_FOUND, PAGE, form_body
from hub.web.templating import NavLink, render
from hub.web.users import Role, WebUser

router = APIRouter()

NAV = (NavLink("Register extract", "/extract", frozenset({Role.PRIVACY_OFFICER})),)

Officer = Annotated[WebUser, Depends(require_role(Role.PRIVACY_OFFICER))]


_NO_EXTRACT: dict[str, Any] = {"text": None, "kind": None}
"""The page's two forms with no extract under them."""


def _extract(hub: Hub, user: WebUser, pnr: str) -> HeldData:
    return held_data(hub, identity_input(pnr, "pnr"), user.actor)


def _log_extract(hub: Hub, user: WebUser, pnr: str) -> Extract:
    identity = identity_input(pnr, "pnr")
    return ledger_service.extract(hub, identity, user.actor, role=Role.PRIVACY_OFFICER.value)


@router.post("/api/log/extract", responses=NOT_FOUND)
def log_extract(body: LookUp, user: Officer, hub: HubDep) -> dict[str, Any]:
    """The person's log extract with proofs, as `evi log extract --format json` (logged as
    ``ledger_extract``)."""
    return _log_extract(hub, user, body.pnr).as_json()


@router.post("/api/participants/extract", responses=NOT_FOUND)
def extract(body: LookUp, user: Officer, hub: HubDep) -> dict[str, Any]:
    """Everything stored about the person (logged as ``subject_access``)."""
    return _extract(hub, user, body.pnr).as_json()


@router.get("/extract", response_class=HTMLResponse, responses=PAGE)
def extract_form(request: Request, user: Officer) -> Response:
    return render(request, "extract.html", _NO_EXTRACT, user=user)


@router.post(
    "/extract",
    response_class=HTMLResponse,
    responses={**PAGE, **NOT_FOUND},
    openapi_extra=form_body("pnr", required=["pnr"]),
)
def extract_page(
    request: Request,
    user: Officer,  # before the form: signed in and allowed, or nothing is read
    form: Annotated[dict[str, str], Depends(read_form)],
    hub: HubDep,
) -> Response:
    def build(pnr: str) -> dict[str, Any]:
        return {"text": _extract(hub, user, pnr).as_text(), "kind": "register"}

    return person_page(request, form, user, "extract.html", build, _NO_EXTRACT)


@router.post(
    "/extract/log",
    response_class=HTMLResponse,
    responses={**PAGE, **NOT_FOUND},
    openapi_extra=form_body("pnr", required=["pnr"]),
)
def log_extract_page(
    request: Request,
    user: Officer,  # before the form: signed in and allowed, or nothing is read
    form: Annotated[dict[str, str], Depends(read_form)],
    hub: HubDep,
) -> Response:
    def build(pnr: str) -> dict[str, Any]:
        made = _log_extract(hub, user, pnr)
        failures = made.checkpoint.witness_failures
        note = (
            tr(request, "A witness could not be given the checkpoint: %(why)s", why=failures[0])
            if failures
            else None
        )
        return {"text": made.as_text(), "kind": "log", "message": note}

    return person_page(request, form, user, "extract.html", build, _NO_EXTRACT)
