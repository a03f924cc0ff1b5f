"""The pages in a real browser: what each user does on them, and what only a browser enforces.

Each test drives headless Chromium through the hub's own forms, as a person would, against
the app served by uvicorn (see conftest.py).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from casework_support import PNR
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from hub.connector.service import connector_status
from hub.context import Hub
from hub.demo.sandboxes import configure_for_sandboxes, sandbox_targets
from hub.stats.csvfile import HEADER
from hub.web.auth import SESSION_COOKIE
from hub.web.users import Role
from tests.browser.conftest import Page, Served, Users


def test_signing_in_opens_the_styled_pages_with_a_cookie_no_script_can_read(
    page: Page, user: Users
) -> None:
    token = user("dora.dso", Role.PRIVACY_OFFICER, party="kommun")
    page.open("/log")
    assert page.path() == "/log" and "Sign in" in page.text()  # the sign-in page, in place
    page.console_errors()  # the 401 of that page; what follows must load without any

    page.sign_in(token)

    assert page.path() == "/"
    assert "Signed in as dora.dso" in page.text()
    # The stylesheet is the page's own file, which the Content-Security-Policy allows:
    # the header bar gets its colour, and the browser reports no refused resource.
    header = page.driver.find_element(By.TAG_NAME, "header")
    assert header.value_of_css_property("background-color") == "rgba(20, 54, 93, 1)"
    assert page.console_errors() == []
    (cookie,) = page.driver.get_cookies()
    assert cookie["name"] == SESSION_COOKIE and cookie["value"] != token
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert page.driver.execute_script("return document.cookie") == ""
    assert token not in page.driver.current_url

    page.follow("Transfer log")
    assert page.path() == "/log" and "Transfer log" in page.text()


def test_a_browser_set_to_swedish_gets_the_pages_in_swedish(
    caseload: Hub, swedish_page: Page, user: Users
) -> None:
    page = swedish_page
    page.open("/participants")
    assert page.driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "sv"
    assert "Logga in för att se sidan." in page.text()
    page.console_errors()  # that page's 401; what follows must load without any
    page.fill("token", user("anna.af", Role.CASEWORKER, party="af"))
    page.press("Logga in")
    page.follow("Personöversikt")
    page.fill("pnr", PNR)
    page.press("Slå upp")
    shown = page.text()
    assert "Uppgifter (3, nyaste först)" in shown
    assert "öppet, remiss från kommunen den 2025-03-01" in shown  # parties named in Swedish
    assert "aktivitetsstöd (Arbetsförmedlingen, från 2025-04-01)" in shown
    kinds = [row.find_elements(By.TAG_NAME, "td")[2].text for row in _rows(page)]
    assert sorted(kinds) == ["ersättning", "ersättning", "remiss"]
    assert page.console_errors() == []


def _rows(page: Page) -> list[WebElement]:
    return list(page.driver.find_elements(By.CSS_SELECTOR, "main table tbody tr"))


def test_a_wrong_token_is_refused_on_the_form(page: Page, user: Users) -> None:
    user("dora.dso", Role.PRIVACY_OFFICER)
    page.sign_in("not-a-token")
    assert "Sign in" in page.text() and page.driver.get_cookies() == []
    page.open("/log")
    assert "Transfer log" not in page.text()


def test_a_caseworker_looks_a_person_up_and_signing_out_leaves_nothing_behind(
    caseload: Hub, page: Page, user: Users
) -> None:
    page.sign_in(user("anna.af", Role.CASEWORKER, party="af"))
    page.follow("Person status")
    field = page.driver.find_element(By.NAME, "pnr")
    assert field.get_attribute("type") == "password"  # not kept in the form's history
    page.fill("pnr", PNR)
    page.press("Look up")

    shown = page.text()
    pseudonym = caseload.keys.pseudonym(PNR)
    assert f"Participant {pseudonym}" in shown
    assert "open, referred 2025-03-01 by kommun" in shown
    assert "Records (3, newest first)" in shown
    rows = page.driver.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    assert sorted(r.find_elements(By.TAG_NAME, "td")[1].text for r in rows) == [
        "af",
        "fk",
        "kommun",
    ]
    assert PNR not in shown and PNR not in page.driver.current_url
    assert PNR not in page.driver.page_source

    page.press("Sign out")
    assert page.path() == "/login" and page.driver.get_cookies() == []
    page.driver.back()  # the pages are no-store: going back asks the server again
    assert pseudonym not in page.text() and "Records" not in page.text()
    page.open("/participants")
    assert "Sign in" in page.text()


def test_a_privacy_officer_finds_a_persons_entries_draws_a_sample_and_verifies_the_log(
    caseload: Hub, page: Page, user: Users
) -> None:
    page.sign_in(user("dora.dso", Role.PRIVACY_OFFICER, party="kommun"))
    page.open("/log")
    page.fill("pnr", PNR)
    page.press("Search")
    pseudonym = caseload.keys.pseudonym(PNR)
    assert f"about {pseudonym}" in page.text()
    actions = [
        row.find_elements(By.TAG_NAME, "td")[2].text
        for row in page.driver.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    ]
    assert actions == ["consent_registered"]
    assert PNR not in page.driver.page_source

    page.driver.find_element(By.TAG_NAME, "summary").click()  # open "Random sample"
    page.fill("size", "2")
    page.fill("seed", "7")
    page.press("Draw")
    assert "2 of " in page.text() and "drawn at random with seed 7" in page.text()

    page.open("/log/checkpoint")
    page.press("Verify the whole log")
    status = page.driver.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert status.startswith("The log verifies:")


@pytest.fixture
def connectors(hub: Hub) -> Hub:
    configure_for_sandboxes(hub, sandbox_targets(hub, seed=7, urls={}, population=10))
    return hub


def test_an_administrator_disables_and_enables_a_connector_with_the_buttons(
    connectors: Hub, page: Page, user: Users
) -> None:
    page.sign_in(user("ola.admin", Role.ADMINISTRATOR, party="kommun"))
    page.follow("Administration")
    row = page.driver.find_element(By.XPATH, "//tbody/tr[th='af']")
    page.submit(row.find_element(By.XPATH, ".//button[.='Disable']"))
    assert "af: disabled" in page.text()
    assert connector_status(connectors, "af").enabled is False

    row = page.driver.find_element(By.XPATH, "//tbody/tr[th='af']")
    page.submit(row.find_element(By.XPATH, ".//button[.='Enable']"))
    assert "af: enabled" in page.text()
    assert connector_status(connectors, "af").enabled is True


@pytest.fixture(params=["another site", "another origin of the same site"])
def elsewhere(request: pytest.FixtureRequest, site: Served) -> Iterator[str]:
    """A page elsewhere with a form that posts to the hub's "disable af" button, as a
    forged link in an e-mail would: on another site (``localhost`` is not the same site as
    ``127.0.0.1``), or on another origin of the same site (another port of 127.0.0.1, as
    another host of the municipality's domain would be), where the ``SameSite=Strict``
    cookie does go along."""

    def lure(request: Request) -> HTMLResponse:
        return HTMLResponse(
            f'<form method="post" action="{site.base}/admin/connectors/af/disable">'
            '<button type="submit">Read the newsletter</button></form>'
        )

    with Served(Starlette(routes=[Route("/", lure)])) as served:
        if request.param == "another site":
            yield served.base.replace("127.0.0.1", "localhost")
        else:
            yield served.base


def test_a_form_posted_from_elsewhere_does_not_act_for_the_signed_in_user(
    connectors: Hub, page: Page, user: Users, elsewhere: str
) -> None:
    page.sign_in(user("ola.admin", Role.ADMINISTRATOR, party="kommun"))
    assert "Signed in as ola.admin" in page.text()

    page.driver.get(elsewhere + "/")
    page.press("Read the newsletter")

    # The browser says where the form came from (Sec-Fetch-Site), and the hub refuses it.
    assert "This was sent from another site; it was not done." in page.text()
    assert connector_status(connectors, "af").enabled is True
    page.open("/admin")
    assert "Administration" in page.text()  # still signed in on the hub's own site
    page.submit(page.driver.find_element(By.CSS_SELECTOR, "button[aria-label='Disable af']"))
    assert "af: disabled" in page.text()  # the hub's own button still works
    assert connector_status(connectors, "af").enabled is False


def test_the_steering_group_picks_a_period_and_downloads_the_report_as_csv(
    caseload: Hub, page: Page, user: Users, downloads: Path
) -> None:
    page.sign_in(user("stina.steering", Role.STEERING_GROUP, party="team"))
    page.follow("Statistics")
    page.fill_date("from", date(2025, 1, 1))
    page.fill_date("to", date(2025, 12, 31))
    page.press("Show")

    assert page.path() == "/stats?from=2025-01-01&to=2025-12-31"
    assert "2025-01-01 to 2025-12-31" in page.text()
    assert page.driver.find_elements(By.CSS_SELECTOR, "table.stats")
    assert page.console_errors() == []

    page.driver.find_element(By.PARTIAL_LINK_TEXT, "Download as CSV").click()
    saved = downloads / "evi-uppfoljning-2025-01-01-2025-12-31.csv"
    WebDriverWait(page.driver, 30).until(lambda _: saved.exists())
    rows = list(csv.reader(saved.read_text(encoding="utf-8").splitlines()))
    assert rows[0][:2] == ["period", "2025-01-01 to 2025-12-31"]
    assert list(HEADER) in rows and all(len(row) == len(HEADER) for row in rows)
