"""Errors of the consent area (all :class:`hub.errors.EviError`, so the CLI maps them)."""

from __future__ import annotations

from hub.errors import InputError


class ConsentFileError(InputError):
    """A consent file is invalid; ``problems`` holds one line per problem (field, value, why).

    No line ever contains a personnummer: the ``pnr`` field's value is never repeated.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(
            f"{source}: {count} {noun}; nothing was stored: " + "; ".join(problems), problems
        )
        self.source = source


class EvidenceRefusedError(InputError):
    """The consent's evidence did not verify; the consent was not stored."""
