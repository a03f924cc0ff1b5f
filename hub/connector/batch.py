"""Pushing several transfers in one request: the batch form of an authority's message API.

An authority that takes messages in batches answers item by item, so one request carries
many transfers while each keeps its own idempotency key and its own result. The form the
shipped connectors speak (the sandboxes serve it; see ``connectors/sandbox_kit/pushes.py``)::

    POST <path>  {"items": [{"idempotency_key": K, "body": {...}}, ...]}
    200          {"results": [{"idempotency_key": K, "status": 201|200|4xx|5xx, ...}, ...]}

A whole-request failure (unreachable, 5xx, 429, 409, a refused batch) raises as for a single
push, so every item in it is retried or dead-lettered together; the keys make resending
the already stored ones harmless. So does an answer the hub cannot use (malformed, not
JSON, without one result per item in order): the authority may have stored the items, so
it is transient, never a refusal. A batch answered 413 (too large for the authority) is
sent again in halves, down to single messages. An item answered 408, 409, 425, 429 or 5xx is sent
again (in a smaller batch, within the retry budget); if it still cannot be placed, the
whole batch fails as transient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.connector.errors import (
    RefusedRequestError,
    TransientConnectorError,
    UnusableAnswerError,
)
from hub.connector.http import JsonApi
from hub.connector.retry import NO_RETRY
from hub.model.records import PushResult

BATCH_LIMIT = 100  # transfers per request; the sandboxes take up to 200

ITEM_TRANSIENT = frozenset({408, 409, 425, 429})
"""Item statuses that mean "not now" (as do all 5xx): the item is sent again. 409 is "a
request with this key is still being processed" (:data:`~hub.connector.http.IN_FLIGHT`)."""


def _transient(status: object) -> int | None:
    """The status if it means "not now" for the item, else ``None``."""
    if isinstance(status, int) and (status in ITEM_TRANSIENT or 500 <= status <= 599):
        return status
    return None


def _unusable(api: JsonApi, path: str, why: str) -> TransientConnectorError:
    return TransientConnectorError(
        api.connector,
        f"the authority's answer to a batch to POST {path} {why}; it may have stored the "
        "messages, so they will be sent again with their keys",
    )


TOO_LARGE = 413


def post_batch(
    api: JsonApi, path: str, messages: Sequence[tuple[str, dict[str, object]]]
) -> list[PushResult]:
    """POST ``(idempotency key, body)`` pairs, one result per pair, in order: in one
    request, or, when the authority answers 413 (the request is too large for it), in two
    halves, each split again while it is still too large, so an authority with a smaller
    body limit than the hub's batches gets them all; a single message still too large is
    refused alone, the others keeping their results (see :func:`_post_one_request`)."""
    try:
        return _post_one_request(api, path, messages)
    except RefusedRequestError as exc:
        if exc.status != TOO_LARGE:
            raise
    if len(messages) == 1:
        return [PushResult(accepted=False, detail=f"HTTP {TOO_LARGE} for this message")]
    half = len(messages) // 2
    return post_batch(api, path, messages[:half]) + post_batch(api, path, messages[half:])


def _post_one_request(
    api: JsonApi, path: str, messages: Sequence[tuple[str, dict[str, object]]]
) -> list[PushResult]:
    """POST ``(idempotency key, body)`` pairs in one request; one result per pair, in order.

    An item the authority stored (201) or already had (200) is accepted; an item answered
    408, 409 (its key still being processed), 425, 429 or 5xx is sent again (only those,
    in another request) within the connector's retry budget, and if any is still unplaced
    the whole call raises :class:`TransientConnectorError` (every pair is then retried
    later with its key). Any other item status is a refusal of that item alone, reported
    by status code only (an authority's error text may quote the message). An answer that
    is not usable JSON or does not account for every item, in order, is transient too: the
    authority may have stored what it could not describe.
    """
    answers: list[PushResult | None] = [None] * len(messages)

    def attempt() -> None:
        pending = [i for i, answer in enumerate(answers) if answer is None]
        sent = [messages[i] for i in pending]
        body = {"items": [{"idempotency_key": key, "body": msg} for key, msg in sent]}
        try:
            data = api.json("POST", path, json_body=body, retry=NO_RETRY, keyed=True)
        except UnusableAnswerError:
            why = "is not usable JSON (malformed, not JSON or too large)"
            raise _unusable(api, path, why) from None
        results: Any = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != len(sent):
            raise _unusable(api, path, f"does not hold one result for each of {len(sent)}")
        unplaced: list[int] = []
        for index, (key, _), result in zip(pending, sent, results, strict=True):
            if not isinstance(result, dict) or result.get("idempotency_key") != key:
                raise _unusable(api, path, "is not in the order sent")
            status = result.get("status")
            reference = result.get("reference")
            if status in (200, 201):
                answers[index] = PushResult(
                    accepted=True,
                    duplicate=status == 200,
                    reference=None if reference is None else str(reference),
                )
            elif (again := _transient(status)) is not None:
                unplaced.append(again)
            else:  # a status that is no number is not repeated: it is the authority's text
                code = status if type(status) is int else "status that is no number"
                answers[index] = PushResult(accepted=False, detail=f"HTTP {code} for this message")
        if unplaced:
            statuses = ", ".join(str(s) for s in sorted(set(unplaced)))
            raise TransientConnectorError(
                api.connector,
                f"the authority could not take {len(unplaced)} of {len(sent)} messages to "
                f"POST {path} now (HTTP {statuses} for those)",
            )

    api.retry.call(attempt)
    return [answer for answer in answers if answer is not None]
