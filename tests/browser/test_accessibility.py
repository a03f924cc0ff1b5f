"""Every page passes axe-core's WCAG 2.1 A and AA rules (and its best practices).

Swedish public bodies must meet WCAG 2.1 AA on their digital services, intranets included
(lagen om tillgänglighet till digital offentlig service, via EN 301 549). axe-core finds
what a machine can (labels, names, contrast, table headers, landmarks, language); what it
cannot (e.g. whether a text makes sense) still needs a person.

Each test signs in with the role that sees the pages, fills them as the user would so
results and messages are shown too, and checks each state the user can reach.
"""

from __future__ import annotations

from typing import Any

from casework_support import PNR
from selenium.webdriver.common.by import By

from hub.context import Hub
from hub.web.users import Role
from tests.browser.conftest import Page, Users

RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def violations(page: Page, axe_script: str) -> list[str]:
    """axe-core's findings on the page shown, one line each: rule, impact, where."""
    page.driver.execute_script(axe_script)
    found: Any = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: arguments[0]})"
        ".then(r => done(r.violations), e => done(String(e)));",
        RULES,
    )
    assert isinstance(found, list), f"axe-core failed: {found}"
    return [
        f"{page.path()}: {v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in found
    ]


def check(page: Page, axe_script: str, found: list[str]) -> None:
    found.extend(violations(page, axe_script))


def test_the_sign_in_and_error_pages(page: Page, axe_script: str, user: Users) -> None:
    found: list[str] = []
    page.open("/login")
    check(page, axe_script, found)
    page.sign_in("not-a-token")  # the refusal message
    check(page, axe_script, found)
    page.sign_in(user("anna.af", Role.CASEWORKER, party="af"))
    check(page, axe_script, found)  # the start page
    page.open("/admin")  # 403: not for a caseworker
    check(page, axe_script, found)
    page.open("/no-such-page")
    check(page, axe_script, found)
    assert found == []


def test_the_caseworkers_pages(caseload: Hub, page: Page, axe_script: str, user: Users) -> None:
    found: list[str] = []
    page.sign_in(user("anna.af", Role.CASEWORKER, party="af"))
    page.open("/participants")
    check(page, axe_script, found)
    page.fill("pnr", PNR)
    page.press("Look up")
    assert "Records (3" in page.text()
    check(page, axe_script, found)
    assert found == []


def test_the_privacy_officers_pages(
    caseload: Hub, page: Page, axe_script: str, user: Users
) -> None:
    found: list[str] = []
    page.sign_in(user("dora.dso", Role.PRIVACY_OFFICER, party="kommun"))
    page.open("/log")
    check(page, axe_script, found)
    page.fill("pnr", PNR)
    page.press("Search")
    check(page, axe_script, found)  # the entries table
    page.driver.find_element(By.TAG_NAME, "summary").click()  # open "Random sample"
    page.fill("size", "2")
    page.press("Draw")
    check(page, axe_script, found)  # the sample
    page.open("/log/checkpoint")
    page.press("Verify the whole log")
    check(page, axe_script, found)
    page.open("/extract")
    check(page, axe_script, found)
    page.fill("pnr", PNR)
    page.press("Make the extract")
    check(page, axe_script, found)
    assert found == []


def test_the_steering_groups_pages(caseload: Hub, page: Page, axe_script: str, user: Users) -> None:
    found: list[str] = []
    page.sign_in(user("stina.steering", Role.STEERING_GROUP))
    page.open("/stats")
    check(page, axe_script, found)
    page.open("/stats?from=2025-01-01&to=2025-12-31")
    assert "2025-01-01 to 2025-12-31" in page.text()
    check(page, axe_script, found)
    page.open("/stats?from=2025-12-31&to=2025-01-01")  # a period that ends before it starts
    check(page, axe_script, found)
    assert found == []


def test_the_administrators_page_with_dead_letters(
    failed_home: Hub, page: Page, axe_script: str, user: Users
) -> None:
    found: list[str] = []
    page.sign_in(user("ola.admin", Role.ADMINISTRATOR, party="kommun"))
    page.open("/admin")
    assert "Retry all" in page.text()
    check(page, axe_script, found)
    assert found == []
