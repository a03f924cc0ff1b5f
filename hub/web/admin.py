"""The administrator's pages: connectors, sync history, dead letters, and retrying them.

The same services as `evi connectors list`, `evi sync history` and `evi transfers
failed|retry` (:mod:`hub.connector.service`, :mod:`hub.sync.history`), for the
administrator DESIGN.md names: they see how the nightly job went and put failed transfers
back in the queue without a shell on the server. Nothing here is personal data: a dead
letter names its person by pseudonym only.

A retry is the administrator's act: it is written to the ``hub.web.audit`` log with their
name and how many transfers went back in the queue. Each transfer is then gated again when
it is sent, and that decision and the delivery go to the transfer log like any other.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.connector.service import list_connectors
from hub.context import Hub
from hub.errors import EviError, InputError
from hub.sync.history import dead_letters, history, retry
from hub.web.auth import HubDep, require_role
from hub.web.forms import read_form
from hub.web.templating import NavLink, render
from hub.web.users import Role, WebUser

router = APIRouter()
audit = logging.getLogger("hub.web.audit")

NAV = (NavLink("Administration", "/admin", frozenset({Role.ADMINISTRATOR})),)

Administrator = Annotated[WebUser, Depends(require_role(Role.ADMINISTRATOR))]
HISTORY_ROWS = 50
Limit = Annotated[int, Query(ge=1, le=1000, description="how many runs, newest first")]


class RetryRequest(BaseModel):
    """Which dead letters to queue again: some by id, or all of them."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(default_factory=list, max_length=10_000)
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> RetryRequest:
        if self.all == bool(self.ids):
            raise ValueError("give either ids (from /api/admin/transfers/failed) or all: true")
        return self


def _retry(hub: Hub, user: WebUser, request: RetryRequest) -> int:
    count = retry(hub, None if request.all else request.ids)
    audit.info("transfers queued again by %s: %d", user.name, count)
    return count


# -- JSON API -----------------------------------------------------------------------------


@router.get("/api/admin/connectors")
def connectors(user: Administrator, hub: HubDep) -> list[dict[str, Any]]:
    """Every installed connector: enabled, paused, last sync, status (`evi connectors list`)."""
    return [status.as_json() for status in list_connectors(hub)]


@router.get("/api/admin/sync/history")
def sync_history(
    user: Administrator, hub: HubDep, limit: Limit = HISTORY_ROWS, connector: str | None = None
) -> list[dict[str, Any]]:
    """The latest runs per connector with their counts (`evi sync history`)."""
    return history(hub, limit, connector)


@router.get("/api/admin/transfers/failed")
def failed_transfers(user: Administrator, hub: HubDep) -> list[dict[str, Any]]:
    """Dead letters with their reason (`evi transfers failed`)."""
    return dead_letters(hub)


@router.post("/api/admin/transfers/retry")
def retry_transfers(user: Administrator, hub: HubDep, body: RetryRequest) -> dict[str, int]:
    """Queue dead letters again; the next sync or worker delivers them."""
    return {"queued": _retry(hub, user, body)}


# -- page ---------------------------------------------------------------------------------


@router.get("/admin")
def admin_page(
    request: Request, user: Administrator, hub: HubDep, queued: int | None = None
) -> Response:
    """Connectors, the latest runs and the dead letters, with buttons to retry them."""
    message = None if queued is None else f"{queued} transfer(s) queued again"
    return render(request, "admin.html", _page(hub, message), user=user)


@router.post("/admin/transfers/retry")
def retry_form(
    request: Request,
    user: Administrator,
    hub: HubDep,
    form: Annotated[dict[str, str], Depends(read_form)],
) -> Response:
    """The page's retry buttons: one dead letter (``id``) or all (``all``)."""
    try:
        wanted = RetryRequest(all=True) if "all" in form else RetryRequest(ids=[_id(form)])
        count = _retry(hub, user, wanted)
    except EviError as exc:
        return render(
            request, "admin.html", _page(hub, exc.message), status=exc.http_status, user=user
        )
    return RedirectResponse(f"/admin?queued={count}", status_code=303)


def _id(form: dict[str, str]) -> int:
    text = form.get("id", "")
    if not text.isdigit():
        raise InputError("choose a failed transfer to retry, or retry all")
    return int(text)


def _page(hub: Hub, message: str | None) -> dict[str, Any]:
    return {
        "connectors": list_connectors(hub),
        "runs": history(hub, HISTORY_ROWS),
        "failed": dead_letters(hub),
        "message": message,
    }
