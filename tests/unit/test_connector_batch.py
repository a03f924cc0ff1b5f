"""The batch form of a push: an item the authority cannot take *now* is sent again, and an
answer the hub cannot read never turns messages the authority may have stored into dead
letters."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sync_support import NO_WAIT, knobs, received, sync_options

from hub.connector import (
    AuthorityError,
    JsonApi,
    RetryPolicy,
    TransientConnectorError,
    build_client,
)
from hub.connector.batch import post_batch
from hub.connector.service import build_connector
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget, transports
from hub.model.records import PushResult
from hub.store.tables.sync import OutboxItem
from hub.sync.delivery import Deliverer
from hub.sync.job import run_sync

PATH = "/meddelanden/batch"
MESSAGES = [(f"key-{i}", {"n": i}) for i in range(5)]


class Authority:
    """A batch endpoint answering each item with the next status from its script."""

    def __init__(self, *rounds: list[int] | str) -> None:
        self.rounds = list(rounds)
        self.sent: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["items"]
        self.sent.append([item["idempotency_key"] for item in items])
        script = self.rounds.pop(0) if self.rounds else [201] * len(items)
        if isinstance(script, str):
            return httpx.Response(200, headers={"Content-Type": "application/json"}, text=script)
        results = [
            {"idempotency_key": item["idempotency_key"], "status": status, "reference": f"r-{i}"}
            for i, (item, status) in enumerate(zip(items, script, strict=True))
        ]
        return httpx.Response(200, json={"results": results})


def api(handler: Callable[[httpx.Request], httpx.Response], waits: list[float]) -> JsonApi:
    client = build_client(
        "kommun", "https://k.example", timeout_seconds=5, transport=httpx.MockTransport(handler)
    )
    return JsonApi("kommun", client, RetryPolicy(attempts=3, sleep=waits.append))


def test_items_the_authority_cannot_take_now_are_sent_again_alone() -> None:
    """Before: 503 and 429 for an item were refusals, and the items dead letters."""
    authority = Authority([201, 503, 429, 422, 200], [201, 201])
    waits: list[float] = []
    results = post_batch(api(authority, waits), PATH, MESSAGES)
    assert authority.sent == [[k for k, _ in MESSAGES], ["key-1", "key-2"]]
    assert [(r.accepted, r.duplicate) for r in results] == [
        (True, False),
        (True, False),
        (True, False),
        (False, False),
        (True, True),
    ]
    assert results[3] == PushResult(accepted=False, detail="HTTP 422 for this message")
    assert len(waits) == 1


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504, 507])
def test_each_not_now_status_is_retried(status: int) -> None:
    authority = Authority([status, 201], [201])
    results = post_batch(api(authority, []), PATH, MESSAGES[:2])
    assert all(r.accepted for r in results) and authority.sent[1] == ["key-0"]


@pytest.mark.parametrize("status", [400, 410, 422, "201", None, True, "199001012385"])
def test_other_item_statuses_are_refusals_of_that_item(status: Any) -> None:
    results = post_batch(api(Authority([status, 201]), []), PATH, MESSAGES[:2])
    # what is no number is the authority's own text, which goes into the outbox as the
    # reason: it is not repeated
    code = status if type(status) is int else "status that is no number"
    assert results[0] == PushResult(accepted=False, detail=f"HTTP {code} for this message")
    assert results[1].accepted


def test_items_that_stay_unplaceable_fail_the_batch_as_transient() -> None:
    authority = Authority([201, 503], [503], [503])
    waits: list[float] = []
    with pytest.raises(TransientConnectorError) as err:
        post_batch(api(authority, waits), PATH, MESSAGES[:2])
    assert str(err.value) == (
        "kommun: the authority could not take 1 of 1 messages to POST /meddelanden/batch now "
        "(HTTP 503 for those) (tried 3 times in a row)"
    )
    assert authority.sent == [["key-0", "key-1"], ["key-1"], ["key-1"]] and len(waits) == 2


@pytest.mark.parametrize(
    "answer",
    [
        '{"results": [{"idempotency_key": "key-0", "status": 2',  # truncated
        "[" * 10_000,  # too deep to decode
        '{"results": []}',  # not one result per item
        '{"nothing": true}',
        '{"results": [{"idempotency_key": "key-1", "status": 201},'
        ' {"idempotency_key": "key-0", "status": 201}]}',  # out of order
    ],
)
def test_an_unreadable_batch_answer_is_transient_not_a_refusal(answer: str) -> None:
    """Before: an AuthorityError, so every item became a dead letter, although the
    authority may have stored them all. The keys make sending them again safe."""
    authority = Authority(answer)
    results = post_batch(api(authority, []), PATH, MESSAGES[:2])
    assert all(r.accepted for r in results)
    assert authority.sent == [["key-0", "key-1"], ["key-0", "key-1"]]


def test_a_batch_refused_whole_is_still_an_authority_error() -> None:
    handler = Authority()
    waits: list[float] = []
    jsonapi = api(lambda req: handler(req) and httpx.Response(400), waits)
    with pytest.raises(AuthorityError, match="HTTP 400"):
        post_batch(jsonapi, PATH, MESSAGES[:2])
    assert len(handler.sent) == 1 and waits == []


def test_a_batch_answered_409_whole_is_sent_again_not_dead_lettered() -> None:
    """Before: an AuthorityError, so every item became a dead letter. An authority that
    follows the IETF Idempotency-Key draft answers 409 while a request with one of the
    keys is still being processed (the hub's earlier attempt, timed out on its side)."""
    handler = Authority()
    answers = iter([httpx.Response(409, headers={"Retry-After": "2"})])
    waits: list[float] = []
    jsonapi = api(lambda req: next(answers, None) or handler(req), waits)
    results = post_batch(jsonapi, PATH, MESSAGES[:2])
    assert all(r.accepted for r in results) and waits == [2.0]
    assert handler.sent == [["key-0", "key-1"]]


def test_a_batch_answered_409_until_the_attempts_end_is_transient() -> None:
    jsonapi = api(lambda req: httpx.Response(409), [])
    with pytest.raises(TransientConnectorError, match="still processing an earlier request"):
        post_batch(jsonapi, PATH, MESSAGES[:2])


def test_a_malformed_batch_answer_in_a_delivery_makes_no_dead_letters(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    """End to end: the sandbox garbles its answer to the first batch pushed to fk."""
    run_sync(demo, sync_options(targets, deliver=False))
    connector = build_connector(demo, "fk", transport=transports(targets)["fk"], retry=NO_WAIT)
    knobs(targets["fk"], malformed_rate=1.0, fault_budget=1)
    with connector:
        counts = Deliverer(demo, {"fk": connector}, actor="test", max_attempts=3).run()["fk"]
    assert counts.delivered > 0 and counts.dead_lettered == 0
    with demo.db.session() as session:
        dead = session.scalars(select(OutboxItem.id).where(OutboxItem.status == "dead")).all()
    assert dead == []
    assert received(targets["fk"])["unique"] == counts.delivered


def test_a_batch_too_large_for_the_authority_is_sent_again_in_halves() -> None:
    """Before: a 413 refused the whole batch, so up to 100 transfers became dead letters at
    once, and a retry by hand sent the same batches and met the same 413."""
    handler = Authority()

    def small_limit(request: httpx.Request) -> httpx.Response:
        if len(json.loads(request.content)["items"]) > 2:
            return httpx.Response(413)
        return handler(request)

    results = post_batch(api(small_limit, []), PATH, MESSAGES)
    assert [r.accepted for r in results] == [True] * 5
    assert handler.sent == [["key-0", "key-1"], ["key-2"], ["key-3", "key-4"]]


def test_a_single_message_too_large_for_the_authority_is_refused_alone() -> None:
    handler = Authority()

    def refuses_key_1(request: httpx.Request) -> httpx.Response:
        keys = [i["idempotency_key"] for i in json.loads(request.content)["items"]]
        return httpx.Response(413) if "key-1" in keys else handler(request)

    results = post_batch(api(refuses_key_1, []), PATH, MESSAGES[:3])
    assert results[1] == PushResult(accepted=False, detail="HTTP 413 for this message")
    assert results[0].accepted and results[2].accepted
    assert handler.sent == [["key-0"], ["key-2"]]
