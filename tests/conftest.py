"""Shared fixtures.

* ``evi_home``: an empty ``$EVI_HOME`` for the test, settings cache cleared.
* ``db_url``: parametrised over SQLite and (when ``EVI_TEST_POSTGRES_URL`` is set)
  PostgreSQL, each test in a schema of its own. Tests on PostgreSQL carry the
  ``postgres`` marker; with ``CI=true`` a skipped PostgreSQL test fails the run, and so
  does a skipped browser test (``browser`` marker, tests/browser).
* ``database``: a :class:`hub.store.db.Database` with every table created.
* ``hub``: an opened :class:`hub.context.Hub` on that database, keys in ``evi_home``.
* ``cli``: runs ``evi ARGS`` in-process and returns ``(exit_code, stdout, stderr)``.
* ``failed_home``: the demo's small caseload after a night in which fk refused every push.
* ``only_built_in_plugins`` (autouse): plugin loading sees no ``evi`` entry points, so a
  third-party plugin installed next to the hub does not change the tests; a test that
  wants the installed ones asks for ``installed_entry_points``, and a test may replace
  ``hub.plugins.plugin_entry_points`` with fakes of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from pg_support import PG_ENV, make_pg_schema_url
from sync_support import POPULATION, SEED, knobs

import hub.plugins as plugin_loading
import hub.store.tables
from hub.context import Hub, open_hub
from hub.demo.run import demo_sandboxes
from hub.settings import get_settings
from hub.store.base import Base
from hub.store.db import Database
from hub.store.migrate import stamp_head

DATA = Path(__file__).parent / "data"


# -- plugins: the built-in ones only, whatever else is installed ---------------------------


@pytest.fixture
def installed_entry_points() -> None:
    """Ask for this to let plugin loading see the ``evi`` entry points really installed."""


@pytest.fixture(autouse=True)
def only_built_in_plugins(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "installed_entry_points" not in request.fixturenames:
        monkeypatch.setattr(plugin_loading, "plugin_entry_points", lambda: [])


# -- PostgreSQL: one schema per test ------------------------------------------------------


def _pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = _pg_base_url()
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    return url


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'evi.db'}"
        return
    base = _pg_base_url()
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, drop = make_pg_schema_url(base)
    try:
        yield url
    finally:
        drop()


# -- environment, database, hub --------------------------------------------------------


@pytest.fixture
def evi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    for key in list(os.environ):
        if key.startswith("EVI_") and key not in (PG_ENV, "EVI_PLUGINS"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EVI_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    Base.metadata.create_all(db.engine)
    with db.engine.begin() as connection:
        stamp_head(connection)  # as `evi db upgrade` leaves it
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def hub(evi_home: Path, database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    monkeypatch.setenv("EVI_DATABASE_URL", database.url)
    get_settings.cache_clear()
    opened = Hub(settings=get_settings(), db=database)
    yield opened


# -- the CLI, in-process ---------------------------------------------------------------


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    from hub.cli import run

    def invoke(*args: str) -> CliResult:
        get_settings.cache_clear()
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


# -- a home with dead letters (the administrator's web tests) -----------------------------


@pytest.fixture
def failed_home(cli, evi_home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """The demo's caseload after a night in which fk refused every push (dead letters)."""
    monkeypatch.setenv("EVI_DATABASE_URL", db_url)
    monkeypatch.setenv("EVI_SYNC__MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    setup = cli("demo", "--setup-only", "--seed", str(SEED), "--population", str(POPULATION))
    assert setup.code == 0, setup.err
    assert cli("sync", "--sandbox", "--queue-only").code == 0
    hub = open_hub(get_settings())
    knobs(demo_sandboxes(hub)["fk"], fail_rate=1.0)
    assert cli("sync", "--sandbox", "--connector", "fk").code == 1
    knobs(demo_sandboxes(hub)["fk"], fail_rate=0.0)
    yield hub
    hub.close()


# -- CI: PostgreSQL and browser tests must run ------------------------------------------

# marker -> what to do so those tests run
MUST_RUN_IN_CI = {
    "postgres": f"set {PG_ENV}",
    "browser": "install Chromium and ChromeDriver, and axe-core named by EVI_TEST_AXE "
    "(.ci/run does both)",
}
_skipped: dict[str, list[str]] = {marker: [] for marker in MUST_RUN_IN_CI}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        for marker, skipped in _skipped.items():
            if marker in report.keywords:
                skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for marker, skipped in _skipped.items():
        if not skipped:
            continue
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write("\n")  # after the progress line, however the tests were run
            reporter.write_line(
                f"CI=true but {len(skipped)} {marker} test(s) were skipped "
                f"(first: {skipped[0]}); {MUST_RUN_IN_CI[marker]}",
                red=True,
            )
