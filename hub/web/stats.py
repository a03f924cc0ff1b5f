"""The steering group's follow-up statistics over the web: JSON API and page.

Both run :func:`hub.stats.followup.followup_report`, the use case behind `evi stats`, with
the web user's name as actor: the gate is asked about every person in the period for the
purpose ``evaluation`` and each decision goes to the ledger with role ``steering_group``,
as for the CLI. The API answers the report's own JSON (what `evi stats --json` prints).

The period is two dates in the query string (``?from=YYYY-MM-DD&to=YYYY-MM-DD``): dates
are not personal data, and a GET lets the page be bookmarked. They are read by
:func:`hub.stats.period.parse_period`, as the CLI reads its options; a missing or bad date,
or a ``to`` before ``from``, is a 422 naming the field, never echoing what was given.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from hub.context import Hub
from hub.errors import InputError
from hub.stats.csvfile import render_csv
from hub.stats.followup import followup_report
from hub.stats.period import parse_day, parse_period
from hub.stats.report import FollowUpReport
from hub.web.auth import HubDep, require_role
from hub.web.errors import page_message
from hub.web.stats_text import page_tables
from hub.web.templating import NavLink, render
from hub.web.users import Role, WebUser

router = APIRouter()

NAV = (NavLink("Statistics", "/stats", frozenset({Role.STEERING_GROUP})),)

SteeringGroup = Annotated[WebUser, Depends(require_role(Role.STEERING_GROUP))]
FromDay = Annotated[
    str | None, Query(alias="from", description="first day of the period (YYYY-MM-DD)")
]
ToDay = Annotated[str | None, Query(alias="to", description="last day of the period (YYYY-MM-DD)")]


def _report(hub: Hub, user: WebUser, start: str | None, end: str | None) -> FollowUpReport:
    first, last = parse_period(start, end)
    return followup_report(hub, first, last, actor=user.actor)


# -- JSON API -----------------------------------------------------------------------------


@router.get("/api/stats")
def stats(
    user: SteeringGroup, hub: HubDep, start: FromDay = None, end: ToDay = None
) -> dict[str, Any]:
    """The follow-up report for ``from``..``to`` (both included), as `evi stats --json`."""
    return _report(hub, user, start, end).model_dump(mode="json")


# -- page ---------------------------------------------------------------------------------


@router.get("/stats.csv")
def stats_csv(
    user: SteeringGroup, hub: HubDep, start: FromDay = None, end: ToDay = None
) -> Response:
    """The follow-up report for ``from``..``to`` as a CSV download, as `evi stats --csv`."""
    report = _report(hub, user, start, end)
    name = f"evi-uppfoljning-{report.period_start}-{report.period_end}.csv"
    return Response(
        render_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/stats")
def stats_page(
    request: Request, user: SteeringGroup, hub: HubDep, start: FromDay = None, end: ToDay = None
) -> Response:
    """The period form; with a period, the report as tables (the gate is asked, and logs)."""
    if start is None and end is None:
        return render(request, "stats.html", _page(request, start, end), user=user)
    try:
        report = _report(hub, user, start, end)
    except InputError as exc:
        problem = page_message(request, exc.http_status, exc.message)
        page = _page(request, start, end, problem=problem)
        return render(request, "stats.html", page, status=exc.http_status, user=user)
    return render(request, "stats.html", _page(request, start, end, report), user=user)


def _page(
    request: Request,
    start: str | None,
    end: str | None,
    report: FollowUpReport | None = None,
    problem: str | None = None,
) -> dict[str, Any]:
    """What the page shows: the form (refilled only with real dates) and the report."""
    page: dict[str, Any] = {
        "period": {"from": _refill(start), "to": _refill(end)},
        "problem": problem,
        "report": report,
        "tables": [],
    }
    if report is not None:
        page.update(page_tables(request, report))
    return page


def _refill(text: str | None) -> str:
    """``text`` if it is a date, else nothing: what was typed is never shown back."""
    try:
        return parse_day(text, "").isoformat()
    except InputError:
        return ""
