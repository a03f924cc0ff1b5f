"""Server-rendered pages: the Jinja2 templates shipped in ``hub/web/templates`` and the
navigation every page shows.

Autoescaping is on for every template (values from the ledger are data, never markup).
A router adds a navigation link by declaring ``NAV = (NavLink(...), …)`` in its module;
:func:`hub.web.app.create_app` collects them, and the base layout shows a user the links
their role may follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from hub.web.users import Role, WebUser

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class NavLink:
    """A link in the page header, shown to users in one of ``roles``."""

    label: str
    path: str
    roles: frozenset[Role]


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


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
    """Render ``template`` with the page's user and navigation."""
    values: dict[str, Any] = {"user": user, "nav": nav_for(request, user), "message": None}
    values.update(context or {})
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status)
