"""Turn a pydantic ``ValidationError`` into lines fit for users and logs.

Pydantic's own ``str(error)`` repeats the input values, which may be a personnummer;
these lines name the field and the reason only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from hub.ledger.event import IDENTITY_NUMBER

_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})
"""Pydantic's error types for a value that should have been a JSON object."""


def problems(exc: ValidationError, *, prefix: str = "") -> list[str]:
    """One line per problem: ``field.path: why`` — never the rejected value."""
    return [prefix + problem(err) for err in exc.errors(include_input=False, include_url=False)]


def problem(err: Mapping[str, Any], *, skip: Collection[str] = ()) -> str:
    """``field.path: why`` for one of pydantic's error dicts, never its ``input``. ``skip``:
    parts of the path not to name (e.g. FastAPI's ``body`` and ``query``)."""
    if err["type"] == "json_invalid":  # FastAPI's: loc is ("body", offset), ctx the why
        why = (err.get("ctx") or {}).get("error", "JSON decode error")
        return f"body: not valid JSON ({why} at character {err['loc'][-1]}); send a JSON object"
    whole_body = tuple(err["loc"]) == ("body",) and "body" in skip
    if whole_body and (err["type"] == "missing" or err["type"] in _NOT_AN_OBJECT):
        given = "no body" if err["type"] == "missing" else "the body is not a JSON object"
        return f"body: {given}; send a JSON object (Content-Type: application/json)"
    where = ".".join(_part(p) for p in err["loc"] if p not in skip)
    where = where or ("body" if whole_body else "(record)")
    message = str(err["msg"]).removeprefix("Value error, ")  # our validators' own words
    if err["type"] == "extra_forbidden":
        message = "unknown field; remove it or check its spelling"
    elif err["type"] == "missing":
        message = "required field is missing"
    return f"{where}: {message}"


def _part(part: object) -> str:
    """One step of an error's path; a field named by what looks like an identity number
    (an unknown key someone sent) is not repeated."""
    text = str(part)
    return "(a field named by an identity number)" if IDENTITY_NUMBER.search(text) else text
