"""RFC 8785 (JSON Canonicalization Scheme) bytes of record bodies, and their SHA-256.

The digest of a record body is what the ledger keeps of a disclosure, and it is computed
for every record of every sync. The ``rfc8785`` package is the reference, but it is pure
Python (about 30 µs for a small body). For JSON values without floats, with ASCII object
keys and integers within ±2^53, the standard library's C encoder writes the same bytes
(``sort_keys`` with ``,``/``:`` separators and ``ensure_ascii=False``: the same string
escapes, ASCII keys sort the same by code point as by UTF-16 unit, integers are written
alike), so those go through it; anything else (a float, a non-ASCII key, a huge integer)
goes to ``rfc8785``. tests/unit/test_model_canonical.py compares the two on generated
values.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

_SAFE_INTEGER = 2**53
_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


_LEAVES = (str, bool, type(None))


def _plain(value: Any) -> bool:
    """Whether ``value`` is in the domain where the C encoder writes RFC 8785 bytes.

    Written as loops with the common leaves (text, booleans, null) tested inline: it runs
    for every record body of every sync.
    """
    if isinstance(value, _LEAVES):
        return True
    if isinstance(value, dict):
        for key, item in value.items():
            if not (isinstance(key, str) and key.isascii()):
                return False
            if not isinstance(item, _LEAVES) and not _plain(item):
                return False
        return True
    if isinstance(value, list):
        return all(isinstance(item, _LEAVES) or _plain(item) for item in value)
    if type(value) is int:
        return -_SAFE_INTEGER < value < _SAFE_INTEGER
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value (dicts, lists, strings, numbers, booleans, None).

    Raises what ``rfc8785.dumps`` raises for values it cannot canonicalise.
    """
    if _plain(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the reference refuse it
            pass
    return bytes(rfc8785.dumps(value))


def json_sha256(value: Any) -> str:
    """Hex SHA-256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
