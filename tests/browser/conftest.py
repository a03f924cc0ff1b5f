"""Browser fixtures: the web app served by uvicorn on a free port, and headless Chromium.

The pages carry no script, so most of their behaviour is tested with Starlette's
TestClient (tests/unit/test_web_*.py). What only a real browser does is tested here: it
applies the Content-Security-Policy to the page's own stylesheet, keeps the session cookie
out of script's reach, refuses to send a SameSite=Strict cookie with a form posted from
another site, and walks the forms as a person would.

The browser is Debian's ``chromium`` driven through its ``chromium-driver`` by Selenium
(pure Python; the driver comes with the browser, so their versions always match and
nothing is downloaded). Set ``EVI_TEST_CHROMIUM`` and ``EVI_TEST_CHROMEDRIVER`` to use
other binaries. Without a browser the tests are skipped; with ``CI=true`` a skipped
browser test fails the run (tests/conftest.py), and ``.ci/run`` installs the two packages.

The accessibility tests run Deque's axe-core (the npm package's ``axe.min.js``, named by
``EVI_TEST_AXE``; ``.ci/run`` installs a pinned version) in the page.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from casework_support import register_caseload
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait
from test_consent_support import Clock

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.ledger import service as ledger
from hub.web.app import create_app
from hub.web.users import Role, add_user

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _binary(env: str, names: tuple[str, ...]) -> str | None:
    given = os.environ.get(env)
    if given:
        return given
    return next((found for name in names if (found := shutil.which(name))), None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite only: these tests are about the browser; the database variants run elsewhere."""
    yield f"sqlite:///{tmp_path / 'evi.db'}"


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser saves downloads (emptied by each test's :func:`page`)."""
    return tmp_path_factory.mktemp("downloads")


def start_chromium(downloads: Path, language: str) -> webdriver.Chrome:
    """Headless Chromium whose interface (and so its Accept-Language) is ``language``."""
    browser = _binary("EVI_TEST_CHROMIUM", BROWSERS)
    driver = _binary("EVI_TEST_CHROMEDRIVER", ("chromedriver",))
    if browser is None or driver is None:
        pytest.skip(
            "no Chromium and ChromeDriver found: install Debian's chromium and "
            "chromium-driver, or set EVI_TEST_CHROMIUM and EVI_TEST_CHROMEDRIVER"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-extensions",
        f"--lang={language}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "credentials_enable_service": False,  # no "save password?" over the token field
            "profile.password_manager_enabled": False,
            "intl.accept_languages": language,
        },
    )
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(30)
    return chrome


@pytest.fixture(scope="session")
def chromium(downloads: Path) -> Iterator[webdriver.Chrome]:
    """The browser of most tests: in English (its date fields take month/day/year)."""
    chrome = start_chromium(downloads, "en-US")
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def swedish_page(downloads: Path, site: Served) -> Iterator[Page]:
    """A tab of a browser set to Swedish, as the joint team's computers are."""
    chrome = start_chromium(downloads, "sv-SE")
    try:
        yield Page(chrome, site.base)
    finally:
        chrome.quit()


@pytest.fixture(scope="session")
def axe_script() -> str:
    """The source of axe-core's ``axe.min.js`` (from ``EVI_TEST_AXE``)."""
    given = os.environ.get("EVI_TEST_AXE")
    if not given or not Path(given).is_file():
        pytest.skip(
            "no axe-core: `npm install --prefix DIR axe-core` and set EVI_TEST_AXE to "
            "DIR/node_modules/axe-core/axe.min.js"
        )
    return Path(given).read_text(encoding="utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """An ASGI app served by uvicorn in a thread of this process, as `evi web serve` does."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.base = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", server_header=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        started = threading.Event()
        for _ in range(200):
            if self.server.started:
                started.set()
                break
            started.wait(0.05)
        assert self.server.started, f"uvicorn did not start on {self.base}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def site(hub: Hub) -> Iterator[Served]:
    """The hub's pages, served over loopback HTTP."""
    with Served(create_app(hub)) as served:
        yield served


@dataclass
class Page:
    """One browser tab on :func:`site`, started signed out."""

    driver: webdriver.Chrome
    base: str

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def path(self) -> str:
        current: str = self.driver.current_url
        assert current.startswith(self.base), current
        return current[len(self.base) :]

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def fill(self, name: str, value: str) -> None:
        field = self.driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)

    def fill_date(self, name: str, day: date) -> None:
        """Type a date into a date field as a person would (the browser's locale is en-US)."""
        self.driver.find_element(By.NAME, name).send_keys(day.strftime("%m%d%Y"))

    def press(self, label: str) -> None:
        """Click the button labelled ``label`` (there must be exactly one) and wait for the
        page its form leads to."""
        buttons = [b for b in self.driver.find_elements(By.TAG_NAME, "button") if b.text == label]
        assert len(buttons) == 1, f"{len(buttons)} buttons labelled {label!r} on {self.path()}"
        self.submit(buttons[0])

    def submit(self, button: WebElement) -> None:
        """Click a form's button (or a link) and wait until the next page has loaded.

        The mark set on this page's window is gone once another document shows; asking
        while the browser is between the two may fail, so the wait asks again."""
        self.driver.execute_script("window.eviPageBefore = true")
        button.click()
        WebDriverWait(self.driver, 30, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script(
                "return !window.eviPageBefore && document.readyState === 'complete'"
            )
        )

    def follow(self, link_text: str) -> None:
        """Follow the link with this text and wait for its page."""
        self.submit(self.driver.find_element(By.LINK_TEXT, link_text))

    def sign_in(self, token: str) -> None:
        self.open("/login")
        self.fill("token", token)
        self.press("Sign in")

    def console_errors(self) -> list[str]:
        return [str(e["message"]) for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def page(chromium: webdriver.Chrome, site: Served, downloads: Path) -> Iterator[Page]:
    for left in downloads.iterdir():
        left.unlink()
    chromium.delete_all_cookies()
    chromium.get_log("browser")  # drop what earlier tests left
    yield Page(chromium, site.base)
    chromium.delete_all_cookies()


Users = Callable[..., str]


@pytest.fixture
def caseload(hub: Hub) -> Hub:
    """One person consenting to kommun, af, fk and the team sharing referral and benefit
    facts, with records from each; another with records and no consent; a signed
    checkpoint, as every night's sync leaves."""
    register_caseload(ConsentService(hub, clock=Clock()), hub, "2099-01-01T00:00:00Z")
    ledger.new_checkpoint(hub)
    return hub


@pytest.fixture
def user(hub: Hub) -> Users:
    """Adds a web user and returns their token."""

    def make(name: str, role: Role, party: str = "team") -> str:
        return add_user(hub, name, party, role, actor="test").token

    return make
