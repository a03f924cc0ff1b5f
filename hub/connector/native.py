"""Reading native records safely: schema violations become :class:`InvalidRecordError`.

Pydantic's own messages repeat the rejected input, which may be a personnummer; these
helpers name the field and the reason only (via :func:`hub.model.problems.problems`).

Every text a record passes on (its id, its codes, a date written as text) must be
printable and at most :data:`MAX_TEXT` characters: staff see ids and unknown codes on
their terminals, pages and spreadsheets, so a record whose text holds a control character
(an escape sequence, a carriage return, a NUL), a bidi override or a zero-width character,
or a field of a megabyte, is refused as invalid (counted, logged by its digest) by
:func:`parse_payload` rather than stored (see :func:`text_problems`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hub.connector.errors import AuthorityError, InvalidRecordError
from hub.ledger.event import IDENTITY_NUMBER
from hub.model.identity import InvalidIdentityError, PersonalIdentity, parse_identity
from hub.model.problems import problems
from hub.model.records import NativeRecord
from hub.text.terminal import shown

M = TypeVar("M", bound=BaseModel)

MAX_TEXT = 200
"""The longest text a record may pass on in one field (as ``NativeRecord.source_id``):
ids, codes and dates written as text are far shorter; the authorities' APIs carry no
free text (clinical detail is refused outright)."""

NOT_PRINTABLE = (
    "holds characters that are not printable (control, format or invisible ones such as "
    "escape sequences, carriage returns, NUL, bidi overrides or zero-width characters)"
)
TOO_LONG = f"longer than {MAX_TEXT} characters"


def parse_payload(connector: str, native: NativeRecord, model: type[M]) -> M:
    """``native.payload`` as ``model``, or :class:`InvalidRecordError` naming the fields,
    also when the record's id or a text of the model is not fit to show
    (:func:`text_problems`)."""
    try:
        parsed = model.model_validate(native.payload)
    except ValidationError as exc:
        found = [shown(problem) for problem in problems(exc)]  # an unknown key may be named
        raise InvalidRecordError(connector, record_id(native.source_id), found) from None
    found = text_problems(native.source_id, parsed)
    if found:
        raise InvalidRecordError(connector, record_id(native.source_id), found)
    return parsed


def text_problems(source_id: str, parsed: BaseModel) -> list[str]:
    """What is wrong with the record's id and each text field of ``parsed`` (nested models
    and lists included): not printable (:meth:`str.isprintable`) or longer than
    :data:`MAX_TEXT`; never the text itself. Empty for a record fit to show."""
    if _fits(source_id) and _fits(parsed):
        return []  # the usual case, without naming every field (a fifth of the time)
    found = [f"source_id: {why}" for why in _unfit(source_id)]
    for where, text in _texts(parsed, ""):
        found.extend(f"{where}: {why}" for why in _unfit(text))
    return found


def _fits(value: Any) -> bool:
    """Whether every text in ``value`` (as :func:`_texts` finds them) is fit to show."""
    if isinstance(value, str):
        return len(value) <= MAX_TEXT and value.isprintable()
    if isinstance(value, BaseModel):
        extra = value.__pydantic_extra__  # a model that allows extras keeps them apart
        return all(_fits(item) for item in value.__dict__.values()) and (
            not extra or all(_fits(item) for item in extra.values())
        )
    if isinstance(value, list | tuple):
        return all(_fits(item) for item in value)
    return True


def _unfit(text: str) -> Iterator[str]:
    if len(text) > MAX_TEXT:
        yield TOO_LONG
    if not text.isprintable():
        yield NOT_PRINTABLE


def _texts(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every text in ``value`` (a model's fields, lists, tuples) with the path to it."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, BaseModel):
        for name, item in value:
            yield from _texts(item, f"{where}.{name}" if where else name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, f"{where}[{index}]")


def record_id(source_id: str) -> str:
    """A record's id as an error may name it: escaped where not printable, cut short where
    too long (the error still says why the record was refused)."""
    text = shown(source_id)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def field_name(key: object) -> str:
    """An authority's key (a field name it sent) as a problem may name it: escaped where
    not printable, cut short, and never a key that looks like an identity number."""
    text = str(key)
    if IDENTITY_NUMBER.search(text):
        return "(a field named by an identity number)"
    return record_id(text)


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
            connector, record_id(native.source_id), [f"{field}: not {what} this connector knows"]
        )
    return parse_payload(connector, native, model)


def parse_person(connector: str, source_id: str, text: str, field: str) -> PersonalIdentity:
    """The identity number in ``field``; the error says why without repeating the number."""
    try:
        return parse_identity(text)
    except InvalidIdentityError as exc:
        raise InvalidRecordError(connector, record_id(source_id), [f"{field}: {exc}"]) from None


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
            found = [shown(problem) for problem in problems(exc)]
            raise InvalidRecordError(self.connector, record_id(self.source_id), found) from None
        if isinstance(exc, InvalidIdentityError):
            raise InvalidRecordError(
                self.connector, record_id(self.source_id), [str(exc)]
            ) from None


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
