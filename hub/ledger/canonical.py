"""The exact bytes of a ledger entry: RFC 8785 canonical JSON of the event plus a salt.

These bytes are the Merkle leaf input; they are stored verbatim and exported verbatim
(``leaf`` in the JSON Lines export), so anyone can recompute the leaf hash. The random
16-byte ``salt`` stops anyone holding a leaf hash from confirming a guess of its content
(e.g. "did person X get a permit on day Y?").

Document fields (format ``v`` = 1): every field of :class:`hub.ledger.event.LedgerEvent`,
``time`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, ``categories`` as a list, absent values as
``null``, and ``salt`` as base64. Readers must ignore fields they do not know.

Why not call the ``rfc8785`` package for every entry: it is pure Python and takes ~26 µs
per entry, a quarter of the time budget of a batched append. An entry document holds
only ASCII keys, strings, lists of strings, ``null`` and integers within ±2^53, and for
exactly those values the standard library's JSON encoder with sorted keys, no spaces and
``ensure_ascii=False`` writes the same bytes as RFC 8785 (same escapes: ``\\"``, ``\\\\``,
``\\b \\f \\n \\r \\t``, other controls as lower-case ``\\u00xx``; everything else
literal UTF-8). :func:`canonical_bytes` refuses anything outside that domain, and the
tests compare it byte for byte with ``rfc8785.dumps`` over generated events
(tests/unit/test_ledger_canonical.py), which is also what :func:`rfc8785_bytes` offers
callers who want the reference encoder.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import rfc8785

from hub.ledger.event import LedgerEvent

FORMAT_VERSION = 1
SALT_BYTES = 16
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SAFE_INTEGER = 2**53

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


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


def canonical_bytes(event: LedgerEvent, salt: bytes | None = None) -> bytes:
    """RFC 8785 bytes of ``event`` with ``salt`` (16 fresh random bytes when not given).

    Raises ``ValueError`` for text that is not valid Unicode (a lone surrogate) or an
    integer RFC 8785 cannot represent exactly.
    """
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    version = event.consent_version
    if version is not None and not -_SAFE_INTEGER < version < _SAFE_INTEGER:
        raise ValueError("consent_version is outside the integers RFC 8785 represents exactly")
    try:
        return _ENCODER.encode(event_document(event, salt)).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a ledger event field holds text that is not valid Unicode") from None


def rfc8785_bytes(event: LedgerEvent, salt: bytes) -> bytes:
    """The same bytes from the ``rfc8785`` reference package (slower; for checking)."""
    return bytes(rfc8785.dumps(event_document(event, salt)))


def read_document(data: bytes) -> dict[str, Any]:
    """Parse stored entry bytes; raises ``ValueError`` if they are not a JSON object."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("entry bytes are not a JSON object")
    return doc
