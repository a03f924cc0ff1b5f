"""The region's search is paged by key, so a record updated while the hub pages skips none.

The search is ordered by ``uppdateradMs``. With a growing ``offset``, a record updated at
the region between two pages moves to the end of the ordering, every later record shifts
one place back, and the one that was first on the next page is never read; the cursor then
passes it, so the next night misses it too. Each page is asked instead from the last
``uppdateradMs`` read (``uppdateradFranMs`` is inclusive), opening with the last record read
(docs/connectors.md, "Paging the region's search").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.region import sandbox as region_sandbox
from connectors.region.client import PREFIX
from connectors.region.connector import RegionConnector
from connectors.sandbox_kit import Population, SandboxKit
from hub.connector import NO_RETRY, InProcessTransport, SandboxSettings
from hub.model.identity import parse_identity
from hub.model.records import NativeRecord

SEED, PEOPLE, PAGE, MAX_CALLS = 7, 40, 5, 20
SETTINGS = SandboxSettings(seed=SEED, population=PEOPLE)


def posts(count: int) -> list[dict[str, Any]]:
    """The sandbox's first ``count`` records, each with its own uppdateradMs, rising."""
    kit = SandboxKit("region", SETTINGS)
    return [region_sandbox.post(kit, j, j) for j in range(count)]


class Region:
    """An honest region: the search ordered by (uppdateradMs, postId), uppdateradFranMs
    inclusive, offset counted from it. ``before(n, region)`` runs before the n-th search,
    so a test can update a record while the hub pages."""

    def __init__(
        self, records: list[dict[str, Any]], before: Callable[[int, Region], None] | None = None
    ) -> None:
        self.posts = {p["postId"]: p for p in records}
        self.before = before
        self.asked: list[dict[str, Any]] = []

    def update(self, post_id: str, ms: int) -> None:
        self.posts[post_id] = {**self.posts[post_id], "uppdateradMs": ms}

    def versions(self) -> set[tuple[str, int]]:
        return {(p["postId"], p["uppdateradMs"]) for p in self.posts.values()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)
        self.asked.append(asked)
        assert len(self.asked) <= MAX_CALLS, "the pull would have gone on forever"
        if self.before:
            self.before(len(self.asked), self)
        since = asked["uppdateradFranMs"]
        hits = sorted(
            (p for p in self.posts.values() if since is None or p["uppdateradMs"] >= since),
            key=lambda p: (p["uppdateradMs"], p["postId"]),
        )
        page = hits[asked["offset"] : asked["offset"] + asked["limit"]]
        return httpx.Response(200, json={"traffar": len(hits), "poster": page})


@pytest.fixture
def pull(tmp_path: Path) -> Iterator[Callable[[Region], list[NativeRecord]]]:
    made: list[RegionConnector] = []
    someone = [parse_identity(Population(SEED, PEOPLE).numbers[0])]

    def run(region: Region) -> list[NativeRecord]:
        options = RegionConnector.Options(
            **RegionConnector.sandbox_options("http://region.test", tmp_path), page_size=PAGE
        )
        connector = RegionConnector.create(
            options, transport=httpx.MockTransport(region), retry=NO_RETRY
        )
        made.append(connector)
        got: list[NativeRecord] = []
        for native in connector.pull(None, someone):
            got.append(native)
            # What the sync would commit if the pull stopped here: the cursor of the last
            # record stored. The next night asks from it (inclusive), so a record before it
            # that was never read, as it stands now, would be lost for good.
            read = {(n.source_id, int(n.cursor)) for n in got}
            passed = [
                key for key in region.versions() if key[1] < int(native.cursor) and key not in read
            ]
            assert passed == [], f"cursor {native.cursor} passes unread {passed}"
        return got

    yield run
    for connector in made:
        connector.close()


def test_a_record_updated_between_two_pages_skips_no_other_record(pull: Any) -> None:
    records = posts(12)
    moved = records[2]["postId"]
    later = records[-1]["uppdateradMs"] + 1_000

    def update_between_pages(n: int, region: Region) -> None:
        if n == 2:  # after the first page was read: record 2 moves to the end
            region.update(moved, later)

    region = Region(records, update_between_pages)
    got = pull(region)
    read = {(n.source_id, int(n.cursor)) for n in got}
    # Every record as it stands now is read (record 2 twice, its old and new version) ...
    assert region.versions() <= read
    assert {n.source_id for n in got} == {p["postId"] for p in records}
    assert [n.source_id for n in got].count(moved) == 2
    # ... with each page asked from the last uppdateradMs read, opening with that record.
    assert [(a["uppdateradFranMs"], a["offset"]) for a in region.asked] == [
        (None, 0),
        (records[4]["uppdateradMs"], 0),
        (records[8]["uppdateradMs"], 0),
    ]
    assert got[-1].source_id == moved and got[-1].cursor == str(later)


def test_records_sharing_a_millisecond_across_pages_are_read_once_each(pull: Any) -> None:
    records = posts(12)
    tie = records[3]["uppdateradMs"]
    records[3:11] = [{**p, "uppdateradMs": tie} for p in records[3:11]]  # eight of one ms
    region = Region(records)
    got = pull(region)
    assert sorted(n.source_id for n in got) == sorted(p["postId"] for p in records)
    assert [(a["uppdateradFranMs"], a["offset"]) for a in region.asked] == [
        (None, 0),
        (tie, 1),  # the first page ended with two of the eight: it opens with the second
        (tie, 5),
    ]


@pytest.mark.parametrize("which", [4, 3])
def test_a_record_read_at_the_page_boundary_updated_before_the_next_page_skips_none(
    pull: Any, which: int
) -> None:
    # Record 4 is the first page's last; records 3 and 4 share its millisecond. Whichever
    # of them moves to the end before the second search, the record after them is read.
    records = posts(12)
    records[3] = {**records[3], "uppdateradMs": records[4]["uppdateradMs"]}
    moved = records[which]["postId"]
    later = records[-1]["uppdateradMs"] + 1_000

    def update_between_pages(n: int, region: Region) -> None:
        if n == 2:
            region.update(moved, later)

    region = Region(records, update_between_pages)
    got = pull(region)
    assert region.versions() <= {(n.source_id, int(n.cursor)) for n in got}
    assert {n.source_id for n in got} == {p["postId"] for p in records}


def test_the_sandbox_reads_uppdateradfranms_as_inclusive() -> None:
    app = RegionConnector.sandbox_app(SETTINGS)
    everyone = list(Population(SEED, PEOPLE).numbers)
    client = httpx.Client(transport=InProcessTransport(app), base_url="http://region")

    def search(since: int | None, offset: int = 0) -> dict[str, Any]:
        body = {"personnummer": everyone, "uppdateradFranMs": since, "offset": offset, "limit": 3}
        answer: dict[str, Any] = client.post(PREFIX + "/sok", json=body).json()
        return answer

    with client:
        first = search(None)
        third = first["poster"][2]
        again = search(third["uppdateradMs"])
        assert again["poster"][0] == third
        assert again["traffar"] == first["traffar"] - 2
        assert search(third["uppdateradMs"], 1)["poster"][0] == search(None, 3)["poster"][0]
