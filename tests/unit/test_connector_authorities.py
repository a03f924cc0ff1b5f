"""The four built-in connectors against their in-process sandboxes: no network anywhere.

Each test runs for kommun, af, fk and region unless it is about one authority's habit.
Waits between retries are recorded instead of slept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tls_support import client_certificate

from connectors.af.connector import AfConnector
from connectors.fk.connector import FkConnector
from connectors.kommun.connector import KommunConnector
from connectors.region.connector import RegionConnector
from connectors.sandbox_kit import Population
from hub.connector import (
    AuthorityError,
    Connector,
    ConnectorConfigError,
    InProcessTransport,
    InvalidRecordError,
    RetryPolicy,
    SandboxSettings,
    TransientConnectorError,
    UnmappedCodeError,
)
from hub.model.domain import Plan
from hub.model.identity import PersonalIdentity, parse_identity
from hub.model.records import NativeRecord, Transfer
from hub.model.vocab import Purpose

CONNECTORS: dict[str, type[Connector]] = {
    "kommun": KommunConnector,
    "af": AfConnector,
    "fk": FkConnector,
    "region": RegionConnector,
}
SEED, PEOPLE, ROUNDS, PAGE = 7, 40, 2, 5
SECRETS = ("kommun-sandbox-token", "af-sandbox-secret")


@dataclass
class Rig:
    """A connector wired to its sandbox in-process, plus a client for /_sandbox."""

    connector: Connector
    bench: httpx.Client
    app: Any
    waits: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.connector.name

    def follow(self, people: list[PersonalIdentity]) -> list[PersonalIdentity]:
        for person in people:
            self.connector.subscribe(person)
        return people

    def pull(self, people: list[PersonalIdentity], cursor: str | None = None) -> list[NativeRecord]:
        return list(self.connector.pull(cursor, people))

    def knobs(self, **changes: Any) -> None:
        assert self.bench.patch("/_sandbox/knobs", json=changes).status_code == 200


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Any]:
    made: list[Rig] = []

    def make(name: str, *, timeout: float = 10.0, **knobs: Any) -> Rig:
        cls = CONNECTORS[name]
        settings = SandboxSettings(
            **{"seed": SEED, "population": PEOPLE, "records_per_person": ROUNDS, **knobs}
        )
        app = cls.sandbox_app(settings)
        assert app is not None
        values = cls.sandbox_options(f"http://{name}.sandbox", tmp_path)
        options = cls.Options(**values, page_size=PAGE, timeout_seconds=timeout)
        waits: list[float] = []
        retry = RetryPolicy(attempts=3, initial_wait=0.5, max_wait=4.0, sleep=waits.append)
        connector = cls.create(options, transport=InProcessTransport(app), retry=retry)
        bench = httpx.Client(transport=InProcessTransport(app), base_url="http://bench")
        made.append(Rig(connector, bench, app, waits))
        return made[-1]

    yield make
    for r in made:
        r.connector.close()
        r.bench.close()


def people(count: int, start: int = 0) -> list[PersonalIdentity]:
    numbers = Population(SEED, PEOPLE).numbers[start : start + count]
    return [parse_identity(n) for n in numbers]


def transfer(person: PersonalIdentity | None, key: str = "k-0123456789abcdef") -> Transfer:
    return Transfer(
        idempotency_key=key,
        origin="team",
        recipient="kommun",
        purpose=Purpose.COORDINATION,
        participant="p-" + "0" * 32,
        person=person,
        source_id="plan-1",
        updated_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
        body=Plan(established_on=date(2025, 3, 1), responsible_parties=("kommun", "af")),
    )


ALL = pytest.mark.parametrize("name", sorted(CONNECTORS))


# -- talking to the authority ------------------------------------------------------------


@ALL
def test_check_succeeds_against_its_sandbox(rig: Any, name: str) -> None:
    rig(name).connector.check()


@ALL
def test_pull_pages_through_every_record_about_the_followed_people(rig: Any, name: str) -> None:
    r = rig(name)
    followed = r.follow(people(6))
    records = r.pull(followed)
    # Several pages of PAGE records each, every record once, all about followed people.
    assert len(records) == 6 * ROUNDS > PAGE
    assert len({rec.source_id for rec in records}) == len(records)
    mapped = [r.connector.map(rec) for rec in records]
    assert {m.person for m in mapped} == set(followed)
    assert all(m.source == name and not m.unmapped for m in mapped)


@pytest.mark.parametrize("name", ["kommun", "af", "fk"])
def test_the_authority_forgets_a_person_after_unsubscribe(rig: Any, name: str) -> None:
    r = rig(name)
    first, second = r.follow(people(2))
    r.connector.unsubscribe(first)
    subscribed = r.bench.get("/_sandbox/subscriptions").json()
    assert subscribed["numbers"] == [second.number]
    persons = {r.connector.map(rec).person for rec in r.pull([second])}
    assert persons == {second}


def test_region_keeps_no_list_and_answers_only_about_the_people_asked(rig: Any) -> None:
    r = rig("region")
    asked = people(2, start=3)
    assert r.pull([]) == []
    persons = {r.connector.map(rec).person for rec in r.pull(asked)}
    assert persons == set(asked)
    assert r.bench.get("/_sandbox/subscriptions").json()["count"] == 0


@ALL
def test_resuming_from_a_records_cursor_reads_the_rest_and_nothing_earlier(
    rig: Any, name: str
) -> None:
    r = rig(name)
    followed = r.follow(people(5))
    records = r.pull(followed)
    middle = len(records) // 2
    resumed = [rec.source_id for rec in r.pull(followed, cursor=records[middle].cursor)]
    ids = [rec.source_id for rec in records]
    # Inclusive cursors: the rest comes back, at most the page it resumed on is re-read.
    assert resumed[-len(ids[middle + 1 :]) :] == ids[middle + 1 :]
    assert set(resumed) <= set(ids[middle - PAGE :])


@ALL
def test_new_records_after_time_passes_follow_the_last_cursor(rig: Any, name: str) -> None:
    r = rig(name)
    followed = r.follow(people(3))
    records = r.pull(followed)
    assert r.bench.post("/_sandbox/advance", json={"rounds": 1}).json() == {"rounds": ROUNDS + 1}
    later = r.pull(followed, cursor=records[-1].cursor)
    new = {rec.source_id for rec in later} - {rec.source_id for rec in records}
    assert len(new) == 3


# -- mapping -----------------------------------------------------------------------------


@ALL
def test_unknown_codes_are_kept_and_flagged(rig: Any, name: str) -> None:
    r = rig(name, unknown_code_rate=1.0, records_per_person=4)
    followed = r.follow(people(5))
    mapped = [r.connector.map(rec) for rec in r.pull(followed)]
    flagged = [m for m in mapped if m.unmapped]
    assert flagged, "every record with a code should carry the unknown one"
    for m in flagged:
        assert all(u.code for u in m.unmapped)
        assert m.mapping_version == "2025.1"
        assert "unmapped" in m.body.model_dump(mode="json").values()


@ALL
def test_strict_mapping_refuses_a_record_with_an_unknown_code(rig: Any, name: str) -> None:
    r = rig(name, unknown_code_rate=1.0, records_per_person=4)
    r.connector.strict_mapping = True
    followed = r.follow(people(5))
    errors = []
    for rec in r.pull(followed):
        try:
            r.connector.map(rec)
        except UnmappedCodeError as exc:
            errors.append(exc)
    assert errors
    assert all(e.source_id in str(e) and f"{name}.toml" in str(e) for e in errors)


@ALL
def test_schema_violations_are_refused_one_by_one_naming_the_field_not_the_value(
    rig: Any, name: str
) -> None:
    r = rig(name, invalid_record_rate=1.0)
    followed = r.follow(people(4))
    records = r.pull(followed)
    for rec in records:
        with pytest.raises(InvalidRecordError) as err:
            r.connector.map(rec)
        message = str(err.value)
        assert rec.source_id in message and err.value.problems
        assert not any(p.number in message or p.formatted() in message for p in followed)


TYPE_FIELDS = {"af": "event_type", "fk": "arendetyp", "kommun": "handelseTyp", "region": "typ"}


@ALL
def test_a_record_of_a_type_the_connector_does_not_know_is_refused_naming_the_field(
    rig: Any, name: str
) -> None:
    r = rig(name)
    record = r.pull(r.follow(people(1)))[0]
    field = TYPE_FIELDS[name]
    for unknown in ("NO-SUCH-TYPE", 7, None):
        native = record.model_copy(update={"payload": {**record.payload, field: unknown}})
        with pytest.raises(InvalidRecordError) as err:
            r.connector.map(native)
        (problem,) = err.value.problems
        assert problem.startswith(f"{field}: not ") and problem.endswith("this connector knows")


def test_region_refuses_a_record_carrying_a_diagnosis(rig: Any) -> None:
    r = rig("region", invalid_record_rate=1.0)
    for rec in r.pull(people(3)):
        with pytest.raises(InvalidRecordError, match="takes no diagnoses") as err:
            r.connector.map(rec)
        assert "TEST-ONLY" not in str(err.value)


# -- pushing -----------------------------------------------------------------------------


@ALL
def test_a_repeated_push_is_delivered_once(rig: Any, name: str) -> None:
    r = rig(name)
    person = people(1)[0]
    first = r.connector.push(transfer(person))
    again = r.connector.push(transfer(person))
    assert first.accepted and not first.duplicate
    assert again.duplicate and again.reference == first.reference
    received = r.bench.get("/_sandbox/received").json()
    assert (received["unique"], received["duplicates"]) == (1, 1)
    assert received["items"][0]["idempotency_key"] == "k-0123456789abcdef"


@ALL
def test_a_push_whose_answer_was_lost_is_retried_and_absorbed(rig: Any, name: str) -> None:
    # The authority stores the push but answers too late; the retry carries the same key.
    r = rig(name, timeout=1.0)  # far above an answer, far below the 5 s stall
    r.connector.check()  # af: fetch the access token first, so the stall hits the push
    r.knobs(timeout_rate=1.0, fault_budget=1, stall_seconds=5.0)
    result = r.connector.push(transfer(people(1)[0]))
    assert result.duplicate
    received = r.bench.get("/_sandbox/received").json()
    assert (received["unique"], received["duplicates"]) == (1, 1)
    assert len(r.waits) == 1


@ALL
def test_a_batch_push_stores_each_message_once_like_single_pushes(rig: Any, name: str) -> None:
    r = rig(name)
    one, two, three = people(3)
    single = r.connector.push(transfer(one, key="k-single-000000001"))
    results = r.connector.push_many(
        [
            transfer(one, key="k-single-000000001"),  # already sent alone: the same message
            transfer(two, key="k-batch-0000000002"),
            transfer(three, key="k-batch-0000000003"),
        ]
    )
    assert [(x.accepted, x.duplicate) for x in results] == [
        (True, True),
        (True, False),
        (True, False),
    ]
    assert results[0].reference == single.reference
    received = r.bench.get("/_sandbox/received").json()
    assert (received["unique"], received["duplicates"]) == (3, 1)
    assert [i["idempotency_key"] for i in received["items"]] == [
        "k-single-000000001",
        "k-batch-0000000002",
        "k-batch-0000000003",
    ]


@ALL
def test_a_batch_item_reusing_a_key_is_refused_alone(rig: Any, name: str) -> None:
    r = rig(name)
    one, two = people(2)
    r.connector.push(transfer(one, key="k-reused-00000001"))
    results = r.connector.push_many(
        [transfer(two, key="k-reused-00000001"), transfer(two, key="k-fresh-000000002")]
    )
    assert not results[0].accepted and "422" in (results[0].detail or "")
    assert results[1].accepted and not results[1].duplicate
    assert one.number not in (results[0].detail or "")
    assert r.bench.get("/_sandbox/received").json()["unique"] == 2


@ALL
def test_a_batch_whose_answer_was_lost_is_retried_and_absorbed(rig: Any, name: str) -> None:
    r = rig(name, timeout=1.0)  # far above an answer, far below the 5 s stall
    r.connector.check()
    r.knobs(timeout_rate=1.0, fault_budget=1, stall_seconds=5.0)
    keys = ["k-lost-0000000001", "k-lost-0000000002"]
    results = r.connector.push_many(
        [transfer(p, key=k) for p, k in zip(people(2), keys, strict=True)]
    )
    assert all(x.accepted and x.duplicate for x in results)
    received = r.bench.get("/_sandbox/received").json()
    assert (received["unique"], received["duplicates"]) == (2, 2)
    assert len(r.waits) == 1


def test_a_protected_person_is_pushed_by_reference_only(rig: Any) -> None:
    r = rig("kommun")
    r.connector.push(transfer(None))
    body = r.bench.get("/_sandbox/received").json()["items"][0]["body"]
    assert "personnummer" not in body and body["deltagarreferens"].startswith("p-")


# -- faults --------------------------------------------------------------------------------


@ALL
def test_rate_limited_pull_waits_exactly_retry_after_then_finishes(rig: Any, name: str) -> None:
    r = rig(name)
    followed = r.follow(people(4))
    r.knobs(rate_limit_rate=1.0, retry_after_seconds=4, fault_budget=2)
    assert len(r.pull(followed)) == 4 * ROUNDS
    assert r.waits == [4.0, 4.0]


@ALL
def test_unavailable_authority_is_retried_with_bounded_backoff(rig: Any, name: str) -> None:
    r = rig(name)
    followed = r.follow(people(4))
    r.knobs(fail_rate=1.0, fault_budget=2)
    assert len(r.pull(followed)) == 4 * ROUNDS
    assert len(r.waits) == 2
    assert 0 <= r.waits[0] <= 0.5 and 0 <= r.waits[1] <= 1.0  # full jitter under the cap


@ALL
def test_a_lasting_outage_fails_with_a_classified_readable_error(rig: Any, name: str) -> None:
    r = rig(name)
    followed = r.follow(people(2))
    r.knobs(fail_rate=1.0)
    with pytest.raises(TransientConnectorError) as err:
        r.pull(followed)
    assert str(err.value).startswith(f"{name}: the authority is unavailable")
    assert "tried 3 times in a row" in str(err.value)
    assert err.value.exit_code == 75


@ALL
def test_malformed_json_is_an_authority_error_and_is_not_retried(rig: Any, name: str) -> None:
    r = rig(name)
    followed = r.follow(people(2))
    r.knobs(malformed_rate=1.0, fault_budget=1)
    with pytest.raises(AuthorityError, match="malformed JSON"):
        r.pull(followed)
    assert r.waits == []


@ALL
def test_a_pull_broken_off_midway_resumes_from_the_last_record_received(
    rig: Any, name: str
) -> None:
    r = rig(name)
    followed = r.follow(people(6))
    everything = [rec.source_id for rec in r.pull(followed)]
    got: list[NativeRecord] = []
    stream = r.connector.pull(None, followed)
    with pytest.raises(AuthorityError):
        for rec in stream:
            got.append(rec)
            if len(got) == PAGE:  # the first page is in; the next answer is garbage
                r.knobs(malformed_rate=1.0, fault_budget=1)
    assert len(got) == PAGE
    rest = r.pull(followed, cursor=got[-1].cursor)
    assert {rec.source_id for rec in got} | {rec.source_id for rec in rest} == set(everything)


@pytest.mark.parametrize("name", ["kommun", "af"])
def test_wrong_credentials_are_a_configuration_error_without_the_secret(
    rig: Any, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cls = CONNECTORS[name]
    r = rig(name)
    wrong = "wrong-secret-value-123"
    key = "token" if name == "kommun" else "client_secret"
    values = {**cls.sandbox_options("http://x", Path(".")), key: wrong, "page_size": PAGE}
    options = cls.Options(**values)
    transport = InProcessTransport(r.app)
    retry = RetryPolicy(sleep=r.waits.append)
    broken = cls.create(options, transport=transport, retry=retry)
    with broken, pytest.raises(ConnectorConfigError) as err:
        broken.check()
    assert "evi connectors configure" in str(err.value)
    assert r.waits == []  # never retried
    for text in (str(err.value), repr(broken), repr(options), caplog.text):
        assert wrong not in text
        assert all(secret not in text for secret in SECRETS)


@ALL
def test_no_secret_in_reprs_or_logs_of_a_whole_pull(
    rig: Any, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = rig(name)
    followed = r.follow(people(3))
    r.knobs(fail_rate=1.0, fault_budget=1)
    r.pull(followed)
    texts = [caplog.text, repr(r.connector), repr(r.connector.options), repr(r.connector.client)]
    for text in texts:
        assert all(secret not in text for secret in SECRETS)
    assert "retrying" in caplog.text
    assert not any(p.number in caplog.text for p in followed)


def test_an_expired_client_certificate_is_refused_before_any_request(tmp_path: Path) -> None:
    cert, key = client_certificate(tmp_path, datetime(2021, 1, 1, tzinfo=UTC))
    options = FkConnector.Options(base_url="https://fk.example", client_cert=cert, client_key=key)
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda req: calls.append(req) or httpx.Response(200))
    with pytest.raises(ConnectorConfigError, match="expired on 2021-01-01"):
        FkConnector.create(options, transport=transport)
    assert calls == []


def test_an_encrypted_client_key_without_its_password_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    # OpenSSL would otherwise ask for the pass phrase on the terminal: a nightly job would
    # hang there, and without a terminal it failed with an internal error.
    cert, key = client_certificate(tmp_path, datetime(2099, 1, 1, tzinfo=UTC), password=b"hemligt")
    options = FkConnector.Options(base_url="https://fk.example", client_cert=cert, client_key=key)
    with pytest.raises(ConnectorConfigError, match="is encrypted and no client_key_password"):
        FkConnector.create(options, transport=httpx.MockTransport(lambda _r: httpx.Response(200)))
    given = options.model_copy(update={"client_key_password": SecretStr("hemligt")})
    FkConnector.create(given, transport=httpx.MockTransport(lambda _r: httpx.Response(200)))
