"""Sandboxes: a deterministic population of official test numbers, a computed feed, and
the authority's side (subscriptions, idempotent pushes, knobs) that survives restarts."""

from __future__ import annotations

import csv
import filecmp
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.kommun.connector import KommunConnector
from connectors.sandbox_kit import Population, skatteverket_numbers
from connectors.sandbox_kit.feed import (
    Feed,
    Timeline,
    changed_at,
    first_position_at_or_after,
)
from hub.connector import InProcessTransport, SandboxSettings
from hub.model.identity import parse_identity

DATA = Path(__file__).parents[1] / "data"
KIT_DATA = Path(__file__).parents[2] / "connectors" / "sandbox_kit" / "data"
TOKEN = {"Authorization": "Bearer kommun-sandbox-token"}
KEY = {"Idempotency-Key": "push-0000000000000001"}


def official_numbers() -> set[str]:
    numbers: set[str] = set()
    for path in DATA.glob("skatteverket_test*.csv"):
        with path.open() as fh:
            numbers.update(row[0] for row in list(csv.reader(fh))[1:])
    return numbers


def client(**values: Any) -> httpx.Client:
    app = KommunConnector.sandbox_app(SandboxSettings(**values))
    assert app is not None
    return httpx.Client(transport=InProcessTransport(app), base_url="http://kommun")


# -- population -----------------------------------------------------------------------------


def test_the_shipped_test_numbers_are_skatteverkets_lists_unchanged() -> None:
    for path in DATA.glob("skatteverket_test*.csv"):
        assert filecmp.cmp(path, KIT_DATA / path.name, shallow=False)
    assert set(skatteverket_numbers()) == official_numbers()


def test_every_person_has_an_official_test_number_and_a_valid_one() -> None:
    official = official_numbers()
    population = Population(seed=11, size=2000)
    assert set(population.numbers) <= official
    assert len(set(population.numbers)) == 2000
    for number in population.numbers[:200]:
        assert parse_identity(number).number == number


def test_the_population_is_a_pure_function_of_the_seed() -> None:
    a, b, other = Population(5, 300), Population(5, 300), Population(6, 300)
    assert a.numbers == b.numbers != other.numbers
    assert [a.person(i) for i in (0, 150, 299)] == [b.person(i) for i in (299, 150, 0)][::-1]
    assert a.person(7) != other.person(7)
    # A larger population begins with the same people.
    assert Population(5, 500).numbers[:300] == a.numbers


def test_people_have_fake_names_and_addresses_and_some_a_protected_identity() -> None:
    population = Population(3, 2000)
    people = [population.person(i) for i in range(2000)]
    assert all(p.given_name and p.family_name and p.postcode and p.city for p in people)
    assert {p.gender for p in people} == {"female", "male"}
    assert 0 < sum(p.protected for p in people) < 100  # about 2 in 100


def test_a_population_larger_than_the_test_numbers_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 23966"):
        Population(1, len(set(skatteverket_numbers())) + 1)


def test_every_person_of_the_largest_population_has_a_number_of_their_own() -> None:
    """Skatteverket's list holds 202001092390 and 202101012397 twice; two sandbox people
    shared a number, which the hub can only take for one person."""
    largest = Population(3, len(set(skatteverket_numbers())))
    assert len(set(largest.numbers)) == len(largest.numbers) == 23966


def test_the_same_seed_serves_the_same_records_from_two_sandboxes() -> None:
    numbers = Population(9, 30).numbers[:4]
    pages = []
    for _ in range(2):
        with client(seed=9, population=30) as c:
            for n in numbers:
                c.post(
                    "/ekonomiskt-bistand/v2/bevakningar", json={"personnummer": n}, headers=TOKEN
                )
            pages.append(c.get("/ekonomiskt-bistand/v2/handelser", headers=TOKEN).json())
    assert pages[0] == pages[1] and pages[0]["totaltAntal"] == 12


# -- the computed feed ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    population=st.integers(1, 30),
    rounds=st.integers(0, 5),
    data=st.data(),
)
def test_feed_slices_equal_a_brute_force_listing(
    population: int, rounds: int, data: st.DataObject
) -> None:
    people = sorted(data.draw(st.sets(st.integers(0, population - 1))))
    start = data.draw(st.integers(0, population * rounds + 3))
    offset = data.draw(st.integers(0, 40))
    limit = data.draw(st.integers(0, 40))
    everything = [
        r * population + p for r in range(rounds) for p in people if r * population + p >= start
    ]
    feed = Feed(population, rounds, people)
    assert feed.count(start) == len(everything)
    assert feed.positions(start, offset, limit) == everything[offset : offset + limit]


_EVENTS = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 5)), st.integers(0, 3)), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(rounds=st.integers(0, 3), events=_EVENTS, data=st.data())
def test_a_timeline_feed_holds_each_record_once_at_its_latest_place(
    rounds: int, events: list[tuple[int | None, int]], data: st.DataObject
) -> None:
    population = 6
    timeline = Timeline.build(population, rounds, events)
    # Brute force: every write in order, then each record at the last place it was written.
    writes: list[int] = [r * population + p for r in range(rounds) for p in range(population)]
    total = rounds
    for person, n in events:
        if person is None:
            writes += [
                r * population + p for r in range(total, total + n) for p in range(population)
            ]
            total += n
        else:
            writes += [r * population + person for r in range(total)]
    latest = {j: seq for seq, j in enumerate(writes)}
    people = sorted(data.draw(st.sets(st.integers(0, population - 1))))
    start = data.draw(st.integers(0, len(writes) + 2))
    offset, limit = data.draw(st.integers(0, 30)), data.draw(st.integers(0, 30))
    expected = sorted(
        (seq, j) for j, seq in latest.items() if j % population in people and seq >= start
    )
    feed = timeline.feed(people)
    assert timeline.end == len(writes) and timeline.rounds == total
    assert feed.count(start) == len(expected)
    assert feed.entries(start, offset, limit) == expected[offset : offset + limit]
    assert all(timeline.record(seq) == writes[seq] for seq in range(len(writes)))


def test_a_person_registered_late_is_written_again_as_changed_now(tmp_path: Path) -> None:
    """What docs/connectors.md asks of an authority that keeps a list, and what the hub
    relies on: reading on from its cursor, it gets a newly registered person's records."""
    state = tmp_path / "sandbox" / "kommun"
    first, second = Population(1, 10).numbers[:2]
    feed = "/ekonomiskt-bistand/v2/handelser"

    def follow(c: httpx.Client, number: str) -> int:
        answer = c.post(
            "/ekonomiskt-bistand/v2/bevakningar", json={"personnummer": number}, headers=TOKEN
        )
        return answer.status_code

    def read(c: httpx.Client, after: int) -> list[dict[str, Any]]:
        page = c.get(feed, params={"franLopnummer": after + 1, "antal": 500}, headers=TOKEN)
        return list(page.json()["handelser"])

    with client(population=10, records_per_person=3, state_dir=state) as c:
        assert follow(c, first) == 201
        seen = read(c, 0)
        assert len(seen) == 3
        cursor = seen[-1]["lopnummer"]
        assert follow(c, second) == 201
        late = read(c, cursor)  # the hub reads on from its cursor
        assert len(late) == 3
        assert {e["personnummer"].replace("-", "")[-10:] for e in late} == {second[-10:]}
        assert all(e["lopnummer"] > cursor for e in late)
        assert all(e["andrad"] > seen[-1]["andrad"] for e in late)
        # the same records, only written again: same ids, same content
        everything = {e["handelseId"]: e for e in read(c, 0)}
        assert len(everything) == 6
        assert follow(c, second) == 200  # already followed: nothing written again
        assert len(read(c, cursor)) == 3
    with client(population=10, records_per_person=3, state_dir=state) as c:
        assert read(c, 0) == list(everything.values())  # a restart keeps the feed as it was
        c.post("/_sandbox/advance", json={"rounds": 1})
        assert len(read(c, cursor)) == 3 + 2  # the new round comes after what was written again


def test_the_same_registrations_in_another_order_give_the_same_feed() -> None:
    """The hub registers several people at a time, so their order varies from night to
    night; the feed (and with it every record's change time, part of the hub's idempotency
    keys) must not."""
    numbers = Population(1, 10).numbers[:6]
    feeds = []
    for order in (numbers, numbers[::-1]):
        with client(population=10, records_per_person=2) as c:
            for number in order:
                c.post(
                    "/ekonomiskt-bistand/v2/bevakningar",
                    json={"personnummer": number},
                    headers=TOKEN,
                )
            page = c.get("/ekonomiskt-bistand/v2/handelser", params={"antal": 500}, headers=TOKEN)
            feeds.append(page.json()["handelser"])
    assert len(feeds[0]) == 12 and feeds[0] == feeds[1]


def test_change_times_are_unique_and_found_again() -> None:
    for j in (0, 1, 59, 10_000, 999_999):
        assert first_position_at_or_after(changed_at(j)) == j
    assert changed_at(1) > changed_at(0)


def test_a_bench_sized_feed_pages_without_materialising_it() -> None:
    # Every distinct test number, ten rounds each: 239,660 records, paged from the far end.
    people = len(set(skatteverket_numbers()))
    with client(seed=1, population=people, records_per_person=10, all_subscribed=True) as c:
        last = c.get(
            "/ekonomiskt-bistand/v2/handelser",
            params={"franLopnummer": 239_600, "antal": 500},
            headers=TOKEN,
        ).json()
    assert last["totaltAntal"] == 239_660 - 239_599
    assert last["handelser"][-1]["lopnummer"] == 239_660


# -- the authority's side -----------------------------------------------------------------------


def test_pushes_count_once_per_idempotency_key() -> None:
    path = "/ekonomiskt-bistand/v2/meddelanden"
    with client() as c:
        first = c.post(path, json={"a": 1}, headers={**TOKEN, **KEY})
        again = c.post(path, json={"a": 1}, headers={**TOKEN, **KEY})
        other = c.post(path, json={"a": 2}, headers={**TOKEN, "Idempotency-Key": "x" * 16})
        reused = c.post(path, json={"a": 3}, headers={**TOKEN, **KEY})
        missing = c.post(path, json={"a": 4}, headers=TOKEN)
        received = c.get("/_sandbox/received").json()
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert (reused.status_code, missing.status_code) == (422, 400)
    assert received["unique"] == 2 and received["duplicates"] == 1
    assert [item["body"] for item in received["items"]] == [{"a": 1}, {"a": 2}]


def test_a_batch_of_pushes_is_judged_item_by_item_and_a_malformed_batch_whole() -> None:
    with client() as c:
        url = "/ekonomiskt-bistand/v2/meddelanden/batch"
        c.post("/ekonomiskt-bistand/v2/meddelanden", json={"a": 1}, headers={**TOKEN, **KEY})
        items = [
            {"idempotency_key": KEY["Idempotency-Key"], "body": {"a": 1}},  # a repeat
            {"idempotency_key": KEY["Idempotency-Key"], "body": {"a": 2}},  # key reused
            {"idempotency_key": "short", "body": {"a": 3}},
            {"idempotency_key": "push-0000000000000002", "body": {"a": 4}},
        ]
        answer = c.post(url, json={"items": items}, headers=TOKEN)
        assert answer.status_code == 200
        assert [r["status"] for r in answer.json()["results"]] == [200, 422, 400, 201]
        assert c.get("/_sandbox/received").json()["unique"] == 2
        assert c.post(url, json={"items": items}).status_code == 401  # same credentials
        for bad in ({"items": []}, {"items": [{"body": {}}] * 201}, {"items": [{"x": 1}]}):
            refused = c.post(url, json=bad, headers=TOKEN)
            assert refused.status_code == 400, bad
        assert c.get("/_sandbox/received").json()["unique"] == 2


def test_state_under_a_state_dir_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "sandbox" / "kommun"
    number = Population(1, 10).numbers[0]
    with client(population=10, state_dir=state) as c:
        c.post("/ekonomiskt-bistand/v2/bevakningar", json={"personnummer": number}, headers=TOKEN)
        c.post("/ekonomiskt-bistand/v2/meddelanden", json={"a": 1}, headers={**TOKEN, **KEY})
        c.post("/_sandbox/advance", json={"rounds": 2})
    assert (state / "state.db").is_file()
    with client(population=10, state_dir=state) as c:
        assert c.get("/_sandbox/subscriptions").json() == {"count": 1, "numbers": [number]}
        assert c.get("/_sandbox/received").json()["unique"] == 1
        assert c.get("/_sandbox/info").json()["rounds"] == 5


def test_knobs_can_be_changed_on_a_running_sandbox_but_not_invented() -> None:
    with client() as c:
        assert c.patch("/_sandbox/knobs", json={"fail_rate": 1.0}).status_code == 200
        assert c.get("/ekonomiskt-bistand/v2/status", headers=TOKEN).status_code == 503
        assert c.get("/_sandbox/info").status_code == 200  # the bench is never faulted
        assert c.patch("/_sandbox/knobs", json={"fail_rte": 1.0}).status_code == 422
        assert c.patch("/_sandbox/knobs", json={"fail_rate": 2}).status_code == 422


def test_faults_follow_the_seed_and_the_budget() -> None:
    def statuses(seed: int) -> list[int]:
        with client(seed=seed, fail_rate=0.5, fault_budget=3) as c:
            return [
                c.get("/ekonomiskt-bistand/v2/status", headers=TOKEN).status_code for _ in range(20)
            ]

    first = statuses(4)
    assert first == statuses(4)
    assert first.count(503) == 3


def test_rate_limit_sends_retry_after() -> None:
    with client(rate_limit_rate=1.0, retry_after_seconds=9) as c:
        answer = c.get("/ekonomiskt-bistand/v2/status", headers=TOKEN)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "9"


def test_a_protected_persons_address_is_never_handed_out() -> None:
    population = Population(1, 400)
    protected = [p.number for p in map(population.person, range(400)) if p.protected]
    assert protected
    with client(population=400, records_per_person=6) as c:
        for number in protected:
            c.post(
                "/ekonomiskt-bistand/v2/bevakningar", json={"personnummer": number}, headers=TOKEN
            )
        events = c.get(
            "/ekonomiskt-bistand/v2/handelser", params={"antal": 500}, headers=TOKEN
        ).json()["handelser"]
    referrals = [e for e in events if e["handelseTyp"] == "REMISS"]
    assert referrals and all("adress" not in e and e["skyddadIdentitet"] for e in referrals)


def test_all_subscribed_makes_every_sandbox_answer_about_everyone() -> None:
    from connectors.region.connector import RegionConnector

    app = RegionConnector.sandbox_app(SandboxSettings(population=30, records_per_person=2))
    search = {"personnummer": [], "offset": 0, "limit": 10}
    with httpx.Client(transport=InProcessTransport(app), base_url="http://region") as c:
        assert c.post("/rehab/v3/sok", json=search).json()["traffar"] == 0
        c.patch("/_sandbox/knobs", json={"all_subscribed": True})
        assert c.post("/rehab/v3/sok", json=search).json()["traffar"] == 60
    with client(population=30, records_per_person=2, all_subscribed=True) as c:
        page = c.get("/ekonomiskt-bistand/v2/handelser", headers=TOKEN).json()
        assert page["totaltAntal"] == 60
