"""Pushing several transfers in one request: the batch form of an authority's message API.

An authority that takes messages in batches answers item by item, so one request carries
many transfers while each keeps its own idempotency key and its own result. The form the
shipped connectors speak (the sandboxes serve it; see ``connectors/sandbox_kit/pushes.py``)::

    POST <path>  {"items": [{"idempotency_key": K, "body": {...}}, ...]}
    200          {"results": [{"idempotency_key": K, "status": 201|200|4xx, ...}, ...]}

A whole-request failure (unreachable, 5xx, 429, a refused batch) raises as for a single
push, so every item in it is retried or dead-lettered together; the keys make resending
the already stored ones harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.connector.errors import AuthorityError
from hub.connector.http import JsonApi
from hub.model.records import PushResult

BATCH_LIMIT = 100  # transfers per request; the sandboxes take up to 200


def post_batch(
    api: JsonApi, path: str, messages: Sequence[tuple[str, dict[str, object]]]
) -> list[PushResult]:
    """POST ``(idempotency key, body)`` pairs in one request; one result per pair, in order.

    An item the authority stored (201) or already had (200) is accepted; any other item
    status is a refusal of that item alone, reported by status code only (an authority's
    error text may quote the message). An answer that does not account for every item, in
    order, is an :class:`AuthorityError`.
    """
    data = api.json(
        "POST",
        path,
        json_body={"items": [{"idempotency_key": key, "body": body} for key, body in messages]},
    )
    results: Any = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) != len(messages):
        raise AuthorityError(
            api.connector,
            f"the authority answered a batch of {len(messages)} to POST {path} without one "
            "result per message; ask the authority to check its API",
        )
    answers: list[PushResult] = []
    for (key, _), result in zip(messages, results, strict=True):
        if not isinstance(result, dict) or result.get("idempotency_key") != key:
            raise AuthorityError(
                api.connector,
                f"the authority's results to POST {path} are not in the order sent; "
                "ask the authority to check its API",
            )
        status = result.get("status")
        reference = result.get("reference")
        if status in (200, 201):
            answers.append(
                PushResult(
                    accepted=True,
                    duplicate=status == 200,
                    reference=None if reference is None else str(reference),
                )
            )
        else:
            answers.append(PushResult(accepted=False, detail=f"HTTP {status} for this message"))
    return answers
