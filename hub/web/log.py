"""The privacy officer's review of the transfer log: JSON API and pages.

Searches go through :func:`hub.ledger.service.search`, the same use case as `evi log
search`, so every search is itself recorded in the log before results are returned, with
the web user's name as actor and ``privacy_officer`` as role.

A random sample (stickprov, :mod:`hub.ledger.sample`) is drawn the same way as `evi log
sample`, and recorded in the log with its seed like a search.

Results come newest first, a page of at most ``limit`` at a time: the next older page is
the one ``before`` the oldest entry shown, the next newer one ``after`` the newest shown
(keyset paging on the sequence number, so every match is on exactly one page however the
log grows meanwhile).

A search by personnummer (``pnr``) is only accepted in a POST body (``POST
/api/log/entries``, the ``/log`` form): an identity never goes into a URL, where proxies
and access logs would keep it. ``GET /api/log/entries`` takes the other filters, and
refuses a ``pnr`` in its query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.context import Hub
from hub.errors import InputError
from hub.ledger import service
from hub.ledger.event import Action
from hub.ledger.records import (
    EntryRecord,
    LedgerQuery,
    actor_filter,
    correlation_filter,
    pseudonym_filter,
)
from hub.ledger.sample import MAX_SAMPLE, Sample
from hub.ledger.sample import sample as draw_sample
from hub.model.identity import identity_input
from hub.model.problems import problems
from hub.model.vocab import party_name
from hub.web.auth import HubDep, require_role
from hub.web.errors import page_message
from hub.web.forms import read_form
from hub.web.openapi import NOT_FOUND, PAGE, form_body
from hub.web.templating import NavLink, render
from hub.web.users import Role, WebUser

router = APIRouter()

NAV = (
    NavLink("Transfer log", "/log", frozenset({Role.PRIVACY_OFFICER})),
    NavLink("Checkpoint", "/log/checkpoint", frozenset({Role.PRIVACY_OFFICER})),
)

DEFAULT_LIMIT = 100
DEFAULT_SAMPLE = 25
MAX_LIMIT = 1000
SEQ_MAX = 2**62  # far past any log, and a bound the database can still take

Reviewer = Annotated[WebUser, Depends(require_role(Role.PRIVACY_OFFICER))]
PseudonymFilter = Annotated[str, AfterValidator(pseudonym_filter)]
PartyFilter = Annotated[str, AfterValidator(party_name)]
ActorFilter = Annotated[str, AfterValidator(actor_filter)]
CorrelationFilter = Annotated[str, AfterValidator(correlation_filter)]


class LogFilters(BaseModel):
    """The filters of `evi log search`; ``from``/``to`` as in the CLI: a date is a day in
    Sweden (:func:`hub.ledger.service.parse_span`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    participant: PseudonymFilter | None = Field(
        default=None, max_length=64, description="pseudonym p-…"
    )
    since: str | None = Field(default=None, alias="from", max_length=40)
    until: str | None = Field(default=None, alias="to", max_length=40)
    party: PartyFilter | None = Field(default=None, max_length=32)
    decision: Literal["permit", "deny"] | None = None
    action: Action | None = None
    by: ActorFilter | None = Field(default=None, max_length=64, description="made by this actor")
    correlation: CorrelationFilter | None = Field(
        default=None, max_length=80, description="one report, look-up, sync run or transfer"
    )
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    before: int | None = Field(
        default=None, ge=0, le=SEQ_MAX, description="the next older page: the oldest seq shown"
    )
    after: int | None = Field(
        default=None, ge=0, le=SEQ_MAX, description="the next newer page: the newest seq shown"
    )

    @field_validator(
        "participant",
        "since",
        "until",
        "party",
        "by",
        "correlation",
        "before",
        "after",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class LogSearch(LogFilters):
    """The filters of a POSTed search, which may name the person by personnummer."""

    pnr: str | None = Field(default=None, max_length=20)

    @field_validator("pnr", mode="before")
    @classmethod
    def _blank_pnr(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class SampleFilters(BaseModel):
    """The filters of `evi log sample`: which entries to draw from, how many, which seed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    since: str | None = Field(default=None, alias="from", max_length=40)
    until: str | None = Field(default=None, alias="to", max_length=40)
    party: PartyFilter | None = Field(default=None, max_length=32)
    decision: Literal["permit", "deny"] | None = None
    action: Action | None = None
    by: ActorFilter | None = Field(default=None, max_length=64, description="made by this actor")
    size: int = Field(default=DEFAULT_SAMPLE, ge=1, le=MAX_SAMPLE)
    seed: int | None = Field(default=None, ge=0, lt=2**63)

    @field_validator("since", "until", "party", "by", "decision", "action", "seed", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def _draw(hub: Hub, user: WebUser, filters: SampleFilters) -> Sample:
    since, until = service.parse_span(filters.since, filters.until, ("from", "to"))
    query = LedgerQuery(
        since=since,
        until=until,
        party=filters.party,
        decision=filters.decision,
        action=filters.action,
        actor=filters.by,
    )
    role = Role.PRIVACY_OFFICER.value
    return draw_sample(hub, query, filters.size, user.actor, role, filters.seed)


def _query(hub: Hub, filters: LogFilters) -> LedgerQuery:
    participant = filters.participant
    pnr = filters.pnr if isinstance(filters, LogSearch) else None
    if pnr is not None:
        if participant is not None:
            raise InputError("give pnr or participant, not both")
        participant = hub.keys.pseudonym(identity_input(pnr, "pnr").number)
    if filters.before is not None and filters.after is not None:
        raise InputError("give before or after, not both")
    since, until = service.parse_span(filters.since, filters.until, ("from", "to"))
    return LedgerQuery(
        participant=participant,
        since=since,
        until=until,
        party=filters.party,
        decision=filters.decision,
        action=filters.action,
        actor=filters.by,
        correlation=filters.correlation,
        limit=filters.limit,
        after=filters.after,
        before=filters.before,
        newest_first=filters.after is None,  # a newer page is read upwards from `after`
    )


@dataclass(frozen=True)
class LogPage:
    """One page of a search, newest first, and where the pages beside it start."""

    query: LedgerQuery
    entries: list[EntryRecord]
    more: bool
    """More match beyond this page, in the direction it was read (older; newer after
    ``after``)."""
    older: int | None
    """``before`` for the next older page (the oldest seq shown), if one may hold any."""
    newer: int | None
    """``after`` for the next newer page (the newest seq shown), if one may hold any."""


def _search(hub: Hub, user: WebUser, filters: LogFilters) -> LogPage:
    query = _query(hub, filters)
    role = Role.PRIVACY_OFFICER.value
    found = list(service.search(hub, query, user.actor, role=role, one_more=True))
    limit = filters.limit
    more = len(found) > limit
    entries = found[:limit]
    older: int | None
    newer: int | None
    if query.after is not None:  # read upwards from `after`; that entry itself is older
        entries.reverse()
        older = entries[-1].seq if entries else query.after + 1
        newer = entries[0].seq if more else None
    else:  # the newest page, or the one before `before`
        older = entries[-1].seq if more else None
        newer = None
        if query.before is not None:  # the page it came from is newer
            newer = entries[0].seq if entries else query.before - 1 if query.before else None
    return LogPage(query, entries, more, older, newer)


def _answer(page: LogPage) -> dict[str, Any]:
    return {
        "entries": [record.export_line() for record in page.entries],
        "count": len(page.entries),
        "limit": page.query.limit,
        "more_may_match": page.more,
        "participant": page.query.participant,
        "older": page.older,
        "newer": page.newer,
    }


# -- JSON API -----------------------------------------------------------------------------


def _no_identity_in_url(request: Request) -> None:
    if "pnr" in request.query_params:
        raise InputError(
            "a personnummer never goes in a URL; POST the filters as JSON to /api/log/entries"
        )


@router.get("/api/log/entries", dependencies=[Depends(_no_identity_in_url)])
def entries(
    filters: Annotated[LogFilters, Query()],
    user: Reviewer,
    hub: HubDep,
) -> dict[str, Any]:
    """Find entries, newest first (the filters of `evi log search`, without pnr; ``before``
    or ``after`` for the page beside this one). The search is logged."""
    return _answer(_search(hub, user, filters))


@router.post("/api/log/entries")
def search_entries(filters: LogSearch, user: Reviewer, hub: HubDep) -> dict[str, Any]:
    """Find entries, the filters (``pnr`` among them) in a JSON body. The search is logged."""
    return _answer(_search(hub, user, filters))


@router.get("/api/log/sample")
def sample_entries(
    filters: Annotated[SampleFilters, Query()], user: Reviewer, hub: HubDep
) -> dict[str, Any]:
    """A random sample of the matching entries, as `evi log sample`. The draw is logged."""
    drawn = _draw(hub, user, filters)
    return {
        "entries": [record.export_line() for record in drawn.entries],
        "count": len(drawn.entries),
        "matching": drawn.matching,
        "seed": drawn.seed,
        # whether the period had ended: only then do the same filters and seed draw it again
        "repeatable": drawn.closed,
    }


@router.post("/api/log/verify", responses=NOT_FOUND)
def verify(user: Reviewer, hub: HubDep) -> dict[str, Any]:
    """Recompute every leaf, subtree, root and checkpoint, as `evi log verify --json`.

    A log that does not verify is the answer, not an error of this request: 200 with
    ``ok: false`` and the first bad entry."""
    return service.verify(hub).as_json()


@router.get("/api/log/checkpoint", responses=NOT_FOUND)
def checkpoint(user: Reviewer, hub: HubDep) -> dict[str, Any]:
    """The latest signed checkpoint; ``note`` is the exact signed text."""
    latest = service.current_checkpoint(hub)
    return {
        "origin": latest.origin,
        "size": latest.size,
        "root_hash": latest.root.hex(),
        "created_at": latest.created_at.isoformat(),
        "note": latest.note,
    }


# -- pages --------------------------------------------------------------------------------


@router.get("/log", response_class=HTMLResponse, responses=PAGE)
def log_page(request: Request, user: Reviewer) -> Response:
    return render(request, "log.html", _page(LogFilters()), user=user)


@router.post(
    "/log",
    response_class=HTMLResponse,
    responses=PAGE,
    openapi_extra=form_body(*(f.alias or name for name, f in LogSearch.model_fields.items())),
)
def log_search_page(
    request: Request,
    user: Reviewer,  # before the form: signed in and allowed, or nothing is read
    form: Annotated[dict[str, str], Depends(read_form)],
    hub: HubDep,
) -> Response:
    try:
        filters = LogSearch.model_validate(form)
    except ValidationError as exc:
        return _invalid_form(request, user, exc)
    try:
        found = _search(hub, user, filters)
    except InputError as exc:
        page = _page(filters, message=page_message(request, exc.http_status, exc.message))
        return render(request, "log.html", page, status=exc.http_status, user=user)
    return render(request, "log.html", _page(filters, found), user=user)


@router.post(
    "/log/sample",
    response_class=HTMLResponse,
    responses=PAGE,
    openapi_extra=form_body(*(f.alias or n for n, f in SampleFilters.model_fields.items())),
)
def log_sample_page(
    request: Request,
    user: Reviewer,  # before the form: signed in and allowed, or nothing is read
    form: Annotated[dict[str, str], Depends(read_form)],
    hub: HubDep,
) -> Response:
    try:
        filters = SampleFilters.model_validate(form)
        drawn = _draw(hub, user, filters)
    except ValidationError as exc:
        return _invalid_form(request, user, exc)
    except InputError as exc:
        message = page_message(request, exc.http_status, exc.message)
        page = _page(LogFilters(), sampling=filters, message=message)
        return render(request, "log.html", page, status=exc.http_status, user=user)
    page = _page(LogFilters(), sampling=filters, drawn=drawn)
    return render(request, "log.html", page, user=user)


def _invalid_form(request: Request, user: WebUser, exc: ValidationError) -> Response:
    """The page again, empty, naming the fields that were wrong (never their values)."""
    page = _page(LogFilters(), message=page_message(request, 422, "; ".join(problems(exc))))
    return render(request, "log.html", page, status=422, user=user)


def _page(
    filters: LogFilters,
    found: LogPage | None = None,
    message: str | None = None,
    sampling: SampleFilters | None = None,
    drawn: Sample | None = None,
) -> dict[str, Any]:
    """What the log page shows: the forms (never the personnummer searched for), the rows,
    and the filters again for the older and newer pages (the pseudonym, never the number)."""
    records = found.entries if found else drawn.entries if drawn else []
    return {
        "filters": filters,
        "sampling": sampling or SampleFilters(),
        "drawn": drawn,
        "max_sample": MAX_SAMPLE,
        "actions": [a.value for a in Action],
        "max_limit": MAX_LIMIT,
        "searched": found is not None,
        "query": found.query if found else None,
        "rows": [_row(record) for record in records],
        "older": found.older if found else None,
        "newer": found.newer if found else None,
        "paging": _paging(filters, found.query) if found else {},
        "message": message,
    }


def _paging(filters: LogFilters, query: LedgerQuery) -> dict[str, str]:
    """The fields an older or newer page posts again: the search's filters as given, and
    the person as the pseudonym (a personnummer is not written into the page)."""
    fields = {
        "participant": query.participant,
        "from": filters.since,
        "to": filters.until,
        "party": filters.party,
        "decision": filters.decision,
        "action": query.action.value if query.action else None,
        "by": filters.by,
        "correlation": filters.correlation,
        "limit": str(filters.limit),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _row(record: EntryRecord) -> dict[str, Any]:
    line = record.export_line()
    line["categories"] = ", ".join(line["categories"])
    return line


@router.get("/log/checkpoint", response_class=HTMLResponse, responses={**PAGE, **NOT_FOUND})
def checkpoint_page(request: Request, user: Reviewer, hub: HubDep) -> Response:
    page = {"checkpoint": service.current_checkpoint(hub), "verified": None}
    return render(request, "checkpoint.html", page, user=user)


@router.post("/log/verify", response_class=HTMLResponse, responses={**PAGE, **NOT_FOUND})
def verify_page(request: Request, user: Reviewer, hub: HubDep) -> Response:
    """The checkpoint page with the result of verifying the whole log."""
    page = {"checkpoint": service.current_checkpoint(hub), "verified": service.verify(hub)}
    return render(request, "checkpoint.html", page, user=user)
