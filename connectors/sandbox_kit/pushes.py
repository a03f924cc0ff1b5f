"""Receiving a push: one stored item per ``Idempotency-Key``, repeats answered the same."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Response

from connectors.sandbox_kit.app import SandboxKit
from connectors.sandbox_kit.state import KeyReusedError, Receipt

REPLAYED = "Idempotent-Replayed"


def receive_push(
    kit: SandboxKit, key: str | None, body: dict[str, Any], response: Response
) -> Receipt:
    """Store ``body`` under ``key``; 201 when new, 200 with ``Idempotent-Replayed`` when not.

    A missing key is refused with 400 (every push must be repeatable safely); a key reused
    with another body with 422.
    """
    if not key or not 16 <= len(key) <= 200:
        raise HTTPException(400, "an Idempotency-Key header of 16 to 200 characters is required")
    try:
        receipt = kit.state.receive(key, body)
    except KeyReusedError:
        raise HTTPException(422, "this Idempotency-Key was used with a different body") from None
    response.status_code = 200 if receipt.duplicate else 201
    if receipt.duplicate:
        response.headers[REPLAYED] = "true"
    return receipt
