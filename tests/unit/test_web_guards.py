"""What the web refuses before any route acts: requests from elsewhere, and oversized bodies.

A page on another origin of the same site (another host of the municipality's domain) gets
the ``SameSite=Strict`` cookie sent along; the browser's Fetch Metadata headers say where a
request comes from, and the hub refuses what did not come from its own pages. The browser
side of this (Chromium really sending those headers) is in tests/browser.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from test_consent_support import ledger
from web_support import bearer, token_for, web_client

from hub.connector.service import list_connectors
from hub.context import Hub
from hub.web.forms import MAX_FORM_BYTES
from hub.web.guards import MAX_BODY_BYTES
from hub.web.users import Role

OWN = {"sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
SAME_SITE = {**OWN, "sec-fetch-site": "same-site", "origin": "https://intranet.kommun.example"}
CROSS_SITE = {**OWN, "sec-fetch-site": "cross-site", "origin": "https://elsewhere.example"}


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with web_client(hub) as client:
        yield client


def enabled(hub: Hub) -> dict[str, bool]:
    return {c.name: c.enabled for c in list_connectors(hub)}


def signed_in(hub: Hub, client: TestClient, role: Role = Role.ADMINISTRATOR) -> None:
    token = token_for(hub, "ola.admin", role, party="kommun")
    assert client.post("/login", data={"token": token}, headers=OWN).status_code == 200


@pytest.mark.parametrize("elsewhere", [SAME_SITE, CROSS_SITE], ids=["same-site", "cross-site"])
def test_a_form_posted_from_another_origin_does_nothing(
    hub: Hub, client: TestClient, elsewhere: dict[str, str]
) -> None:
    signed_in(hub, client)
    before = enabled(hub)
    action = "disable" if before["af"] else "enable"
    refused = client.post(f"/admin/connectors/af/{action}", headers=elsewhere)
    assert refused.status_code == 403
    assert "sent from another" in refused.text and "was not done" in refused.text
    assert enabled(hub) == before
    done = client.post(f"/admin/connectors/af/{action}", headers=OWN, follow_redirects=False)
    assert done.status_code == 303 and enabled(hub)["af"] is not before["af"]


def test_signing_in_from_another_origin_is_refused(hub: Hub, client: TestClient) -> None:
    # Another site could otherwise sign the browser in as the attacker's own user.
    token = token_for(hub, "mallory", Role.CASEWORKER, party="af")
    refused = client.post("/login", data={"token": token}, headers=SAME_SITE)
    assert refused.status_code == 403 and not refused.cookies


def test_links_from_elsewhere_still_open_the_pages(hub: Hub, client: TestClient) -> None:
    signed_in(hub, client)
    # a link on the intranet is a top-level GET navigation: allowed
    assert client.get("/admin", headers=SAME_SITE).status_code == 200
    # the same page embedded or fetched by another origin's page is not
    for dest, mode in (("image", "no-cors"), ("iframe", "navigate"), ("empty", "cors")):
        embedded = {**SAME_SITE, "sec-fetch-dest": dest, "sec-fetch-mode": mode}
        assert client.get("/admin", headers=embedded).status_code == 403
        assert client.get("/api/admin/connectors", headers=embedded).status_code == 403


def test_the_refusal_is_in_the_pages_language(hub: Hub) -> None:
    with web_client(hub, language="sv") as client:
        page = client.post("/login", data={"token": "x"}, headers=CROSS_SITE)
    assert page.status_code == 403
    assert "skickades från en annan webbplats och utfördes inte" in page.text


def test_programs_without_fetch_metadata_are_judged_by_their_origin(
    hub: Hub, client: TestClient
) -> None:
    token = token_for(hub, "ola.admin", Role.ADMINISTRATOR, party="kommun")
    before = enabled(hub)
    action = "disable" if before["af"] else "enable"
    url = f"/api/admin/connectors/af/{action}"
    foreign = client.post(url, headers={**bearer(token), "origin": "https://elsewhere.example"})
    assert foreign.status_code == 403 and enabled(hub) == before
    own = client.post(url, headers={**bearer(token), "origin": "https://testserver"})
    assert own.status_code == 200 and enabled(hub)["af"] is not before["af"]
    plain = client.post(url.replace(action, "enable"), headers=bearer(token))  # curl, a script
    assert plain.status_code == 200


def test_a_body_over_the_limit_is_refused_before_anyone_reads_it(
    hub: Hub, client: TestClient
) -> None:
    big = b"token=" + b"a" * MAX_BODY_BYTES
    anonymous = client.post(
        "/login", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert anonymous.status_code == 413 and "larger than" in anonymous.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"a" * 4096

    streamed = client.post(
        "/api/log/entries", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.headers["cache-control"] == "no-store"


def test_a_form_is_refused_past_its_own_smaller_limit(hub: Hub, client: TestClient) -> None:
    signed_in(hub, client, Role.CASEWORKER)
    form = client.post(
        "/participants",
        data={"pnr": "1" * (MAX_FORM_BYTES + 1)},
        headers=OWN,
    )
    assert form.status_code == 422 and "too large" in form.text


@pytest.mark.parametrize("path", ["/log", "/log/sample", "/extract", "/participants"])
def test_forms_are_not_read_before_the_user_is_known(client: TestClient, path: str) -> None:
    # Nobody signed in: 401 (the sign-in form), not a complaint about the form's content.
    answer = client.post(path, content=b"\xff", headers={"content-type": "text/plain"})
    assert answer.status_code == 401


def test_an_unreachable_database_is_a_503_that_names_nothing_of_it(
    hub: Hub, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.db, "url", "postgresql+psycopg://evi:S3cret@db.kommun.local/evi")

    def unreachable() -> None:
        from hub.errors import StorageError

        raise StorageError(
            "cannot reach the database at postgresql+psycopg://evi:***@db.kommun.local/evi: "
            "connection refused"
        )

    monkeypatch.setattr(hub.db, "check_connection", unreachable)
    caplog.set_level(logging.ERROR, logger="hub.web.errors")
    with web_client(hub) as client:
        health = client.get("/healthz")  # anyone may ask
    assert health.status_code == 503
    assert health.json() == {"detail": "the database is not available; the server's log says why"}
    assert any("db.kommun.local" in r.getMessage() for r in caplog.records)
    assert not any("S3cret" in r.getMessage() for r in caplog.records)


def test_a_page_while_the_database_is_unavailable_says_so_not_that_the_server_failed(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a 503 page opened with the 500 text ("Något gick fel på servern…"), as did
    any status without a lead of its own (found by the web fuzz walk)."""
    token = token_for(hub, "anna.af", Role.CASEWORKER, party="af")
    with web_client(hub) as client:
        client.post("/login", data={"token": token})

        def unavailable(*_args: object, **_kw: object) -> None:
            from hub.errors import StorageError

            raise StorageError("cannot reach the database at sqlite:///x: disk I/O error")

        monkeypatch.setattr(hub.db, "session", unavailable)
        page = client.get("/", headers={"Accept-Language": "sv"})
        english = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == english.status_code == 503
    assert "Tjänsten kan inte svara just nu. Försök igen om en stund." in page.text
    assert "Något gick fel på servern" not in page.text and "sqlite" not in page.text
    assert "The service cannot answer right now; try again in a while." in english.text


LINKED_REPORTS = [
    ("/api/log/entries?decision=deny&limit=1", Role.PRIVACY_OFFICER),
    ("/api/log/sample?size=1", Role.PRIVACY_OFFICER),
    ("/log?decision=deny", Role.PRIVACY_OFFICER),
    ("/stats?from=2025-04-01&to=2025-06-30", Role.STEERING_GROUP),
    ("/stats.csv?from=2025-04-01&to=2025-06-30", Role.STEERING_GROUP),
    ("/api/stats?from=2025-04-01&to=2025-06-30", Role.STEERING_GROUP),
    ("/api/log/checkpoint", Role.PRIVACY_OFFICER),  # the API, even without a query
]


@pytest.mark.parametrize("elsewhere", [SAME_SITE, CROSS_SITE], ids=["same-site", "cross-site"])
@pytest.mark.parametrize(("url", "role"), LINKED_REPORTS, ids=[u for u, _ in LINKED_REPORTS])
def test_a_link_from_elsewhere_with_a_query_or_to_the_api_does_nothing(
    hub: Hub, client: TestClient, elsewhere: dict[str, str], url: str, role: Role
) -> None:
    # A link on an intranet host carries the session cookie (same site): it must not run a
    # logged search or report as the signed-in user.
    signed_in(hub, client, role)
    before = len(ledger(hub.db))
    refused = client.get(url, headers=elsewhere)
    assert refused.status_code == 403
    if url.startswith("/api/"):
        assert refused.json()["detail"].startswith("refused: a link from another ")
    else:
        assert "This was sent from another site; it was not done." in refused.text
    assert len(ledger(hub.db)) == before  # no ledger_search, no gate decision


@pytest.mark.parametrize(
    ("url", "role"),
    [("/log", Role.PRIVACY_OFFICER), ("/stats", Role.STEERING_GROUP), ("/", Role.CASEWORKER)],
)
def test_a_link_from_elsewhere_to_a_page_without_a_query_opens_it(
    hub: Hub, client: TestClient, url: str, role: Role
) -> None:
    signed_in(hub, client, role)
    before = len(ledger(hub.db))
    assert client.get(url, headers=SAME_SITE).status_code == 200
    assert client.get(url, headers=CROSS_SITE).status_code == 200
    assert len(ledger(hub.db)) == before


def test_bookmarks_own_pages_and_programs_keep_their_queries(hub: Hub, client: TestClient) -> None:
    signed_in(hub, client, Role.PRIVACY_OFFICER)
    search = "/api/log/entries?decision=deny&limit=1"
    bookmarked = {**OWN, "sec-fetch-site": "none"}  # typed, bookmarked, opened from a mail
    assert client.get(search, headers=bookmarked).status_code == 200
    assert client.get(search, headers=OWN).status_code == 200  # from the hub's own pages
    program = TestClient(client.app, base_url="https://testserver")  # no cookie, no Sec-Fetch
    token = token_for(hub, "dso.script", Role.PRIVACY_OFFICER, party="kommun")
    with program:
        assert program.get(search, headers=bearer(token)).status_code == 200
    assert len([e for e in ledger(hub.db) if e["action"] == "ledger_search"]) == 3
