"""The steering group's follow-up statistics over the web: JSON API and page.

The API, the page and ``/stats.csv`` run :func:`hub.stats.followup.followup_report`, the
use case behind `evi stats`, with the web user's name as actor: the gate is asked about
every person in the period for the purpose ``evaluation`` and each decision goes to the
ledger with role ``steering_group``, as for the CLI. The API answers the report's own
JSON (what `evi stats --json` prints).

The page's "Download as CSV" link holds the report shown, as a ``data:`` URL: the file is
the page's figures, and downloading it asks no one again. ``/stats.csv`` makes a report of
its own (asked, and logged, like the API) for a direct download or a script.

The period is two dates in the query string (``?from=YYYY-MM-DD&to=YYYY-MM-DD``): dates
are not personal data, and a GET lets the page be bookmarked. They are read by
:func:`hub.stats.period.parse_period`, as the CLI reads its options; a missing or bad date,
a ``to`` before ``from`` or a ``from`` after today, is a 422 naming the field, never
echoing what was given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from hub.context import Hub
from hub.errors import InputError
from hub.stats.csvfile import render_csv
from hub.stats.followup import followup_report
from hub.stats.period import parse_day, parse_period, swedish_day
from hub.stats.report import FollowUpReport
from hub.web.auth import HubDep, require_role
from hub.web.errors import page_message
from hub.web.openapi import PAGE
from hub.web.stats_text import page_tables, sheet_href
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
    now = datetime.now(UTC)
    first, last = parse_period(start, end, today=swedish_day(now))
    return followup_report(hub, first, last, actor=user.actor, at=now)


# -- JSON API -----------------------------------------------------------------------------


@router.get("/api/stats")
def stats(
    user: SteeringGroup, hub: HubDep, start: FromDay = None, end: ToDay = None
) -> dict[str, Any]:
    """The follow-up report for ``from``..``to`` (both included), as `evi stats --json`."""
    return _report(hub, user, start, end).model_dump(mode="json")


# -- page ---------------------------------------------------------------------------------


class CSVResponse(Response):
    """A CSV download (what the OpenAPI document says ``/stats.csv`` answers)."""

    media_type = "text/csv"


@router.get("/stats.csv", response_class=CSVResponse)
def stats_csv(
    user: SteeringGroup, hub: HubDep, start: FromDay = None, end: ToDay = None
) -> Response:
    """The follow-up report for ``from``..``to`` as a CSV download, as `evi stats --csv`."""
    report = _report(hub, user, start, end)
    return Response(
        render_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{csv_name(report)}"'},
    )


def csv_name(report: FollowUpReport) -> str:
    """The CSV file's name: ``evi-uppfoljning-FROM-TO.csv`` (the days counted)."""
    return f"evi-uppfoljning-{report.period_start}-{report.period_end}.csv"


def csv_href(report: FollowUpReport) -> str:
    """The report shown, as the CSV `/stats.csv` would give, in a ``data:`` URL: the page's
    download link, so the file holds the very figures on the page (same decision instant,
    same correlation id) and downloading it neither asks the gate again nor logs anything
    more. It holds nothing the page does not show."""
    return "data:text/csv;charset=utf-8," + quote(render_csv(report), safe="")


@router.get("/stats", response_class=HTMLResponse, responses=PAGE)
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
        page.update(csv_href=csv_href(report), csv_name=csv_name(report))
        page.update(sheet_href=sheet_href(request, report, page))
    return page


def _refill(text: str | None) -> str:
    """``text`` if it is a date, else nothing: what was typed is never shown back."""
    try:
        return parse_day(text, "").isoformat()
    except InputError:
        return ""
