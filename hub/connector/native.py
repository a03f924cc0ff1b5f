"""Reading native records safely: schema violations become :class:`InvalidRecordError`.

Pydantic's own messages repeat the rejected input, which may be a personnummer; these
helpers name the field and the reason only (via :func:`hub.model.problems.problems`).
"""

from __future__ import annotations

from collections.abc import Mapping
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


def parse_typed(
    connector: str,
    native: NativeRecord,
    field: str,
    models: Mapping[str, type[M]],
    what: str,
) -> M:
    """``native.payload`` as the model its ``field`` names (``models``: value -> model);
    :class:`InvalidRecordError` if the field names none (``what`` says what it should
    name, e.g. "an event type") or the payload does not fit the model."""
    kind = native.payload.get(field)
    model = models.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidRecordError(
            connector, native.source_id, [f"{field}: not {what} this connector knows"]
        )
    return parse_payload(connector, native, model)


def parse_person(connector: str, source_id: str, text: str, field: str) -> PersonalIdentity:
    """The identity number in ``field``; the error says why without repeating the number."""
    try:
        return parse_identity(text)
    except InvalidIdentityError as exc:
        raise InvalidRecordError(connector, source_id, [f"{field}: {exc}"]) from None


class record_problems:
    """Turn validation errors raised while building a common record into InvalidRecordError.

    A class rather than a ``@contextmanager`` generator: it is entered once per record of
    every sync, and a generator-based one costs several times more.
    """

    __slots__ = ("connector", "source_id")

    def __init__(self, connector: str, source_id: str) -> None:
        self.connector = connector
        self.source_id = source_id

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, ValidationError):
            raise InvalidRecordError(self.connector, self.source_id, problems(exc)) from None
        if isinstance(exc, InvalidIdentityError):
            raise InvalidRecordError(self.connector, self.source_id, [str(exc)]) from None


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
