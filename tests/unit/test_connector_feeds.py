"""The four built-in connectors against authorities whose feeds misbehave.

A scripted authority (``httpx.MockTransport``) answers each API call from a function of
what was asked; records are the sandboxes' own, with one field changed. It gives up with
:class:`Looped` after ``MAX_CALLS`` calls, so a pull that would go on forever fails the test
instead of hanging it. What is checked (docs/connectors.md, "Each authority's API"):

* converting a record refuses a time Python cannot hold as that record's
  ``InvalidRecordError``, naming the field and never the value;
* paging stops with ``AuthorityError`` when the authority's paging goes round in circles,
  after yielding what it had;
* the field each connector resumes from is checked strictly before it becomes a cursor.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.af import connector as af_connector
from connectors.af import sandbox as af_sandbox
from connectors.af.connector import AfConnector
from connectors.fk import sandbox as fk_sandbox
from connectors.fk.connector import FkConnector
from connectors.kommun import sandbox as kommun_sandbox
from connectors.kommun.connector import KommunConnector
from connectors.region import sandbox as region_sandbox
from connectors.region.connector import RegionConnector
from connectors.sandbox_kit import Population, SandboxKit
from hub.connector import (
    NO_RETRY,
    AuthorityError,
    Connector,
    ConnectorConfigError,
    InvalidRecordError,
    SandboxSettings,
)
from hub.model.identity import PersonalIdentity, parse_identity
from hub.model.records import NativeRecord

CONNECTORS: dict[str, type[Connector]] = {
    "kommun": KommunConnector,
    "af": AfConnector,
    "fk": FkConnector,
    "region": RegionConnector,
}
SEED, PEOPLE, PAGE, MAX_CALLS = 7, 40, 5, 40
ID_FIELDS = {"kommun": "handelseId", "af": "event_id", "fk": "arendeId", "region": "postId"}
ALL = pytest.mark.parametrize("name", sorted(CONNECTORS))

Answer = Callable[[dict[str, Any]], dict[str, Any]]


class Looped(Exception):
    """The pull asked more than MAX_CALLS times: it would have gone on forever."""


class Authority:
    """Answers each API call with ``answer(what was asked)``; keeps what was asked."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            token = {"access_token": "t", "token_type": "Bearer", "expires_in": 600}
            return httpx.Response(200, json=token)
        asked: dict[str, Any] = dict(request.url.params)
        if request.method == "POST":
            asked.update(json.loads(request.content))
        self.asked.append(asked)
        if len(self.asked) > MAX_CALLS:
            raise Looped(f"{len(self.asked)} calls")
        return httpx.Response(200, json=self.answer(asked))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")  # fk and region: the test certificates, made once


@pytest.fixture
def scripted(home: Path) -> Iterator[Callable[[str, Answer], tuple[Connector, Authority]]]:
    made: list[Connector] = []

    def make(name: str, answer: Answer) -> tuple[Connector, Authority]:
        cls = CONNECTORS[name]
        options = cls.Options(**cls.sandbox_options(f"http://{name}.test", home), page_size=PAGE)
        authority = Authority(answer)
        made.append(cls.create(options, transport=httpx.MockTransport(authority), retry=NO_RETRY))
        return made[-1], authority

    yield make
    for connector in made:
        connector.close()


@functools.cache
def _kit(name: str) -> SandboxKit:
    return SandboxKit(name, SandboxSettings(seed=SEED, population=PEOPLE))


def record(name: str, j: int, **changes: Any) -> dict[str, Any]:
    """Sandbox record ``j`` of ``name`` as its API returns it, with ``changes``."""
    make = {
        "kommun": kommun_sandbox.handelse,
        "af": af_sandbox.event,
        "fk": fk_sandbox.arende,
        "region": region_sandbox.post,
    }[name]
    return {**make(_kit(name), j, j), **changes}


def records(name: str, first: int, count: int) -> list[dict[str, Any]]:
    return [record(name, j) for j in range(first, first + count)]


def ids(natives: list[NativeRecord]) -> list[str]:
    return [n.source_id for n in natives]


def someone() -> list[PersonalIdentity]:
    return [parse_identity(Population(SEED, PEOPLE).numbers[0])]


def pull_until_error(
    connector: Connector, cursor: str | None = None
) -> tuple[list[NativeRecord], AuthorityError]:
    """Pull until it raises (it must); what it yielded first and the error."""
    got: list[NativeRecord] = []
    with pytest.raises(AuthorityError) as err:
        for native in connector.pull(cursor, someone()):
            got.append(native)
    return got, err.value


# -- 1. converting a record: a time Python cannot hold refuses that record -----------------

OUT_OF_RANGE: list[tuple[str, str, Any]] = [
    ("kommun", "andrad", "0001-01-01 00:00:00"),  # local time before year 1 in UTC
    ("kommun", "andrad", "0001-01-01 00:59:59"),
    ("af", "occurred_at", "0001-01-01T00:00:00+01:00"),
    ("af", "occurred_at", "9999-12-31T23:59:59-01:00"),  # after 9999 in UTC
    ("fk", "andradTidpunkt", "0001-01-01T00:00:00.000+01:00"),
    ("fk", "andradTidpunkt", "9999-12-31T23:59:59.000-01:00"),
    ("region", "uppdateradMs", 10**20),  # OSError (EOVERFLOW) from the C library
    ("region", "uppdateradMs", 253_402_300_800_000),  # 10000-01-01: ValueError
    ("region", "uppdateradMs", 10**400),  # too large for a float: OverflowError
]


def short(value: Any) -> str:
    """A test id: a path joined with dots, a long value as "huge"."""
    text = ".".join(value) if isinstance(value, tuple) else str(value)
    return text if len(text) < 40 else "huge"


@pytest.mark.parametrize(("name", "field", "value"), OUT_OF_RANGE, ids=short)
def test_a_time_out_of_range_refuses_the_record_naming_the_field_not_the_value(
    scripted: Any, name: str, field: str, value: Any
) -> None:
    connector, authority = scripted(name, lambda asked: {})
    item = record(name, 3, **{field: value})
    native = NativeRecord(source=name, source_id=item[ID_FIELDS[name]], cursor="1", payload=item)
    with pytest.raises(InvalidRecordError) as err:
        connector.map(native)
    assert err.value.source_id == native.source_id
    assert [p.split(":")[0] for p in err.value.problems] == [field]
    assert "out of range" in err.value.problems[0]
    assert str(value) not in str(err.value)
    assert authority.asked == []


IN_RANGE: list[tuple[str, str, Any]] = [
    ("kommun", "andrad", "9999-12-31 23:59:59"),
    ("kommun", "andrad", "0001-01-01 02:00:00"),
    ("af", "occurred_at", "0001-01-01T00:00:00Z"),
    ("fk", "andradTidpunkt", "9999-12-31T23:59:59.999+00:00"),
    ("region", "uppdateradMs", 253_402_300_799_999),  # 9999-12-31T23:59:59.999Z
    ("region", "uppdateradMs", 0),
]


@pytest.mark.parametrize(("name", "field", "value"), IN_RANGE)
def test_the_extreme_times_that_fit_are_kept(
    scripted: Any, name: str, field: str, value: Any
) -> None:
    connector, _ = scripted(name, lambda asked: {})
    item = record(name, 3, **{field: value})
    native = NativeRecord(source=name, source_id=item[ID_FIELDS[name]], cursor="1", payload=item)
    assert connector.map(native).updated_at.tzinfo is not None


# Every other value a mapping converts is checked by the wire model: impossible dates and
# numbers out of range (or a bool where a number belongs) are schema violations.
OTHER_FIELDS: list[tuple[str, tuple[str, ...], Any]] = [
    ("kommun", ("lopnummer",), True),
    ("kommun", ("lopnummer",), 10**13),
    ("kommun", ("remissdatum",), "0000-01-01"),
    ("kommun", ("omfattningProcent",), True),
    ("kommun", ("omfattningProcent",), 10**400),
    ("af", ("data", "start_date"), "10000-01-01"),
    ("af", ("data", "days_per_week"), True),
    ("af", ("data", "extent_percent"), 10**400),
    ("fk", ("periodFrom",), "00000101"),
    ("fk", ("periodFrom",), "99991332"),
    ("region", ("uppdateradMs",), True),
    ("region", ("remissdatum",), "0000-01-01"),
]
KIND_OF = {
    ("kommun", "remissdatum"): ("handelseTyp", "REMISS"),
    ("kommun", "omfattningProcent"): ("handelseTyp", "INSATS"),
    ("af", "start_date"): ("event_type", "PROGRAMME"),
    ("af", "extent_percent"): ("event_type", "PROGRAMME"),
    ("af", "days_per_week"): ("event_type", "BENEFIT"),
    ("fk", "periodFrom"): ("arendetyp", "REHAB"),
    ("region", "remissdatum"): ("typ", "REMISS"),
}


def _record_with(name: str, field: str) -> dict[str, Any]:
    """A sandbox record of the kind that has ``field``, as plain JSON values."""
    kind = KIND_OF.get((name, field))
    for j in range(200):
        item = record(name, j)
        if kind is None or item[kind[0]] == kind[1]:
            copy: dict[str, Any] = json.loads(json.dumps(item))
            return copy
    raise AssertionError(f"no {kind} record in the first 200")


@pytest.mark.parametrize(("name", "path", "value"), OTHER_FIELDS, ids=short)
def test_other_converted_fields_out_of_range_refuse_the_record(
    scripted: Any, name: str, path: tuple[str, ...], value: Any
) -> None:
    connector, _ = scripted(name, lambda asked: {})
    item = _record_with(name, path[-1])
    target = item
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    native = NativeRecord(source=name, source_id=item[ID_FIELDS[name]], cursor="1", payload=item)
    with pytest.raises(InvalidRecordError) as err:
        connector.map(native)
    assert err.value.problems and err.value.problems[0].startswith(".".join(path) + ":")


# -- 2. paging that goes round in circles stops with AuthorityError ------------------------


def kommun_page(
    sida: int, events: list[dict[str, Any]], total: int, pages: int | None = None
) -> dict[str, Any]:
    return {
        "handelser": events,
        "sida": sida,
        "antalSidor": pages if pages is not None else max(1, -(-total // PAGE)),
        "totaltAntal": total,
    }


def test_kommun_refuses_an_answer_for_another_page_than_asked(scripted: Any) -> None:
    # An authority that ignores sida answers page 1 every time and claims 10**9 pages.
    first = records("kommun", 0, PAGE)
    connector, authority = scripted(
        "kommun", lambda asked: kommun_page(1, first, 10**9 * PAGE, 10**9)
    )
    got, error = pull_until_error(connector)
    assert ids(got) == [e["handelseId"] for e in first]
    assert "asked for page 2" in str(error) and "sida" in str(error)
    assert len(authority.asked) == 2


def test_kommun_refuses_the_same_events_again_under_another_page_number(scripted: Any) -> None:
    first = records("kommun", 0, PAGE)
    connector, authority = scripted(
        "kommun", lambda asked: kommun_page(int(asked["sida"]), first, 10**9 * PAGE, 10**9)
    )
    got, error = pull_until_error(connector)
    assert ids(got) == [e["handelseId"] for e in first]
    assert "not above the previous event's" in str(error)
    assert len(authority.asked) == 2


def test_kommun_refuses_more_pages_than_the_total_fills(scripted: Any) -> None:
    def answer(asked: dict[str, Any]) -> dict[str, Any]:
        sida = int(asked["sida"])
        return kommun_page(sida, records("kommun", (sida - 1) * PAGE, PAGE), 7, 10**9)

    connector, authority = scripted("kommun", answer)
    got, error = pull_until_error(connector)
    assert got == [] and "antalSidor" in str(error) and "totaltAntal" in str(error)
    assert len(authority.asked) == 1


def test_kommun_reads_at_most_one_page_more_than_the_first_total_fills(scripted: Any) -> None:
    # Each answer reports five more events than the last: the pull stops after the pages
    # the first total filled (2) and one more; the next run goes on from its cursor.
    def answer(asked: dict[str, Any]) -> dict[str, Any]:
        sida = int(asked["sida"])
        return kommun_page(sida, records("kommun", (sida - 1) * PAGE, PAGE), 5 * sida + 5)

    connector, authority = scripted("kommun", answer)
    got = list(connector.pull(None, someone()))
    assert len(authority.asked) == 3 and len(got) == 3 * PAGE
    assert {a["franLopnummer"] for a in authority.asked} == {"1"}


def af_page(events: list[dict[str, Any]], following: str | None, more: bool) -> dict[str, Any]:
    return {"events": events, "next_cursor": following, "has_more": more}


@pytest.mark.parametrize(
    "chain",
    [
        {None: "A", "A": "A"},  # the same next_cursor again
        {None: "A", "A": "B", "B": "A"},  # a circle
        {"S": "A", "A": "S"},  # back to the cursor the pull started from
    ],
)
def test_af_refuses_a_next_cursor_already_followed(
    scripted: Any, chain: dict[str | None, str]
) -> None:
    pages = {key: records("af", i * PAGE, PAGE) for i, key in enumerate(chain)}
    connector, authority = scripted(
        "af",
        lambda asked: af_page(pages[asked.get("cursor")], chain[asked.get("cursor")], True),
    )
    start = next(iter(chain))
    got, error = pull_until_error(connector, start)
    assert "next_cursor already followed" in str(error)
    assert len(authority.asked) == len(chain)
    # Every page read is kept; the last one resumes from itself, not from the circle.
    assert ids(got) == [e["event_id"] for page in pages.values() for e in page]
    last = list(chain)[-1]
    assert {n.cursor for n in got[-PAGE:]} == {last}


def test_af_refuses_has_more_without_a_next_cursor(scripted: Any) -> None:
    page = records("af", 0, PAGE)
    connector, _ = scripted("af", lambda asked: af_page(page, None, True))
    got, error = pull_until_error(connector, "S")
    assert "has_more but gives no next_cursor" in str(error)
    assert len(got) == PAGE and {n.cursor for n in got} == {"S"}


@pytest.mark.parametrize("bad", ["", "x" * 501, "abc\ndef", "abc\x00"])
def test_af_refuses_a_next_cursor_it_could_not_store_or_send(scripted: Any, bad: str) -> None:
    page = records("af", 0, PAGE)
    connector, _ = scripted("af", lambda asked: af_page(page, bad, True))
    got, error = pull_until_error(connector, "S")
    # 500: what sync_cursor.cursor holds (before: 2048, and a longer one failed to be
    # stored on PostgreSQL every night)
    assert "next_cursor that is empty, longer than 500" in str(error)
    assert {n.cursor for n in got} == {"S"}  # never stored
    assert bad not in str(error) or bad == ""


def fk_times(name: str, first: int, count: int) -> list[str]:
    return [record(name, j)["andradTidpunkt"] for j in range(first, first + count)]


def test_fk_refuses_a_page_whose_times_go_backwards(scripted: Any) -> None:
    cases = records("fk", 0, 2 * PAGE)
    second = [cases[4], cases[5], cases[1], cases[6], cases[7]]  # cases[1] is earlier

    def answer(asked: dict[str, Any]) -> dict[str, Any]:
        if asked.get("andradFran") == cases[4]["andradTidpunkt"]:
            return {"arenden": second}
        return {"arenden": cases[:PAGE]}  # anything else: from the start again

    connector, authority = scripted("fk", answer)
    got, error = pull_until_error(connector)
    assert ids(got) == [c["arendeId"] for c in cases[:6]]
    assert "goes backwards" in str(error) and cases[1]["arendeId"] in str(error)
    assert len(authority.asked) == 2


def test_fk_refuses_cases_before_the_andradfran_asked_for(scripted: Any) -> None:
    cases = records("fk", 0, PAGE)
    connector, authority = scripted("fk", lambda asked: {"arenden": cases})
    got, error = pull_until_error(connector, cases[2]["andradTidpunkt"])
    assert got == [] and "goes backwards" in str(error)
    assert len(authority.asked) == 1


def test_fk_compares_times_as_instants_across_a_change_of_offset(scripted: Any) -> None:
    # The night summer time ends, 02:30+02:00 comes before 02:10+01:00: not backwards.
    # The same instant written another way (Z) is not backwards either.
    times = [
        "2024-10-27T02:30:00.000+02:00",
        "2024-10-27T02:10:00.000+01:00",
        "2024-10-27T01:10:00.000Z",
        "2024-10-27T03:00:00.000+01:00",
    ]
    cases = [record("fk", j, andradTidpunkt=t) for j, t in enumerate(times)]
    connector, _ = scripted("fk", lambda asked: {"arenden": cases})
    assert ids(list(connector.pull(None, someone()))) == [c["arendeId"] for c in cases]


def region_answer(posts: list[dict[str, Any]], traffar: int) -> dict[str, Any]:
    return {"traffar": traffar, "poster": posts}


def test_region_refuses_the_same_records_on_the_next_page(scripted: Any) -> None:
    # A region that ignores offset: the same page every time, all of one millisecond.
    same = [record("region", j, uppdateradMs=1_704_700_000_000) for j in range(PAGE)]
    connector, authority = scripted("region", lambda asked: region_answer(same, 10**9))
    got, error = pull_until_error(connector)
    assert ids(got) == [p["postId"] for p in same]
    assert "came again in the same search" in str(error)
    assert len(authority.asked) == 2


def test_region_refuses_a_page_whose_times_go_backwards(scripted: Any) -> None:
    posts = records("region", 0, PAGE)
    connector, authority = scripted("region", lambda asked: region_answer(posts, 10**9))
    got, error = pull_until_error(connector)
    assert ids(got) == [p["postId"] for p in posts]
    assert "before the records already read" in str(error)
    assert len(authority.asked) == 2


def test_region_reads_at_most_one_page_more_than_the_first_traffar_fills(scripted: Any) -> None:
    pages = itertools.count()

    def answer(asked: dict[str, Any]) -> dict[str, Any]:
        # A region that always has more: a page of new records, and five more to come.
        first = next(pages) * PAGE
        return region_answer(records("region", first, PAGE), asked["offset"] + 10)

    connector, authority = scripted("region", answer)
    got = list(connector.pull(None, someone()))
    assert len(authority.asked) == 3 and len(got) == 3 * PAGE


# -- 3. the field a connector resumes from is checked before it becomes a cursor ------------


@pytest.mark.parametrize(
    ("lopnummer", "why"),
    [
        (True, "lopnummer (a whole number)"),
        (5.0, "lopnummer (a whole number)"),
        ("7", "lopnummer (a whole number)"),
        (9_000_000_000_000_000, "beyond any the municipality can have handed out"),
        (3, "before the franLopnummer asked for"),
    ],
)
def test_kommun_refuses_a_lopnummer_it_cannot_resume_from(
    scripted: Any, lopnummer: Any, why: str
) -> None:
    events = records("kommun", 9, 3)
    events[1] = {**events[1], "lopnummer": lopnummer}
    connector, _ = scripted("kommun", lambda asked: kommun_page(int(asked["sida"]), events, 3))
    got, error = pull_until_error(connector, "10")
    assert ids(got) == [events[0]["handelseId"]] and got[0].cursor == "10"
    assert why in str(error) and "9000000000000000" not in str(error)


def test_kommun_refuses_events_out_of_lopnummer_order(scripted: Any) -> None:
    events = records("kommun", 0, 3)
    events = [events[0], events[2], events[1]]
    connector, _ = scripted("kommun", lambda asked: kommun_page(1, events, 3))
    got, error = pull_until_error(connector)
    assert len(got) == 2 and "not above the previous event's" in str(error)


@pytest.mark.parametrize(
    ("name", "cursor"),
    [
        ("kommun", "True"),
        ("kommun", "9000000000000000"),
        ("fk", "not a time"),
        ("fk", "2024-03-05T14:22:10.000"),  # no offset
        ("fk", "2999-01-01T00:00:00.000+01:00"),  # the future
        ("region", "True"),
        ("region", str(10**20)),
        ("region", "-1"),
    ],
)
def test_a_stored_cursor_the_feed_cannot_go_on_from_asks_for_from_start(
    scripted: Any, name: str, cursor: str
) -> None:
    connector, authority = scripted(name, lambda asked: {})
    with pytest.raises(ConnectorConfigError, match="--from-start"):
        list(connector.pull(cursor, someone()))
    assert authority.asked == []


@pytest.mark.parametrize(
    "changed",
    [
        "yesterday",
        "2024-03-05T14:22:10.000",  # no offset
        "0001-01-01T00:00:00.000+01:00",  # no UTC equivalent
        "2999-01-01T00:00:00.000+01:00",  # the future
    ],
)
def test_fk_refuses_an_andradtidpunkt_it_cannot_resume_from(scripted: Any, changed: str) -> None:
    cases = records("fk", 0, 3)
    cases[1] = {**cases[1], "andradTidpunkt": changed}
    connector, _ = scripted("fk", lambda asked: {"arenden": cases})
    got, error = pull_until_error(connector)
    assert ids(got) == [cases[0]["arendeId"]]
    assert cases[1]["arendeId"] in str(error) and changed not in str(error)
    assert "andradTidpunkt" in str(error)


@pytest.mark.parametrize(
    ("changed", "why"),
    [
        (True, "uppdateradMs (a whole number)"),
        (1.7e12, "uppdateradMs (a whole number)"),
        (10**20, "in the future"),
        (32_503_680_000_000, "in the future"),  # 3000-01-01
        (1_000, "before the records already read or the uppdateradFranMs asked for"),
    ],
)
def test_region_refuses_an_uppdateradms_it_cannot_resume_from(
    scripted: Any, changed: Any, why: str
) -> None:
    posts = records("region", 0, 3)
    posts[1] = {**posts[1], "uppdateradMs": changed}
    connector, _ = scripted("region", lambda asked: region_answer(posts, 3))
    got, error = pull_until_error(connector, str(posts[0]["uppdateradMs"]))
    assert ids(got) == [posts[0]["postId"]]
    assert why in str(error) and "100000000000000000000" not in str(error)


def test_region_sends_the_stored_cursor_as_uppdateradfranms(scripted: Any) -> None:
    posts = records("region", 0, 3)
    connector, authority = scripted("region", lambda asked: region_answer(posts, 3))
    got = list(connector.pull(str(posts[0]["uppdateradMs"]), someone()))
    assert [n.cursor for n in got] == [str(p["uppdateradMs"]) for p in posts]
    assert authority.asked[0]["uppdateradFranMs"] == posts[0]["uppdateradMs"]


@pytest.mark.parametrize("shared_millisecond", [False, True])
def test_region_refuses_a_search_that_ignores_offset_where_it_matters(
    scripted: Any, shared_millisecond: bool
) -> None:
    # It honours uppdateradFranMs but not offset. Each page is asked from the last record
    # read, at offset 0 while every record has a millisecond of its own, so that loses
    # nothing. Where two records read share the millisecond at a page boundary, the first
    # of them comes first again: the search is broken, stopped.
    posts = records("region", 0, 4 * PAGE)
    if shared_millisecond:
        posts[PAGE - 1] = {**posts[PAGE - 1], "uppdateradMs": posts[PAGE - 2]["uppdateradMs"]}

    def answer(asked: dict[str, Any]) -> dict[str, Any]:
        since = asked["uppdateradFranMs"] or 0
        hits = [p for p in posts if p["uppdateradMs"] >= since]
        return region_answer(hits[:PAGE], len(hits))

    connector, authority = scripted("region", answer)
    if not shared_millisecond:
        assert ids(list(connector.pull(None, someone()))) == [p["postId"] for p in posts]
        return
    got, error = pull_until_error(connector)
    assert ids(got) == [p["postId"] for p in posts[:PAGE]]
    assert "came again in the same search" in str(error) and posts[PAGE - 2]["postId"] in str(error)
    assert len(authority.asked) == 2


def test_af_follows_empty_pages_that_say_has_more(scripted: Any) -> None:
    # Stopping at an empty page would ask for that same page every night and never get
    # to the events behind it.
    first, later = records("af", 0, PAGE), records("af", PAGE, PAGE)
    pages = {
        None: af_page(first, "E1", True),
        "E1": af_page([], "E2", True),
        "E2": af_page([], "L", True),
        "L": af_page(later, "END", False),
    }
    connector, authority = scripted("af", lambda asked: pages[asked.get("cursor")])
    got = list(connector.pull(None, someone()))
    assert ids(got) == [e["event_id"] for e in first + later]
    assert got[-1].cursor == "END"
    assert len(authority.asked) == 4


def test_af_stops_after_too_many_empty_pages_in_a_row(
    scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(af_connector, "MAX_EMPTY_PAGES", 5)
    first = records("af", 0, PAGE)

    def answer(asked: dict[str, Any]) -> dict[str, Any]:
        cursor = asked.get("cursor")
        if cursor is None:
            return af_page(first, "E0", True)
        return af_page([], f"E{int(cursor[1:]) + 1}", True)  # a new empty page, for ever

    connector, authority = scripted("af", answer)
    got, error = pull_until_error(connector)
    assert "empty pages in a row" in str(error)
    assert ids(got) == [e["event_id"] for e in first]
    assert len(authority.asked) == 1 + 5


@pytest.mark.parametrize(
    ("name", "field"),
    [("kommun", "handelseId"), ("af", "event_id"), ("fk", "arendeId"), ("region", "postId")],
)
def test_a_record_id_that_would_act_on_a_terminal_stops_the_pull_without_repeating_it(
    scripted: Any, name: str, field: str
) -> None:
    """Before: such an id was taken, and went raw into error lines (a record out of order,
    read twice), the connector's last_error and the admin page (hostile-authority walk)."""
    page = records(name, 0, 3)
    page[1] = {**page[1], field: "K-\x1b]0;pwned\x07-\u202e1"}
    answers = {
        "kommun": lambda asked: kommun_page(int(asked["sida"]), page, 3),
        "af": lambda asked: af_page(page, None, False),
        "fk": lambda asked: {"arenden": page},
        "region": lambda asked: {"traffar": 3, "poster": page},
    }
    connector, _ = scripted(name, answers[name])
    got, error = pull_until_error(connector, None)
    assert error is not None and "\x1b" not in str(error) and "\u202e" not in str(error)
    assert ids(got) == [page[0][field]]
