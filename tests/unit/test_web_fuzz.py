"""The web app against odd input: a clear 4xx saying what to fix, never a 500, a traceback
or the value given; and the app against its own OpenAPI document (schemathesis).

The property tests are bounded (a few examples per operation, derandomized, so CI runs
the same requests every time) and need no PostgreSQL: they judge the web edge, which is
the same over either database.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from casework_support import register_caseload
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_consent_support import Clock, ledger
from web_support import bearer, token_for, web_client

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.web.app import create_app
from hub.web.guards import MAX_BODY_BYTES
from hub.web.throttle import SignInThrottle
from hub.web.users import Role

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
pytestmark = SQLITE_ONLY

OWN = {"sec-fetch-site": "same-origin"}
JSON = {"content-type": "application/json"}
SIX_DIGITS = re.compile(r"[0-9]{6}")


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2099-01-01T00:00:00Z")
    with web_client(hub) as client:
        yield client


# -- JSON bodies the parser gives up on -----------------------------------------------------

UNPARSEABLE = {
    "nested too deeply": b"[" * 100_000 + b"]" * 100_000,
    "not UTF-8": b'{"pnr": "\xff\xfe"}',
    "a number of 5000 digits": b'{"pnr": ' + b"1" * 5000 + b"}",
}


@pytest.mark.parametrize("body", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
def test_a_json_body_the_parser_gives_up_on_is_a_422_saying_what_to_fix(
    hub: Hub, client: TestClient, body: bytes
) -> None:
    # FastAPI answered these 400 "There was an error parsing the body": a status the API
    # does not document, saying nothing of what to fix (a syntax error was already a 422).
    anna = bearer(token_for(hub, "anna.af", Role.CASEWORKER, party="af"))
    before = len(ledger(hub.db))
    answer = client.post("/api/participants/status", content=body, headers={**anna, **JSON})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == (
        "invalid request: body: not valid JSON (not UTF-8, nested too deeply, or a number "
        "too long); send a JSON object in UTF-8"
    )
    assert len(ledger(hub.db)) == before  # nothing looked up, nothing logged


# -- methods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/login", "GET, POST"),  # Starlette said GET: the first route it tried
        ("DELETE", "/login", "GET, POST"),
        ("GET", "/logout", "POST"),
        ("GET", "/api/participants/status", "POST"),
        ("TRACE", "/", "GET"),
        ("PUT", "/static/style.css", "GET, HEAD"),
    ],
)
def test_a_method_the_path_does_not_take_is_a_405_naming_every_method_it_takes(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    answer = client.request(method, path, headers=OWN)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    takes = " or ".join(m for m in allow.split(", ") if m != "HEAD")
    assert f"this path takes only {takes}" in answer.text
    # a page says what went wrong, not that the server failed
    assert "Something went wrong on the server" not in answer.text


# -- connector names, counts --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/admin/connectors/{name}/check",
        "/api/admin/connectors/{name}/enable",
        "/admin/connectors/{name}/check",
    ],
)
@pytest.mark.parametrize("name", ["x" * 3000, "%00", "a%0Ab", "%C3%A5f", "a%20b"])
def test_a_connector_name_that_cannot_be_one_is_a_422_that_does_not_repeat_it(
    hub: Hub, client: TestClient, path: str, name: str
) -> None:
    # It was a 404 quoting the whole path segment: 3000 characters, a NUL, a newline.
    ola = bearer(token_for(hub, "ola.it", Role.ADMINISTRATOR, party="kommun"))
    answer = client.post(path.format(name=name), headers={**ola, **OWN})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("invalid request: name: ")
    assert "xxxxxxxx" not in answer.text and "\\u0000" not in answer.text
    assert "\\n" not in answer.text and "å" not in answer.text and "a b" not in answer.text


@pytest.mark.parametrize("name", ["nope", "AF"])
def test_a_connector_that_is_not_installed_is_still_a_404_naming_it(
    hub: Hub, client: TestClient, name: str
) -> None:
    ola = bearer(token_for(hub, "ola.it", Role.ADMINISTRATOR, party="kommun"))
    answer = client.post(f"/api/admin/connectors/{name}/check", headers=ola)
    assert answer.status_code == 404 and f"'{name}'" in answer.json()["detail"]
    number = client.post("/api/admin/connectors/199001012385/check", headers=ola)
    assert number.status_code == 404 and "199001012385" not in number.text


@pytest.mark.parametrize("queued", ["-5", "99999999999999999999"])
def test_the_admin_page_claims_no_count_that_cannot_have_been_queued(
    hub: Hub, client: TestClient, queued: str
) -> None:
    # "-5 transfers queued again" from a URL typed or bookmarked.
    ola = bearer(token_for(hub, "ola.it", Role.ADMINISTRATOR, party="kommun"))
    answer = client.get(f"/admin?queued={queued}", headers=ola)
    assert answer.status_code == 422
    assert queued not in answer.text and "queued" in answer.json()["detail"]


# -- odd forms ----------------------------------------------------------------------------

ODD_FORMS = {
    "NUL in the number": b"pnr=19900101%002385",
    "raw NUL": b"pnr=19900101\x002385",
    "not UTF-8": b"pnr=\xff\xfe",
    "percent-encoded not UTF-8": b"pnr=%ff%fe",
    "a number of 10,000 digits": b"pnr=" + b"1" * 10_000,
    "a newline in the number": b"pnr=1990010123%0a85",
    "a lone surrogate": b"pnr=%ed%a0%80",
    "other scripts' digits": "pnr=١٩٩٠٠١٠١٢٣٨٥".encode(),
    "JSON instead": b'{"pnr": "199001012385"}',
    "no field": b"&&&",
}


@pytest.mark.parametrize("path", ["/participants", "/extract", "/extract/log", "/log"])
@pytest.mark.parametrize("body", ODD_FORMS.values(), ids=ODD_FORMS.keys())
def test_odd_forms_get_a_4xx_page_that_repeats_nothing(
    hub: Hub, client: TestClient, path: str, body: bytes
) -> None:
    role = Role.CASEWORKER if path == "/participants" else Role.PRIVACY_OFFICER
    token = token_for(hub, "user", role, party="af")
    client.post("/login", data={"token": token}, headers=OWN)
    form = {"content-type": "application/x-www-form-urlencoded", **OWN}
    answer = client.post(path, content=body, headers=form)
    assert answer.status_code < 500 and "Traceback" not in answer.text
    if answer.status_code >= 400:
        assert answer.headers["content-type"].startswith("text/html")
        assert "1111111111" not in answer.text and "2385" not in answer.text


# -- the OpenAPI document -----------------------------------------------------------------


def _document(hub: Hub) -> dict[str, Any]:
    return create_app(hub).openapi()


def test_the_openapi_document_names_every_answer_the_edges_give(hub: Hub) -> None:
    paths = _document(hub)["paths"]
    status = paths["/api/participants/status"]["post"]["responses"]
    assert {"200", "401", "403", "404", "413", "422", "429", "503"} <= set(status)
    error = status["401"]["content"]["application/json"]["schema"]
    assert error["properties"] == {"detail": {"type": "string"}}
    assert set(status["422"]["content"]) == {"application/json"}  # not FastAPI's list shape
    page = paths["/participants"]["post"]
    assert set(page["responses"]["200"]["content"]) == {"text/html"}
    assert set(page["responses"]["422"]["content"]) == {"text/html", "application/json"}
    form = page["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["pnr"]
    login = paths["/login"]["post"]["responses"]
    assert {"303", "401", "422", "429"} <= set(login) and "200" not in login
    assert "content" not in login["303"]
    assert "401" not in paths["/healthz"]["get"]["responses"]  # no sign-in needed
    assert set(paths["/stats.csv"]["get"]["responses"]["200"]["content"]) == {"text/csv"}


# -- schemathesis: every operation, as each role and signed out ----------------------------

ROLE_OF = (
    ("/api/participants/status", Role.CASEWORKER),
    ("/participants", Role.CASEWORKER),
    ("/api/participants/extract", Role.PRIVACY_OFFICER),
    ("/extract", Role.PRIVACY_OFFICER),
    ("/api/log", Role.PRIVACY_OFFICER),
    ("/log", Role.PRIVACY_OFFICER),
    ("/api/stats", Role.STEERING_GROUP),
    ("/stats", Role.STEERING_GROUP),
    ("/api/admin", Role.ADMINISTRATOR),
    ("/admin", Role.ADMINISTRATOR),
)
"""Who may use a path (by its start); anything else (/, /login, /healthz) anyone."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _role(path: str) -> Role:
    return next((role for start, role in ROLE_OF if path.startswith(start)), Role.CASEWORKER)


def _fuzz(app: FastAPI, tokens: dict[Role, str] | None, examples: int) -> tuple[int, int]:
    """Run every operation of ``app``'s OpenAPI document up to ``examples`` times
    (derandomized: the same requests each run; fewer where there are not that many
    different requests to make) with the token of the role that may use it, or none: how
    many operations, and how many requests made."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    schema.config.generation.update(modes=list(schemathesis.GenerationMode), allow_x00=True)
    made = operations = 0
    for result in schema.get_all_operations():
        operations += 1
        operation = result.ok()
        # Fuzzing /login makes failed sign-ins: without a fresh count per operation every
        # operation after it would answer only 429 (its own tests: test_web_*_throttle).
        app.state.sign_in_throttle = SignInThrottle()
        headers = dict(OWN)
        if tokens is not None:
            headers.update(bearer(tokens[_role(operation.path)]))
        made += _run(operation, headers, examples)
    return operations, made


def _run(operation: Any, headers: dict[str, str], examples: int) -> int:
    made = 0

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        nonlocal made
        made += 1
        answer = case.call_and_validate(headers=headers, checks=CHECKS)
        assert "Traceback" not in answer.text
        sent = case.body.get("pnr") if isinstance(case.body, dict) else None
        # An error never repeats what was sent as a number: checked for a text with six
        # digits in a row (one that could be part of one), as any other ("detail") may be
        # a word of the answer itself.
        if answer.status_code >= 400 and isinstance(sent, str) and SIX_DIGITS.search(sent):
            assert sent.strip() not in answer.text

    check()
    return made


def test_every_operation_signed_in_as_its_role_answers_as_documented(hub: Hub) -> None:
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2099-01-01T00:00:00Z")
    tokens = {role: token_for(hub, f"fuzz.{role.value}", role, party="af") for role in Role}
    operations, made = _fuzz(create_app(hub), tokens, examples=25)
    assert operations >= 37 and made >= 10 * operations


def test_every_operation_signed_out_answers_as_documented(hub: Hub) -> None:
    operations, made = _fuzz(create_app(hub), None, examples=5)
    assert operations >= 37 and made >= 2 * operations


def test_a_signed_in_user_is_refused_elsewhere_as_documented(hub: Hub) -> None:
    # Each role against every operation: the others' answer 403, never something else.
    tokens = {role: token_for(hub, f"fuzz.{role.value}", role, party="af") for role in Role}
    wrong = {role: tokens[Role.STEERING_GROUP] for role in Role}
    wrong[Role.STEERING_GROUP] = tokens[Role.ADMINISTRATOR]
    operations, made = _fuzz(create_app(hub), wrong, examples=3)
    assert operations >= 37 and made >= operations


# -- bodies that stop coming --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/participants"])
def test_a_form_cut_off_at_the_size_limit_is_no_internal_error_in_the_log(
    hub: Hub, client: TestClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    # BodyLimit answers 413 and tells the app the client went away; reading the form then
    # raised ClientDisconnect, which the server log called "internal error" (at ERROR).
    token = token_for(hub, "anna.af", Role.CASEWORKER, party="af")
    client.post("/login", data={"token": token}, headers=OWN)
    caplog.set_level(logging.DEBUG, logger="hub.web.errors")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"a" * 4096

    form = {"content-type": "application/x-www-form-urlencoded", **OWN}
    answer = client.post(path, content=chunks(), headers=form)
    assert answer.status_code == 413
    logged = [r for r in caplog.records if r.name == "hub.web.errors"]
    assert [r.levelno for r in logged] == [logging.DEBUG]
    assert logged[0].getMessage() == f"the client went away during POST {path}"


def test_a_client_that_goes_away_mid_form_is_no_internal_error(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(hub)
    caplog.set_level(logging.DEBUG, logger="hub.web.errors")
    sent: list[dict[str, Any]] = []
    messages = iter(
        [
            {"type": "http.request", "body": b"token=abc", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/login",
        "raw_path": b"/login",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 443),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(m.get("status") != 500 for m in sent)
