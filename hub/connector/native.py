"""Reading native records safely: schema violations become :class:`InvalidRecordError`.

Pydantic's own messages repeat the rejected input, which may be a personnummer; these
helpers name the field and the reason only (via :func:`hub.model.problems.problems`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hub.connector.errors import AuthorityError, InvalidRecordError
from hub.model.identity import InvalidIdentityError, PersonalIdentity, parse_identity
from hub.model.problems import problems
from hub.model.records import NativeRecord

M = TypeVar("M", bound=BaseModel)


def parse_payload(connector: str, native: NativeRecord, model: type[M]) -> M:
    """``native.payload`` as ``model``, or :class:`InvalidRecordError` naming the fields."""
    try:
        return model.model_validate(native.payload)
    except ValidationError as exc:
        raise InvalidRecordError(connector, native.source_id, problems(exc)) from None


def parse_person(connector: str, source_id: str, text: str, field: str) -> PersonalIdentity:
    """The identity number in ``field``; the error says why without repeating the number."""
    try:
        return parse_identity(text)
    except InvalidIdentityError as exc:
        raise InvalidRecordError(connector, source_id, [f"{field}: {exc}"]) from None


@contextmanager
def record_problems(connector: str, source_id: str) -> Iterator[None]:
    """Turn validation errors raised while building a common record into InvalidRecordError."""
    try:
        yield
    except ValidationError as exc:
        raise InvalidRecordError(connector, source_id, problems(exc)) from None
    except InvalidIdentityError as exc:
        raise InvalidRecordError(connector, source_id, [str(exc)]) from None


def parse_answer(connector: str, what: str, data: Any, model: type[M]) -> M:
    """An API answer (a page envelope, a status) as ``model``, or :class:`AuthorityError`.

    ``what`` names the call (``"GET /handelser"``) for the message.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AuthorityError(
            connector,
            f"the answer to {what} does not fit the authority's API ({'; '.join(problems(exc))}); "
            "the connector may be older than the API, check for an update",
        ) from None
