"""Receiving pushes: one stored item per ``Idempotency-Key``, repeats answered the same.

Every sandbox takes a push two ways: one message per request (the key in the
``Idempotency-Key`` header), or a batch of up to :data:`BATCH_LIMIT` messages in one
request (each with its own key), stored in one transaction and answered item by item.
The batch form, shared by all four sandboxes::

    POST <message path>/batch
    {"items": [{"idempotency_key": "...", "body": {...}}, ...]}

    200 {"results": [{"idempotency_key": "...", "status": 201, "reference": "..."},
                     {"idempotency_key": "...", "status": 200, "reference": "..."},
                     {"idempotency_key": "...", "status": 422, "error": "..."}]}

An item's ``status`` is what the single form would have answered: 201 stored, 200 a
repeat (already stored), 400 no usable key, 422 a key reused with another body. A batch
that is not of that shape is refused whole with 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Response, params

from connectors.sandbox_kit.app import SandboxKit
from connectors.sandbox_kit.state import KeyReusedError, Receipt

REPLAYED = "Idempotent-Replayed"
BATCH_LIMIT = 200
_NO_KEY = "an Idempotency-Key header of 16 to 200 characters is required"
_KEY_REUSED = "this Idempotency-Key was used with a different body"


def _usable(key: object) -> bool:
    return isinstance(key, str) and 16 <= len(key) <= 200


def receive_push(
    kit: SandboxKit, key: str | None, body: dict[str, Any], response: Response
) -> Receipt:
    """Store ``body`` under ``key``; 201 when new, 200 with ``Idempotent-Replayed`` when not.

    A missing key is refused with 400 (every push must be repeatable safely); a key reused
    with another body with 422.
    """
    if not _usable(key):
        raise HTTPException(400, _NO_KEY)
    assert key is not None
    try:
        receipt = kit.state.receive(key, body)
    except KeyReusedError:
        raise HTTPException(422, _KEY_REUSED) from None
    response.status_code = 200 if receipt.duplicate else 201
    if receipt.duplicate:
        response.headers[REPLAYED] = "true"
    return receipt


def receive_batch(kit: SandboxKit, payload: Any) -> dict[str, list[dict[str, Any]]]:
    """Store a batch of pushes in order; one result per item (see the module docstring)."""
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= BATCH_LIMIT:
        raise HTTPException(400, f"items must be a list of 1 to {BATCH_LIMIT} messages")
    if not all(isinstance(item, dict) and isinstance(item.get("body"), dict) for item in items):
        raise HTTPException(400, "every item needs an idempotency_key and a body object")
    usable = [(i, item["idempotency_key"], item["body"]) for i, item in enumerate(items)]
    usable = [(i, key, body) for i, key, body in usable if _usable(key)]
    answers = dict(
        zip(
            (i for i, _, _ in usable),
            kit.state.receive_many([(key, body) for _, key, body in usable]),
            strict=True,
        )
    )
    results: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        answer = answers.get(i)
        key = item.get("idempotency_key")
        if answer is None:
            results.append({"idempotency_key": key, "status": 400, "error": _NO_KEY})
        elif isinstance(answer, KeyReusedError):
            results.append({"idempotency_key": key, "status": 422, "error": _KEY_REUSED})
        else:
            status = 200 if answer.duplicate else 201
            results.append(
                {"idempotency_key": key, "status": status, "reference": answer.reference}
            )
    return {"results": results}


def add_batch_route(
    app: FastAPI, path: str, kit: SandboxKit, auth: params.Depends | None = None
) -> None:
    """Serve the batch form of a sandbox's message endpoint at ``path``."""

    @app.post(path, dependencies=[] if auth is None else [auth])
    async def batch(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return receive_batch(kit, payload)
