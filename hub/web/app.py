"""The app factory: :func:`create_app` builds the FastAPI app over an open hub.

Nothing happens at import time. Each router lives in a module of its own, listed in
:data:`ROUTERS`; a module has ``router`` (a FastAPI ``APIRouter``) and may have ``NAV``
(:class:`hub.web.templating.NavLink` items for the page header, shown by role). Adding
an area is one line in :data:`ROUTERS`.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from hub import __version__
from hub.context import Hub, open_hub
from hub.settings import Settings
from hub.web.errors import install_error_handlers
from hub.web.guards import BodyLimit, same_origin_only
from hub.web.openapi import openapi_document
from hub.web.security import SecurityHeaders
from hub.web.templating import STATIC, NavLink
from hub.web.throttle import SignInThrottle

ROUTERS: Final = (
    # modules with a `router` (and optionally `NAV`), in the order the header lists them
    "hub.web.session",
    "hub.web.casework",
    "hub.web.log",
    "hub.web.extract",
    "hub.web.stats",
    "hub.web.admin",
)


def create_app(
    hub: Hub | None = None,
    *,
    settings: Settings | None = None,
    secure_cookies: bool = True,
) -> FastAPI:
    """The web app over ``hub``, or over a hub opened from ``settings`` (default: the
    effective settings, as the CLI opens it) and closed when the app shuts down.

    ``secure_cookies=False`` drops the cookie's Secure flag: only for tests over plain
    HTTP to a host other than localhost.
    """
    opened = hub if hub is not None else open_hub(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if hub is None:
                opened.close()

    # No /docs or /redoc (they load scripts from a CDN, which the CSP forbids) and no
    # unauthenticated OpenAPI document.
    app = FastAPI(
        title="EVI hub",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        dependencies=[Depends(same_origin_only)],
    )
    app.state.hub = opened
    app.state.secure_cookies = secure_cookies
    app.state.sign_in_throttle = SignInThrottle()  # failed sign-ins by address, in memory
    install_error_handlers(app)  # innermost: InternalErrors
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit)  # outermost
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Up, and the database answers with EVI hub's tables in it (no sign-in needed)."""
        opened.require_schema()
        return {"status": "ok"}

    # HEAD too: uptime monitors and load balancers often ask with HEAD (RFC 9110 9.3.2).
    app.head("/healthz")(healthz)

    nav: list[NavLink] = []
    for name in ROUTERS:
        module = importlib.import_module(name)
        app.include_router(module.router)
        nav.extend(getattr(module, "NAV", ()))
    app.state.nav = tuple(nav)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app
