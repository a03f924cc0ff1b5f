"""A date given to the log's search, sample and export, on the CLI and the web, is a day in
Sweden, as `evi log purge --before` and `evi participants purge` read theirs: a privacy
officer asking for "every view on 2026-03-01" gets the views of that Swedish day, the one
at 00:30 Swedish time (23:30 UTC the day before) included and the one at 00:00 on 2 March
left out. Before, these dates were UTC days: an hour (two in summer) off at each end.

Each case puts entries just outside, at and just inside both ends of one Swedish day: a
winter day (24 hours), the day summer time begins (23 hours) and the day it ends (25)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ledger_support import decisions
from sqlalchemy import select
from test_consent_support import ledger
from web_support import bearer, token_for, web_client

from hub.context import Hub
from hub.ledger import service
from hub.store.tables.ledger import LedgerEntryRow
from hub.web.users import Role
from tests.conftest import DATA

PNR = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1]
TICK = timedelta(microseconds=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# (day, the next day, the day's first instant in UTC, its end in UTC, its length in hours)
DAYS = [
    pytest.param(
        "2026-03-01", "2026-03-02", utc(2026, 2, 28, 23), utc(2026, 3, 1, 23), 24, id="winter"
    ),
    pytest.param(
        "2026-03-29",
        "2026-03-30",
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 22),
        23,
        id="summer-time-begins",
    ),
    pytest.param(
        "2026-10-25",
        "2026-10-26",
        utc(2026, 10, 24, 22),
        utc(2026, 10, 25, 23),
        25,
        id="summer-time-ends",
    ),
]


def _entries_around(hub: Hub, start: datetime, end: datetime) -> tuple[list[int], list[int]]:
    """Decisions just before, at and just after each end of [start, end), in time order
    (in a log holding nothing else, seqs 0 to 5); the seqs inside the day, and outside."""
    with hub.db.session() as session:
        first = len(session.scalars(select(LedgerEntryRow.seq)).all())
    times = [start - TICK, start, start + TICK, end - TICK, end, end + TICK]
    for time in times:
        decisions(hub, PNR, 1, time=time)
    return [first + 1, first + 2, first + 3], [first, first + 4, first + 5]


def _seqs(lines: list[dict[str, Any]]) -> list[int]:
    return [line["seq"] for line in lines if line["action"] == "decision"]


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(("day", "next_day", "start", "end", "hours"), DAYS)
def test_a_date_of_the_log_search_sample_and_export_is_a_day_in_sweden(
    hub: Hub, cli: Any, day: str, next_day: str, start: datetime, end: datetime, hours: int
) -> None:
    inside, _outside = _entries_around(hub, start, end)
    assert end - start == timedelta(hours=hours)
    period = ("--from", day, "--to", next_day)
    search = cli("log", "search", *period, "--format", "jsonl")
    assert search.code == 0, search.err
    assert _seqs(_jsonl(search.out)) == inside
    drawn = cli("log", "sample", *period, "--size", "50", "--seed", "1", "--format", "jsonl")
    assert drawn.code == 0, drawn.err
    assert _seqs(_jsonl(drawn.out)) == inside
    assert "3 of 3 matching entries" in drawn.err
    export = cli("log", "export", "--format", "jsonl", *period)
    assert export.code == 0, export.err
    assert _seqs(_jsonl(export.out)) == inside
    # from the day on, and before it: each end alone

    def searched(*args: str) -> list[int]:
        return _seqs(_jsonl(cli("log", "search", *args, "--format", "jsonl").out))

    assert searched("--from", day) == [1, 2, 3, 4, 5]
    assert searched("--to", day) == [0]
    assert searched("--from", next_day) == [4, 5]
    # the log records each search with its period as it was asked for, not as UTC instants
    searches = [e["reason"] for e in ledger(hub.db) if e["action"] == "ledger_search"]
    assert searches[0] == f"filters: since={day}, until={next_day}, limit=1000"


def test_a_time_with_an_offset_is_that_instant_and_one_without_is_swedish_time(
    hub: Hub, cli: Any
) -> None:
    _entries_around(hub, utc(2026, 2, 28, 23), utc(2026, 3, 1, 23))

    def seqs(*args: str) -> list[int]:
        result = cli("log", "search", *args, "--format", "jsonl")
        assert result.code == 0, result.err
        return _seqs(_jsonl(result.out))

    # midnight UTC on 1 March is 01:00 in Sweden: the first three entries are before it
    assert seqs("--from", "2026-03-01T00:00:00+00:00") == [3, 4, 5]
    assert seqs("--from", "2026-03-01T00:00:00Z") == [3, 4, 5]
    assert seqs("--from", "2026-03-01T00:00:00") == [1, 2, 3, 4, 5]  # Swedish time
    assert seqs("--to", "2026-03-02T00:00:00+01:00") == [0, 1, 2, 3]


def test_the_sample_of_a_past_swedish_day_draws_the_same_again_and_says_how(
    hub: Hub, cli: Any
) -> None:
    for hour in range(0, 24):  # one entry each hour of 1 March in Sweden, and around it
        decisions(hub, PNR, 1, time=utc(2026, 2, 28, 22) + timedelta(hours=hour))
    period = ("--from", "2026-03-01", "--to", "2026-03-02")
    args = ("log", "sample", "--action", "decision", *period, "--size", "5", "--seed", "7")
    first = cli(*args, "--format", "jsonl")
    assert first.code == 0, first.err
    assert "5 of 23 matching entries" in first.err  # 22:00 UTC on 28 Feb is 23:00 in Sweden
    assert "the same filters with --seed 7 --to 2026-03-02 draw it again" in first.err
    decisions(hub, PNR, 3, time=utc(2026, 3, 1, 23))  # 00:00 on 2 March: not in the period
    again = cli(*args, "--format", "jsonl")
    assert again.out == first.out


def test_the_samples_hint_says_when_a_draw_cannot_be_drawn_again(hub: Hub, cli: Any) -> None:
    decisions(hub, PNR, 4)
    open_ended = cli("log", "sample", "--size", "2", "--seed", "3")
    assert open_ended.code == 0, open_ended.err
    assert "give --to to draw it again" in open_ended.err
    assert "draws it again" not in open_ended.err
    to_come = cli("log", "sample", "--size", "2", "--seed", "3", "--to", "2999-01-01")
    assert to_come.code == 0, to_come.err
    assert "--to 2999-01-01 has not passed yet" in to_come.err
    assert "draw it again" not in to_come.err.replace("to be able to draw it again", "")


def test_an_out_of_range_date_is_refused_as_the_purge_refuses_it(hub: Hub, cli: Any) -> None:
    for args in (("--from", "0001-01-01"), ("--to", "9999-12-31T23:59:59-14:00")):
        result = cli("log", "search", *args)
        assert result.code == 2, result.err
        assert "out of range; give a day between 0001-01-02 and 9999-12-31" in result.err


# -- the web ------------------------------------------------------------------------------


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with web_client(hub) as client:
        yield client


@pytest.fixture
def officer(hub: Hub) -> dict[str, str]:
    return bearer(token_for(hub, "dso.kommun", Role.PRIVACY_OFFICER, party="kommun"))


def _page_seqs(html: str) -> list[int]:
    """The seq column of a /log page's table."""
    return sorted(int(seq) for seq in re.findall(r"<tr>\s*<td>(\d+)</td>", html))


@pytest.mark.parametrize(("day", "next_day", "start", "end", "hours"), DAYS)
def test_the_web_reads_a_date_as_a_day_in_sweden_too(
    hub: Hub,
    client: TestClient,
    officer: dict[str, str],
    day: str,
    next_day: str,
    start: datetime,
    end: datetime,
    hours: int,
) -> None:
    inside, _outside = _entries_around(hub, start, end)
    period = {"from": day, "to": next_day, "action": "decision"}
    found = client.get("/api/log/entries", params=period, headers=officer)
    assert found.status_code == 200, found.text
    assert sorted(_seqs(found.json()["entries"])) == inside
    drawn = client.get("/api/log/sample", params={**period, "size": "50"}, headers=officer)
    assert drawn.status_code == 200, drawn.text
    assert _seqs(drawn.json()["entries"]) == inside and drawn.json()["matching"] == 3
    client.post("/login", data={"token": officer["Authorization"].removeprefix("Bearer ")})
    page = client.post("/log", data=period)
    assert page.status_code == 200, page.text
    assert _page_seqs(page.text) == inside
    sampled = client.post("/log/sample", data={**period, "size": "50"})
    assert sampled.status_code == 200, sampled.text
    assert _page_seqs(sampled.text) == inside


def test_the_web_sample_says_whether_its_seed_draws_it_again(
    hub: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    """As `evi log sample` says it: only over a period that has ended."""
    decisions(hub, PNR, 3, time=utc(2026, 3, 1, 12))
    past = {"from": "2026-03-01", "to": "2026-03-02", "size": "2", "seed": "5"}
    drawn = client.get("/api/log/sample", params=past, headers=officer)
    assert drawn.status_code == 200 and drawn.json()["repeatable"] is True
    open_ended = {"from": "2026-03-01", "size": "2", "seed": "5"}
    drawn = client.get("/api/log/sample", params=open_ended, headers=officer)
    assert drawn.status_code == 200 and drawn.json()["repeatable"] is False
    client.post("/login", data={"token": officer["Authorization"].removeprefix("Bearer ")})
    page = client.post("/log/sample", data=past, headers={"Accept-Language": "en"})
    assert "the same filters, period and seed draw this sample again" in page.text
    page = client.post("/log/sample", data=open_ended, headers={"Accept-Language": "en"})
    assert "entries recorded later can change what this seed draws" in page.text


def test_the_log_page_shows_each_entrys_time_in_swedish_time(
    hub: Hub, client: TestClient, officer: dict[str, str]
) -> None:
    decisions(hub, PNR, 1, time=utc(2026, 2, 28, 23, 30))
    client.post("/login", data={"token": officer["Authorization"].removeprefix("Bearer ")})
    page = client.post("/log", data={"from": "2026-03-01", "to": "2026-03-02"})
    assert page.status_code == 200, page.text
    assert '<time datetime="2026-02-28T23:30:00' in page.text
    assert ">2026-03-01 00:30</time>" in page.text


def test_parse_span_reads_both_ends_as_purge_reads_its_date() -> None:
    from hub.clock import parse_cut_off

    start, end = service.parse_span("2026-10-25", "2026-10-26", ("from", "to"))
    assert (start, end) == (parse_cut_off("2026-10-25"), parse_cut_off("2026-10-26"))
    assert end is not None and start is not None and end - start == timedelta(hours=25)
