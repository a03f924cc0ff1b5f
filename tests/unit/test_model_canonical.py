"""Record-body digests: the fast canonical JSON writes exactly RFC 8785's bytes."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.model.canonical import canonical_json, json_sha256

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=1500, deadline=None)
@given(_json)
def test_canonical_json_is_byte_for_byte_rfc8785(value: Any) -> None:
    try:
        expected = bytes(rfc8785.dumps(value))
    except Exception as exc:
        with pytest.raises(type(exc)):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, None, '\u2028\x7f\x00"\\/'], "é": 1.5},  # floats, non-ASCII keys
        {"\U0001f600": 1, "\ufb01": 2},  # keys RFC 8785 orders by UTF-16 units
        [0.1, 1e21, -0.0, 5e-324],
    ],
)
def test_values_outside_the_fast_domain_still_get_rfc8785_bytes(value: Any) -> None:
    assert canonical_json(value) == bytes(rfc8785.dumps(value))


def test_an_integer_rfc8785_cannot_represent_exactly_is_refused_as_it_refuses() -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_json({"big": 2**60})


def test_the_digest_is_sha256_of_those_bytes() -> None:
    import hashlib

    value = {"kind": "plan", "start": "2025-01-01", "parties": ["af", "kommun"], "extent": 50}
    assert json_sha256(value) == hashlib.sha256(rfc8785.dumps(value)).hexdigest()
