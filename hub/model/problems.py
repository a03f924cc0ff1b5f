"""Turn a pydantic ``ValidationError`` into lines fit for users and logs.

Pydantic's own ``str(error)`` repeats the input values, which may be a personnummer;
these lines name the field and the reason only.
"""

from __future__ import annotations

from pydantic import ValidationError


def problems(exc: ValidationError, *, prefix: str = "") -> list[str]:
    """One line per problem: ``field.path: why`` — never the rejected value."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(record)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{prefix}{where}: {message}")
    return lines
