"""Dead letters after an outage: many of them, counted by recipient and reason, listed a page
at a time by id (`evi transfers failed`, the API, /admin), and retried per recipient.

The outbox is filled directly: an outage's worth of dead letters (to fk, to region, with
two reasons for fk) among rows that are not dead (delivered, pending), which no listing or
count may include.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from web_support import bearer, token_for, web_client

from hub.context import Hub
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import OutboxItem, StoredRecord
from hub.sync.history import PAGE_MAX, PAGE_ROWS
from hub.web.users import Role

DOWN = "gave up after 5 attempts: fk answered 503"
REFUSED = "refused by fk: the case is closed"
GONE = "gave up after 5 attempts: region answered 502"
# what the outbox holds, in the order of its ids: (recipient, status, reason), repeated
PATTERN = [
    ("fk", "dead", DOWN),
    ("region", "dead", GONE),
    ("fk", "dead", DOWN),
    ("fk", "delivered", None),
    ("fk", "dead", DOWN),
    ("af", "pending", "af answered 503"),
    ("fk", "dead", REFUSED),
]
ROUNDS = 40  # 280 rows, 200 of them dead: more than two pages of the page's 100
FIRST_FAILED = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def _fill(hub: Hub) -> dict[int, tuple[str, str | None]]:
    """The outbox as after an outage; returns every dead letter's (recipient, reason) by id."""
    with hub.db.session() as session:
        person = ParticipantRow(
            pseudonym="p-outage",
            pnr_lookup="lookup-outage",
            pnr_ciphertext=b"-",
            coordination_number=False,
            gender="female",
            birth_year=1980,
            created_at=FIRST_FAILED,
        )
        session.add(person)
        session.flush()
        record = StoredRecord(
            source="kommun",
            source_id="r-1",
            participant_id=person.id,
            kind="plan",
            category="plan",
            updated_at=FIRST_FAILED,
            body={},
            payload_sha256="0" * 64,
            stored_at=FIRST_FAILED,
        )
        session.add(record)
        session.flush()
        rows = []
        for n in range(ROUNDS * len(PATTERN)):
            recipient, status, reason = PATTERN[n % len(PATTERN)]
            when = FIRST_FAILED + timedelta(minutes=n)
            rows.append(
                {
                    "idempotency_key": f"evi2-outage-{n}",
                    "record_id": record.id,
                    "participant_id": person.id,
                    "origin": "kommun",
                    "recipient": recipient,
                    "purpose": "coordination",
                    "category": "plan",
                    "status": status,
                    "attempts": 5 if status == "dead" else 1,
                    "next_attempt_at": when,
                    "last_error": reason,
                    "created_at": when,
                    "finished_at": None if status == "pending" else when,
                }
            )
        session.execute(insert(OutboxItem), rows)
        dead = session.execute(
            select(OutboxItem.id, OutboxItem.recipient, OutboxItem.last_error).where(
                OutboxItem.status == "dead"
            )
        ).all()
    return {id_: (recipient, reason) for id_, recipient, reason in dead}


@pytest.fixture
def outage(hub: Hub) -> dict[int, tuple[str, str | None]]:
    return _fill(hub)


@pytest.fixture
def admin(hub: Hub, outage: dict[int, Any]) -> Iterator[tuple[TestClient, str]]:
    token = token_for(hub, "ola.admin", Role.ADMINISTRATOR, party="kommun")
    with web_client(hub) as client:
        yield client, token


def _status(hub: Hub) -> dict[int, str]:
    with hub.db.session() as session:
        rows = session.execute(select(OutboxItem.id, OutboxItem.status)).all()
        return {id_: status for id_, status in rows}


# -- the summary ---------------------------------------------------------------------------


def test_the_summary_counts_dead_letters_by_recipient_and_reason(
    outage: dict[int, tuple[str, str | None]], admin: tuple[TestClient, str], cli
) -> None:
    client, token = admin
    result = cli("transfers", "failed", "--summary", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert (
        summary == client.get("/api/admin/transfers/failed/summary", headers=bearer(token)).json()
    )
    assert summary["total"] == len(outage) == 5 * ROUNDS
    assert summary["recipients"] == [
        {"recipient": "fk", "count": 4 * ROUNDS},
        {"recipient": "region", "count": ROUNDS},
    ]
    groups = {(g["recipient"], g["reason"]): g for g in summary["reasons"]}
    expected = Counter(outage.values())
    assert {key: g["count"] for key, g in groups.items()} == expected
    assert (summary["reasons"][0]["recipient"], summary["reasons"][0]["reason"]) == ("fk", DOWN)
    for key, group in groups.items():
        ids = sorted(i for i, of in outage.items() if of == key)
        assert (group["first_id"], group["last_id"]) == (ids[0], ids[-1])
        first, last = (
            datetime.fromisoformat(group[k]) for k in ("first_failed_at", "last_failed_at")
        )
        assert FIRST_FAILED <= first < last
    assert summary["more_reasons"] is False

    text = cli("transfers", "failed")
    lines = text.out.splitlines()
    assert lines[0] == f"{5 * ROUNDS} failed transfer(s): fk {4 * ROUNDS}, region {ROUNDS}"
    assert re.fullmatch(rf"\s+{3 * ROUNDS}  fk\s+\S+Z  {re.escape(DOWN)}", lines[2])


def test_without_dead_letters_the_summary_is_empty_and_the_page_says_so(hub: Hub, cli) -> None:
    assert json.loads(cli("transfers", "failed", "--summary", "--json").out) == {
        "total": 0,
        "recipients": [],
        "reasons": [],
        "more_reasons": False,
    }
    assert cli("transfers", "failed").err.strip() == "no failed transfers"
    token = token_for(hub, "ola.admin", Role.ADMINISTRATOR, party="kommun")
    with web_client(hub) as client:
        client.post("/login", data={"token": token})
        page = client.get("/admin")
    assert page.status_code == 200 and "No failed transfers." in page.text
    assert 'action="/admin/transfers/retry"' not in page.text


# -- pages by id ---------------------------------------------------------------------------


def _cli_pages(cli, *args: str) -> tuple[list[list[int]], list[str]]:
    """Every page `evi transfers failed --json ARGS` gives, following its `more:` hints."""
    pages, hints = [], []
    command = ["transfers", "failed", *args, "--json"]
    while True:
        result = cli(*command)
        assert result.code == 0, result.err
        pages.append([row["id"] for row in json.loads(result.out)])
        hint = [line for line in result.err.splitlines() if line.startswith("more: ")]
        if not hint:
            return pages, hints
        hints.append(hint[0])
        command = shlex.split(hint[0].removeprefix("more: evi "))


def test_pages_give_every_dead_letter_once_oldest_first(
    outage: dict[int, tuple[str, str | None]], cli
) -> None:
    pages, hints = _cli_pages(cli, "--limit", "7")
    assert [len(p) for p in pages] == [7] * (len(outage) // 7) + [len(outage) % 7]
    listed = [i for page in pages for i in page]
    assert listed == sorted(outage)  # each once, in order of id
    assert hints[0] == f"more: evi transfers failed --after {pages[0][-1]} --limit 7 --json"

    default, _ = _cli_pages(cli)
    assert [len(p) for p in default] == [PAGE_ROWS, PAGE_ROWS]  # the last page says no more
    assert [i for page in default for i in page] == sorted(outage)

    region, _ = _cli_pages(cli, "--recipient", "region", "--limit", "15")
    assert [i for page in region for i in page] == sorted(
        i for i, (to, _) in outage.items() if to == "region"
    )
    refused, _ = _cli_pages(cli, "--recipient", "fk", "--reason", REFUSED, "--limit", "30")
    assert [i for page in refused for i in page] == sorted(
        i for i, of in outage.items() if of == ("fk", REFUSED)
    )


def test_the_api_pages_with_a_link_to_the_next(
    outage: dict[int, tuple[str, str | None]], admin: tuple[TestClient, str], cli
) -> None:
    client, token = admin
    first = client.get("/api/admin/transfers/failed", headers=bearer(token))
    assert first.status_code == 200
    rows = first.json()
    assert rows == json.loads(cli("transfers", "failed", "--json").out)  # as the CLI's
    assert [r["id"] for r in rows] == sorted(outage)[:PAGE_ROWS]
    assert all(r["participant"] == "p-outage" and r["reason"] for r in rows)
    url: str | None = "/api/admin/transfers/failed?recipient=fk&limit=33"
    listed: list[int] = []
    while url:
        answer = client.get(url, headers=bearer(token))
        assert answer.status_code == 200
        listed += [r["id"] for r in answer.json()]
        link = answer.headers.get("link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None
        assert url is None or ("recipient=fk" in url and "limit=33" in url)
    assert listed == sorted(i for i, (to, _) in outage.items() if to == "fk")
    last = client.get(f"/api/admin/transfers/failed?after={max(outage)}", headers=bearer(token))
    assert last.json() == [] and "link" not in last.headers


def test_a_page_larger_than_the_maximum_is_refused_saying_what_to_do(
    admin: tuple[TestClient, str], cli
) -> None:
    client, token = admin
    for limit in (PAGE_MAX + 1, 0):
        result = cli("transfers", "failed", "--limit", str(limit))
        assert result.code == 2 and result.out == ""
        assert f"--limit {limit}: a page holds 1 to {PAGE_MAX} dead letters" in result.err
        assert "--after ID" in result.err
        api = client.get(f"/api/admin/transfers/failed?limit={limit}", headers=bearer(token))
        assert api.status_code == 422
        assert f"a page holds 1 to {PAGE_MAX}" in api.json()["detail"]
        assert "after=ID" in api.json()["detail"]
    whole = client.get(f"/api/admin/transfers/failed?limit={PAGE_MAX}", headers=bearer(token))
    assert whole.status_code == 200 and len(whole.json()) == 5 * ROUNDS
    bad = cli("transfers", "failed", "--recipient", "FK!")
    assert bad.code == 2 and "--recipient 'FK!'" in bad.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("failed", "--after", str(2**63)), "'--after': Input should be less than or equal"),
        (("retry", str(2**63)), "'ids': Input should be less than or equal"),
        (("retry", "0"), "'ids': Input should be greater than or equal to 1"),
        (("retry", "1", "--all"), "give the IDs to retry or --all, not both"),
        (("retry", "1", "--all", "--recipient", "fk"), "give the IDs to retry or --all"),
        (("failed", "--summary", "--recipient", "fk"), "--summary counts every dead letter"),
        (("failed", "--summary", "--json", "--after", "5"), "give one or the other"),
    ],
)
def test_ids_out_of_range_and_options_that_conflict_are_refused_and_change_nothing(
    hub: Hub, outage: dict[int, Any], cli, args: tuple[str, ...], message: str
) -> None:
    before = _status(hub)
    result = cli("transfers", *args)
    assert result.code == 2, result.err
    assert message in result.err and result.out == ""
    assert "internal error" not in result.err
    assert _status(hub) == before


# -- the administrator's page --------------------------------------------------------------

RETRY_FORM = '<form method="post" action="/admin/transfers/retry">'


def test_the_page_shows_the_counts_and_one_page_of_dead_letters(
    outage: dict[int, tuple[str, str | None]], admin: tuple[TestClient, str]
) -> None:
    client, token = admin
    client.post("/login", data={"token": token})
    page = client.get("/admin")
    assert page.status_code == 200
    # retry all, retry all to fk, to region, and one per dead letter of the page
    assert page.text.count(RETRY_FORM) == 1 + 2 + PAGE_ROWS
    assert f"Retry all {5 * ROUNDS}</button>" in page.text
    assert f"Retry all {4 * ROUNDS} to fk</button>" in page.text
    assert f"Retry all {ROUNDS} to region</button>" in page.text
    assert f"<td>{DOWN}</td>\n      <td>{3 * ROUNDS}</td>" in page.text
    ids = sorted(outage)
    shown = [int(i) for i in re.findall(r'name="id" value="(\d+)"', page.text)]
    assert shown == ids[:PAGE_ROWS]
    assert "<caption>" in page.text and 'scope="col"' in page.text
    after = ids[PAGE_ROWS - 1]
    assert f'href="/admin?after={after}#failed-list">Next page</a>' in page.text

    second = client.get(f"/admin?after={after}")
    shown = [int(i) for i in re.findall(r'name="id" value="(\d+)"', second.text)]
    assert shown == ids[PAGE_ROWS : 2 * PAGE_ROWS]
    assert 'href="/admin#failed-list">First page</a>' in second.text

    region = client.get("/admin?recipient=region")
    shown = [int(i) for i in re.findall(r'name="id" value="(\d+)"', region.text)]
    assert shown == sorted(i for i, (to, _) in outage.items() if to == "region")
    assert "Next page" not in region.text
    assert '<option value="region" selected>' in region.text

    closed = client.get("/admin", params={"recipient": "fk", "reason": REFUSED})
    shown = [int(i) for i in re.findall(r'name="id" value="(\d+)"', closed.text)]
    assert shown == sorted(i for i, of in outage.items() if of == ("fk", REFUSED))

    assert client.get("/admin?after=-1").status_code == 422
    assert client.get("/admin?recipient=<script>").status_code == 422


# -- retrying one recipient's --------------------------------------------------------------


def test_retrying_all_to_one_recipient_queues_only_theirs(
    hub: Hub,
    outage: dict[int, tuple[str, str | None]],
    admin: tuple[TestClient, str],
    cli,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, token = admin
    caplog.set_level(logging.INFO, logger="hub.web.audit")
    monkeypatch.setattr(logging.getLogger("hub.web.audit"), "handlers", [caplog.handler])
    before = _status(hub)
    to = {i: recipient for i, (recipient, _) in outage.items()}

    assert cli("transfers", "retry", "--recipient", "region").code == 2  # needs --all
    result = cli("transfers", "retry", "--all", "--recipient", "region")
    assert result.code == 0, result.err
    assert f"{ROUNDS} transfer(s) queued again to region" in result.err
    after = _status(hub)
    assert {i for i in after if after[i] != before[i]} == {i for i in to if to[i] == "region"}
    assert all(after[i] == "pending" for i in to if to[i] == "region")

    body: dict[str, Any] = {"ids": [min(outage)], "recipient": "fk"}
    assert (
        client.post("/api/admin/transfers/retry", json=body, headers=bearer(token)).status_code
        == 422
    )
    body = {"all": True, "recipient": "af"}  # none of af's is dead
    answer = client.post("/api/admin/transfers/retry", json=body, headers=bearer(token))
    assert answer.json() == {"queued": 0} and _status(hub) == after

    client.post("/login", data={"token": token})
    done = client.post(
        "/admin/transfers/retry", data={"all": "1", "recipient": "fk"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"/admin?queued={4 * ROUNDS}"
    assert set(_status(hub).values()) == {"pending", "delivered"}
    bad = client.post("/admin/transfers/retry", data={"all": "1", "recipient": "FK!"})
    assert bad.status_code == 422 and "choose a recipient" in bad.text
    audit = [r.getMessage() for r in caplog.records if r.name == "hub.web.audit"]
    assert "transfers to af queued again by ola.admin: 0" in audit
    assert f"transfers to fk queued again by ola.admin: {4 * ROUNDS}" in audit


def test_a_recipient_no_party_is_called_is_refused_not_answered_none(
    hub: Hub, outage: dict[int, tuple[str, str | None]], cli
) -> None:
    before = _status(hub)
    for args in (
        ("failed", "--recipient", "fkk"),
        ("failed", "--json", "--recipient", "fkk"),
        ("retry", "--all", "--recipient", "fkk"),
    ):
        result = cli("transfers", *args)
        assert result.code == 2, (args, result.err)
        assert "--recipient 'fkk': not a party of this hub; one of" in result.err
        assert "fk" in result.err.rsplit("one of", 1)[1]
    assert _status(hub) == before
    # a party with no dead letters is still answered "none match"
    none = cli("transfers", "failed", "--recipient", "af")
    assert none.code == 0 and "no failed transfers match" in none.err


def test_the_listing_lines_up_whatever_the_parties_names(
    outage: dict[int, tuple[str, str | None]], cli
) -> None:
    listed = cli("transfers", "failed", "--limit", "50")
    lines = [line for line in listed.out.splitlines() if "attempts=" in line]
    assert {line.split()[1].split("->")[1] for line in lines} == {"fk", "region"}
    assert len({line.index("attempts=") for line in lines}) == 1  # one column


# -- the transfers still waiting -------------------------------------------------------


def test_the_queue_shows_what_waits_per_recipient_and_why_it_is_retried(
    hub: Hub, outage: dict[int, tuple[str, str | None]], cli
) -> None:
    as_json = cli("transfers", "queued", "--json")
    assert as_json.code == 0, as_json.err
    summary = json.loads(as_json.out)
    waiting = [n for n in range(ROUNDS * len(PATTERN)) if PATTERN[n % len(PATTERN)][1] == "pending"]
    assert summary["total"] == len(waiting) == ROUNDS
    [af] = summary["recipients"]
    assert (af["recipient"], af["count"], af["retrying"]) == ("af", ROUNDS, ROUNDS)
    first = FIRST_FAILED + timedelta(minutes=waiting[0])
    assert datetime.fromisoformat(af["waiting_since"]) == first
    assert summary["errors"] == [
        {"recipient": "af", "last_error": "af answered 503", "count": ROUNDS}
    ]
    text = cli("transfers", "queued").out
    assert text.startswith(f"{ROUNDS} transfer(s) waiting: af {ROUNDS}\n")
    assert f"{ROUNDS}  af       af answered 503" in text
    cli("transfers", "retry", "--all")  # the dead letters go back in the queue, untried
    again = json.loads(cli("transfers", "queued", "--json").out)
    fk = next(r for r in again["recipients"] if r["recipient"] == "fk")
    assert fk["count"] == 4 * ROUNDS and fk["retrying"] == 0
