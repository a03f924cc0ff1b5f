"""Server-rendered pages: the Jinja2 templates shipped in ``hub/web/templates`` and the
navigation every page shows.

Autoescaping is on for every template (values from the ledger are data, never markup).
Every text is marked for translation, ``{{ _("…") }}``, and shown in the request's
language (:mod:`hub.web.i18n`).
A router adds a navigation link by declaring ``NAV = (NavLink(...), …)`` in its module;
:func:`hub.web.app.create_app` collects them, and the base layout shows a user the links
their role may follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hub.clock import swedish_minute
from hub.text.terminal import shown
from hub.web.i18n import N_, language_for, template_gettext, template_ngettext
from hub.web.record_text import code_name, kind_name, party_label, record_details
from hub.web.users import Role, WebUser

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


ROLE_NAMES: dict[Role, str] = {
    Role.CASEWORKER: N_("caseworker"),
    Role.PRIVACY_OFFICER: N_("privacy_officer"),
    Role.STEERING_GROUP: N_("steering_group"),
    Role.ADMINISTRATOR: N_("administrator"),
}
"""How the pages name each role (English: the role's own value)."""


def swedish_time(value: datetime | str | None) -> str:
    """A time (or ISO text) as Swedish local time to the minute, as every page shows it."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return swedish_minute(moment)


@dataclass(frozen=True)
class NavLink:
    """A link in the page header, shown to users in one of ``roles``."""

    label: str
    path: str
    roles: frozenset[Role]


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # New-style gettext: `_("… %(name)s …", name=x)` escapes x and fills it in; the
    # language is the render's `lang` (hub.web.i18n), so one environment serves both.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        template_gettext, template_ngettext, newstyle=True
    )
    env.filters["swedish_time"] = swedish_time
    env.filters["code_name"] = code_name
    env.filters["record_details"] = record_details
    env.filters["kind_name"] = kind_name
    env.filters["party_label"] = party_label
    env.filters["shown"] = shown  # outside text (an authority's error): bidi and controls escaped
    return env


def nav_for(request: Request, user: WebUser | None) -> list[NavLink]:
    links: tuple[NavLink, ...] = getattr(request.app.state, "nav", ())
    if user is None:
        return []
    return [link for link in links if user.role in link.roles]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    user: WebUser | None = None,
) -> HTMLResponse:
    """Render ``template`` in the request's language with the page's user and navigation."""
    values: dict[str, Any] = {
        "user": user,
        "nav": nav_for(request, user),
        "message": None,
        "lang": language_for(request),
        "role_name": ROLE_NAMES[user.role] if user is not None else None,
    }
    values.update(context or {})
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status)
