"""The app's OpenAPI document: every answer a route gives, documented.

The app serves no OpenAPI document (``openapi_url=None``: it would be unauthenticated), but
``app.openapi()`` still builds one, for API clients' generators and for the property test
that checks the app against it (tests/unit/test_web_fuzz.py). FastAPI documents only a
route's success and the 422 of its parameters, in its own shape; this module adds what the
app's edges answer to every route, from the route's own dependencies, so a new route is
documented like the others without a word more:

* every route: 403 (sent from another origin, :mod:`hub.web.guards`), 413 (a body over
  1 MiB), 503 (the database is unavailable);
* a route that needs a signed-in user (:func:`hub.web.auth.current_user`): 401, 403 (a
  role that may not use it), 429 (too many wrong tokens from the address);
* a route that reads a form (:func:`hub.web.forms.read_form`) or takes parameters or a
  body: 422;
* every error as the app gives it: ``{"detail": "…"}`` on ``/api/…``; the error page
  (``text/html``) elsewhere, or the JSON to a request with a bearer token.

What only some routes answer (a redirect, a 404 of an unknown person or connector, a page
as ``text/html``, a form's fields) is declared on the route itself, with the helpers here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from hub.web.auth import current_user
from hub.web.errors import every_route
from hub.web.forms import read_form

ERROR_SCHEMA: Final = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
"""Every error's JSON: one line saying what to fix (never a value given, never a traceback)."""

PAGE: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}
}
"""A page's answer, for ``responses=`` (with ``response_class=HTMLResponse``)."""

REDIRECT: Final[dict[int | str, dict[str, Any]]] = {
    303: {"description": "done: the browser is sent on to the page in `Location`"}
}
NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"description": "no such person, connector, dead letter or checkpoint"}
}


def form_body(*fields: str, required: Iterable[str] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a form (:func:`hub.web.forms.read_form`):
    its fields, as text (FastAPI cannot see them: the form is read by hand)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: {"type": "string"} for name in fields},
    }
    if wanted := list(required):
        schema["required"] = wanted
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _common(route: APIRoute, operation: dict[str, Any]) -> dict[int, str]:
    """What the app's edges may answer to ``route`` besides its own answers."""
    calls = set(_calls(route.dependant))
    common = {
        403: "sent from another origin (refused), or a role that may not use this",
        413: "a request body over 1 MiB (a page's form: over 16 KiB is a 422)",
        503: "the database is not available",
    }
    if current_user in calls:
        common[401] = "not signed in: no token or session, or one that is not valid"
        common[429] = "too many wrong tokens from this address; wait `Retry-After` seconds"
    if read_form in calls or operation.get("parameters") or "requestBody" in operation:
        common[422] = "a field, filter, date or body that is not valid (named, never repeated)"
    return common


def _error_content(path: str) -> dict[str, Any]:
    json = {"application/json": {"schema": ERROR_SCHEMA}}
    if path.startswith("/api/") or path == "/healthz":
        return json
    return {"text/html": {"schema": {"type": "string"}}, **json}  # JSON with a bearer token


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once): FastAPI's, with every status the app gives."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    routes = {
        (route.path, method.lower()): route
        for route in every_route(app.router.routes)
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation["responses"]
            for code, description in _common(routes[path, method], operation).items():
                responses.setdefault(str(code), {"description": description})
            for status, response in responses.items():
                if status[0] in "45":  # FastAPI's 422 too: the app's is {"detail": "…"}
                    response["content"] = _error_content(path)
                elif status[0] == "3":  # a redirect has no body (FastAPI gives it the page's)
                    response.pop("content", None)
    document.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    document.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    app.openapi_schema = document
    return document
