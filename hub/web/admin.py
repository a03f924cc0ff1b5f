"""The administrator's pages: connectors (enable, disable, check), sync history, dead
letters, and retrying them.

The same services as `evi connectors list|enable|disable|check`, `evi sync history` and
`evi transfers failed|retry` (:mod:`hub.connector.service`, :mod:`hub.sync.history`), for
the administrator DESIGN.md names: they see how the nightly job went, resume a paused
connector and put failed transfers back in the queue without a shell on the server.
Configuring a connector (URLs, credentials, certificates) stays with `evi connectors
configure` on the server: secrets are not typed into a web page. Nothing here is personal
data: a dead letter names its person by pseudonym only.

Every change is the administrator's act: enabling or disabling a connector and each retry
are written to the ``hub.web.audit`` log with their name. A retried transfer is gated again
when it is sent, and that decision and the delivery go to the transfer log like any other.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from hub.connector.errors import ConnectorError
from hub.connector.service import (
    CHECK_RETRY,
    certificate_notices,
    check_connector,
    connector_status,
    list_connectors,
    set_enabled,
)
from hub.context import Hub
from hub.errors import EviError, InputError, NotFoundError, StorageError
from hub.model.vocab import PARTY, Party, party_name
from hub.sync.history import (
    PAGE_MAX,
    PAGE_ROWS,
    dead_letter_summary,
    dead_letters,
    history,
    page_size,
    retry,
)
from hub.web.auth import HubDep, require_role
from hub.web.errors import page_message
from hub.web.forms import read_form
from hub.web.i18n import N_, tr, tr_n
from hub.web.openapi import NOT_FOUND, PAGE, REDIRECT, form_body
from hub.web.templating import NavLink, render
from hub.web.users import Role, WebUser

router = APIRouter()
audit = logging.getLogger("hub.web.audit")

NAV = (NavLink("Administration", "/admin", frozenset({Role.ADMINISTRATOR})),)

Administrator = Annotated[WebUser, Depends(require_role(Role.ADMINISTRATOR))]
HISTORY_ROWS = 50
Limit = Annotated[int, Query(ge=1, le=1000, description="how many runs, newest first")]
ID_MAX = 2**63 - 1  # the largest id a database's BIGINT holds
TransferId = Annotated[StrictInt, Field(ge=1, le=ID_MAX)]  # true or "1" is no id
After = Annotated[
    int, Query(ge=0, le=ID_MAX, description="the page after this id (the last one shown)")
]
PageLimit = Annotated[
    int, Query(description=f"how many dead letters, 1 to {PAGE_MAX}, oldest first")
]
Recipient = Annotated[
    str | None,
    Query(max_length=32, pattern=PARTY.pattern, description="only those to this recipient"),
]
Reason = Annotated[
    str | None, Query(max_length=500, description="only those given up on with this reason")
]
ConnectorName = Annotated[
    str,
    PathParam(
        max_length=32,
        pattern=r"^[!-~]+$",
        description="an installed connector's name (as `evi connectors list` shows it)",
    ),
]
"""A connector's name in the path: printable ASCII, at most 32 characters (a connector's
name is fewer, in lowercase). Anything else is a 422 naming the field, never repeated back;
a name that could be one but is not installed is the 404 that names it (or, if it looks
like an identity number, does not)."""
Queued = Annotated[
    int | None, Query(ge=0, le=ID_MAX, description="how many were queued again (after a retry)")
]


class RetryRequest(BaseModel):
    """Which dead letters to queue again: some by id, or all of them (to one recipient)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[TransferId] = Field(default_factory=list, max_length=10_000)
    all: StrictBool = False  # true itself: "yes" or 1 must not re-queue every dead letter
    recipient: Party | None = None

    @model_validator(mode="after")
    def _one_of(self) -> RetryRequest:
        if self.all == bool(self.ids):
            raise ValueError("give either ids (from /api/admin/transfers/failed) or all: true")
        if self.recipient is not None and not self.all:
            raise ValueError("recipient goes with all: true")
        return self


def _retry(hub: Hub, user: WebUser, request: RetryRequest) -> int:
    count = retry(hub, None if request.all else request.ids, recipient=request.recipient)
    if request.recipient is None:
        audit.info("transfers queued again by %s: %d", user.name, count)
    else:
        audit.info("transfers to %s queued again by %s: %d", request.recipient, user.name, count)
    return count


def _failed_url(path: str, after: int, **filters: str | int | None) -> str:
    """``path`` with the query that asks for the page after ``after`` with these filters."""
    query = {"after": after or None, **filters}
    given = {k: v for k, v in query.items() if v is not None}
    return f"{path}?{urlencode(given)}" if given else path


# -- JSON API -----------------------------------------------------------------------------


@router.get("/api/admin/connectors")
def connectors(user: Administrator, hub: HubDep) -> list[dict[str, Any]]:
    """Every installed connector: enabled, paused, last sync, status (`evi connectors list`)."""
    return [status.as_json() for status in list_connectors(hub)]


@router.post("/api/admin/connectors/{name}/enable", responses=NOT_FOUND)
def enable(user: Administrator, hub: HubDep, name: ConnectorName) -> dict[str, Any]:
    """Include ``name`` in sync runs again; this also lifts a pause after failures."""
    return _set_enabled(hub, user, name, True)


@router.post("/api/admin/connectors/{name}/disable", responses=NOT_FOUND)
def disable(user: Administrator, hub: HubDep, name: ConnectorName) -> dict[str, Any]:
    """Leave ``name`` out of sync runs; its options and history are kept."""
    return _set_enabled(hub, user, name, False)


@router.post("/api/admin/connectors/{name}/check", responses=NOT_FOUND)
def check(user: Administrator, hub: HubDep, name: ConnectorName) -> dict[str, Any]:
    """Reach the authority with the stored options: ``ok``, and what went wrong if not.

    A failed check is an answer, not an error of this request: 200 with ``ok: false``.
    """
    return _check(hub, name)


def _set_enabled(hub: Hub, user: WebUser, name: str, enabled: bool) -> dict[str, Any]:
    set_enabled(hub, name, enabled, actor=user.actor)
    audit.info("connector %s %s by %s", name, "enabled" if enabled else "disabled", user.name)
    return connector_status(hub, name).as_json()


def _check(hub: Hub, name: str) -> dict[str, Any]:
    """An unknown connector is a 404 (NotFoundError), not a failed check."""
    try:
        status = check_connector(hub, name, retry=CHECK_RETRY)
    except ConnectorError as exc:
        return {"name": name, "ok": False, "detail": exc.message}
    return {
        "name": name,
        "ok": True,
        "detail": f"{status.authority} answered and accepted our credentials",
    }


@router.get("/api/admin/sync/history")
def sync_history(
    user: Administrator, hub: HubDep, limit: Limit = HISTORY_ROWS, connector: str | None = None
) -> list[dict[str, Any]]:
    """The latest runs per connector with their counts (`evi sync history`)."""
    return history(hub, limit, connector)


@router.get("/api/admin/transfers/failed")
def failed_transfers(
    user: Administrator,
    hub: HubDep,
    response: Response,
    after: After = 0,
    limit: PageLimit = PAGE_ROWS,
    recipient: Recipient = None,
    reason: Reason = None,
) -> list[dict[str, Any]]:
    """One page of dead letters with their reason, oldest first (`evi transfers failed
    --json`); when more follow, a ``Link: <…?after=ID…>; rel="next"`` header asks for them."""
    page_size(limit)
    rows, more = dead_letters(
        hub, after=after, limit=limit, recipient=recipient or None, reason=reason or None
    )
    if more:
        limited = None if limit == PAGE_ROWS else limit
        filters = {"limit": limited, "recipient": recipient or None, "reason": reason or None}
        url = _failed_url("/api/admin/transfers/failed", rows[-1]["id"], **filters)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return rows


@router.get("/api/admin/transfers/failed/summary")
def failed_summary(user: Administrator, hub: HubDep) -> dict[str, Any]:
    """How many dead letters, by recipient and by recipient and reason
    (`evi transfers failed --summary --json`)."""
    return dead_letter_summary(hub)


@router.post("/api/admin/transfers/retry", responses=NOT_FOUND)
def retry_transfers(user: Administrator, hub: HubDep, body: RetryRequest) -> dict[str, int]:
    """Queue dead letters again; the next sync or worker delivers them."""
    return {"queued": _retry(hub, user, body)}


# -- page ---------------------------------------------------------------------------------


@router.get("/admin", response_class=HTMLResponse, responses=PAGE)
def admin_page(
    request: Request,
    user: Administrator,
    hub: HubDep,
    queued: Queued = None,
    enabled: str | None = None,
    disabled: str | None = None,
    after: After = 0,
    recipient: Recipient = None,
    reason: Reason = None,
) -> Response:
    """Connectors, the latest runs and the dead letters (how many by recipient and reason,
    then a page of them), with buttons to act on them."""
    page = _page(hub, None, after=after, recipient=recipient or None, reason=reason or None)
    installed = {c.name for c in page["connectors"]}
    if queued is not None:
        page["message"] = tr_n(
            request, "%(num)d transfer queued again", "%(num)d transfers queued again", queued
        )
    elif enabled in installed or disabled in installed:  # never echo other text
        done = N_("%(name)s: enabled") if enabled else N_("%(name)s: disabled")
        page["message"] = tr(request, done, name=enabled or disabled)
    return render(request, "admin.html", page, user=user)


@router.post(
    "/admin/transfers/retry",
    response_class=HTMLResponse,
    status_code=303,
    responses={**REDIRECT, **NOT_FOUND},
    openapi_extra=form_body("id", "all", "recipient"),
)
def retry_form(
    request: Request,
    user: Administrator,
    hub: HubDep,
    form: Annotated[dict[str, str], Depends(read_form)],
) -> Response:
    """The page's retry buttons: one dead letter (``id``), or all (``all``), or all to a
    ``recipient``."""
    try:
        if "all" in form:
            wanted = RetryRequest(all=True, recipient=_recipient(form))
        else:
            wanted = RetryRequest(ids=[_id(form)])
        count = _retry(hub, user, wanted)
    except StorageError:  # the operator's words go to the log, the page is a 503
        raise
    except EviError as exc:
        return _refused(request, user, hub, exc)
    return RedirectResponse(f"/admin?queued={count}", status_code=303)


@router.post(
    "/admin/connectors/{name}/{action}",
    response_class=HTMLResponse,
    responses={**PAGE, **REDIRECT, **NOT_FOUND},
)
def connector_form(
    request: Request, user: Administrator, hub: HubDep, name: ConnectorName, action: str
) -> Response:
    """The page's buttons per connector: ``enable``, ``disable`` or ``check``."""
    try:
        if action == "check":
            result = _check(hub, name)
            outcome = (
                N_("%(name)s: ok: %(detail)s")
                if result["ok"]
                else N_("%(name)s: check failed: %(detail)s")
            )
            note = tr(request, outcome, name=name, detail=result["detail"])
            return render(request, "admin.html", _page(hub, note), user=user)
        if action not in ("enable", "disable"):
            raise NotFoundError("a connector's actions are enable, disable and check")
        _set_enabled(hub, user, name, action == "enable")
    except StorageError:  # the operator's words go to the log, the page is a 503
        raise
    except EviError as exc:
        return _refused(request, user, hub, exc)
    return RedirectResponse(f"/admin?{action}d={name}", status_code=303)


def _id(form: dict[str, str]) -> int:
    text = form.get("id", "")
    # isdigit() alone also takes "²" and other scripts' digits, which int() refuses or reads.
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and 1 <= int(text) <= ID_MAX):
        raise InputError("choose a failed transfer to retry, or retry all")
    return int(text)


def _recipient(form: dict[str, str]) -> str | None:
    text = form.get("recipient")
    if text is None:
        return None
    try:
        return party_name(text)
    except ValueError:
        raise InputError("choose a recipient whose failed transfers to retry") from None


def _refused(request: Request, user: WebUser, hub: Hub, exc: EviError) -> Response:
    """The page again, with what went wrong and the error's status."""
    message = page_message(request, exc.http_status, exc.message)
    return render(request, "admin.html", _page(hub, message), status=exc.http_status, user=user)


def _page(
    hub: Hub,
    message: str | None,
    *,
    after: int = 0,
    recipient: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """What the page shows: the dead letters as counts, and one page of them (PAGE_ROWS)."""
    summary = dead_letter_summary(hub)
    failed, more = (
        dead_letters(hub, after=after, recipient=recipient, reason=reason)
        if summary["total"]
        else ([], False)
    )
    filters = {"recipient": recipient, "reason": reason}
    connectors = list_connectors(hub)
    return {
        "connectors": connectors,
        "expiring": {n.connector: n.expires for n in certificate_notices(hub, connectors)},
        "runs": history(hub, HISTORY_ROWS),
        "summary": summary,
        "failed": failed,
        "filters": filters,
        "after": after,
        "next_page": _failed_url("/admin", failed[-1]["id"], **filters) if more else None,
        "first_page": _failed_url("/admin", 0, **filters) if after else None,
        "show": lambda **wanted: _failed_url("/admin", 0, **wanted),
        "message": message,
    }
