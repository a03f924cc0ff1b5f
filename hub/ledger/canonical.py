"""The exact bytes of a ledger entry: RFC 8785 canonical JSON of the event plus a salt.

These bytes are the Merkle leaf input; they are stored verbatim and exported verbatim
(``leaf`` in the JSON Lines export), so anyone can recompute the leaf hash. The random
16-byte ``salt`` stops anyone holding a leaf hash from confirming a guess of its content
(e.g. "did person X get a permit on day Y?").

Document fields (format ``v`` = 1): every field of :class:`hub.ledger.event.LedgerEvent`,
``time`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, ``categories`` as a list, absent values as
``null``, and ``salt`` as base64. Readers must ignore fields they do not know.

Why not call the ``rfc8785`` package for every entry: it is pure Python and takes ~26 µs
per entry, more than the whole time budget of a batched append. An entry document holds
only ASCII keys, strings, lists of strings, ``null`` and integers within ±2^53, and for
exactly those values the standard library's JSON string escaping (``ensure_ascii=False``)
writes the same bytes as RFC 8785 (same escapes: ``\\"``, ``\\\\``, ``\\b \\f \\n
\\r \\t``, other controls as lower-case ``\\u00xx``; everything else literal UTF-8).
The keys are fixed ASCII names, so their RFC 8785 order is plain sorted order and the
document is written straight into a template in that order (about 3 µs per entry,
against about 9 µs for building a dict and running the JSON encoder over it).
:func:`canonical_bytes` refuses anything outside that domain, and the tests compare it
byte for byte with ``rfc8785.dumps`` over generated events
(tests/unit/test_ledger_canonical.py), which is also what :func:`rfc8785_bytes` offers
callers who want the reference encoder.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import rfc8785

from hub.ledger.event import LedgerEvent

FORMAT_VERSION = 1
SALT_BYTES = 16
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SAFE_INTEGER = 2**53

# The C string escaper behind json.dumps(..., ensure_ascii=False): quotes included.
_quote: Callable[[str], str] = json.encoder.encode_basestring


def format_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (always six fraction digits)."""
    if value.tzinfo is not UTC:  # events are UTC already; others are converted
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def event_document(event: LedgerEvent, salt: bytes) -> dict[str, Any]:
    """The JSON document of ``event`` as it will be canonicalised."""
    return {
        "v": FORMAT_VERSION,
        "time": format_time(event.time),
        "action": event.action.value,
        "decision": event.decision,
        "outcome": event.outcome.value,
        "reason": event.reason,
        "origin": event.origin,
        "recipient": event.recipient,
        "actor": event.actor,
        "role": event.role,
        "purpose": event.purpose,
        "categories": list(event.categories),
        "consent_id": event.consent_id,
        "consent_version": event.consent_version,
        "payload_sha256": event.payload_sha256,
        "participant": event.participant,
        "correlation_id": event.correlation_id,
        "salt": base64.b64encode(salt).decode("ascii"),
    }


def _encode(event: LedgerEvent, salt: bytes, time_text: str) -> bytes:
    """The document of :func:`event_document`, written key by key in RFC 8785 order.

    The ``None`` tests are written out in the template rather than in a helper: a Python
    call per field was a fifth of the cost of a batched append.
    """
    version = event.consent_version
    if version is not None and not -_SAFE_INTEGER < version < _SAFE_INTEGER:
        raise ValueError("consent_version is outside the integers RFC 8785 represents exactly")
    q = _quote  # StrEnum members are str: quoting one writes its value
    consent_id, correlation_id, decision = event.consent_id, event.correlation_id, event.decision
    origin, participant, payload = event.origin, event.participant, event.payload_sha256
    purpose, reason, recipient, role = event.purpose, event.reason, event.recipient, event.role
    salt_text = binascii.b2a_base64(salt, newline=False).decode("ascii")
    text = (
        f'{{"action":{q(event.action)},"actor":{q(event.actor)},'
        f'"categories":[{",".join(map(q, event.categories))}],'
        f'"consent_id":{"null" if consent_id is None else q(consent_id)},'
        f'"consent_version":{"null" if version is None else int(version)},'
        f'"correlation_id":{"null" if correlation_id is None else q(correlation_id)},'
        f'"decision":{"null" if decision is None else q(decision)},'
        f'"origin":{"null" if origin is None else q(origin)},'
        f'"outcome":{q(event.outcome)},'
        f'"participant":{"null" if participant is None else q(participant)},'
        f'"payload_sha256":{"null" if payload is None else q(payload)},'
        f'"purpose":{"null" if purpose is None else q(purpose)},'
        f'"reason":{"null" if reason is None else q(reason)},'
        f'"recipient":{"null" if recipient is None else q(recipient)},'
        f'"role":{"null" if role is None else q(role)},'
        f'"salt":"{salt_text}","time":"{time_text}","v":{FORMAT_VERSION}}}'
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a ledger event field holds text that is not valid Unicode") from None


def canonical_bytes(event: LedgerEvent, salt: bytes | None = None) -> bytes:
    """RFC 8785 bytes of ``event`` with ``salt`` (16 fresh random bytes when not given).

    Raises ``ValueError`` for text that is not valid Unicode (a lone surrogate) or an
    integer RFC 8785 cannot represent exactly.
    """
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    return _encode(event, salt, format_time(event.time))


def canonical_batch(events: Sequence[LedgerEvent]) -> list[tuple[bytes, str]]:
    """``(canonical bytes, time text)`` of each event, each with its own fresh salt.

    The same bytes :func:`canonical_bytes` writes; the 16-byte salts come from one read
    of the system's random source for the whole batch. Raises like :func:`canonical_bytes`.
    """
    salts = secrets.token_bytes(SALT_BYTES * len(events))
    out: list[tuple[bytes, str]] = []
    append = out.append
    offset = 0
    for event in events:
        time = event.time
        if time.tzinfo is not UTC:  # as in format_time, without the call
            time = time.astimezone(UTC)
        time_text = time.isoformat(timespec="microseconds")[:-6] + "Z"
        append((_encode(event, salts[offset : offset + SALT_BYTES], time_text), time_text))
        offset += SALT_BYTES
    return out


def rfc8785_bytes(event: LedgerEvent, salt: bytes) -> bytes:
    """The same bytes from the ``rfc8785`` reference package (slower; for checking)."""
    return bytes(rfc8785.dumps(event_document(event, salt)))


def read_document(data: bytes) -> dict[str, Any]:
    """Parse stored entry bytes; raises ``ValueError`` if they are not a JSON object."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("entry bytes are not a JSON object")
    return doc
