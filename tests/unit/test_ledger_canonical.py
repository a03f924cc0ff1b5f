"""Entry bytes are RFC 8785: byte for byte what the rfc8785 reference package writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ledger.canonical import canonical_bytes, event_document, rfc8785_bytes
from hub.ledger.event import Action, LedgerEvent, Outcome

text = st.text(max_size=40)  # every Unicode scalar value, controls and U+2028 included
maybe = st.none() | text

events = st.builds(
    LedgerEvent,
    time=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    action=st.sampled_from(Action),
    decision=st.sampled_from([None, "permit", "deny"]),
    outcome=st.sampled_from(Outcome),
    reason=maybe,
    origin=maybe,
    recipient=maybe,
    actor=text,
    role=maybe,
    purpose=maybe,
    categories=st.lists(text, max_size=4).map(tuple),
    consent_id=maybe,
    consent_version=st.none() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    payload_sha256=st.none() | st.binary(min_size=32, max_size=32).map(bytes.hex),
    participant=maybe,
    correlation_id=maybe,
)


@settings(max_examples=400, deadline=None)
@given(event=events, salt=st.binary(min_size=16, max_size=16))
def test_entry_bytes_equal_the_rfc8785_reference(event: LedgerEvent, salt: bytes) -> None:
    assert canonical_bytes(event, salt) == rfc8785_bytes(event, salt)


def test_entry_bytes_round_trip_and_carry_a_fresh_salt() -> None:
    event = LedgerEvent(action=Action.VIEW, actor="user:a", reason='tab\t"quote" é \u2028')
    first, second = canonical_bytes(event), canonical_bytes(event)
    assert first != second  # a new salt each time
    document = json.loads(first)
    assert document["reason"] == 'tab\t"quote" é \u2028'
    assert len(document["salt"]) == 24  # base64 of 16 bytes
    assert first == bytes(rfc8785.dumps(document))


def test_what_rfc8785_cannot_represent_is_refused() -> None:
    with pytest.raises(ValueError, match="not valid Unicode"):
        canonical_bytes(LedgerEvent(action=Action.VIEW, actor="\ud800"))
    with pytest.raises(ValueError, match="represents exactly"):
        canonical_bytes(LedgerEvent(action=Action.VIEW, actor="a", consent_version=2**60))
    assert "salt" in event_document(LedgerEvent(action=Action.VIEW, actor="a"), b"0" * 16)
