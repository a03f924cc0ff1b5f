"""`evi users …`: a token is printed once and stored only as its digest; `list` never
shows one; disabling a user or issuing a new token makes the old token useless, and
enabling a disabled user gives them a new one: the old token stays useless."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from test_consent_support import ledger
from web_support import web_client

from hub.context import Hub
from hub.ledger.service import cli_actor
from hub.store.tables.users import WebUserRow
from hub.web.users import authenticate, list_users


@pytest.fixture
def migrated(hub: Hub) -> Hub:
    """The test's hub, its tables created (as `evi db upgrade` would)."""
    return hub


def add(cli: Any, name: str = "anna.af", party: str = "af", role: str = "caseworker") -> str:
    result = cli("users", "add", name, "--party", party, "--role", role)
    assert result.code == 0, result.err
    assert "cannot be shown again" in result.err
    return result.out.strip()


def test_add_prints_a_token_once_that_signs_the_user_in(migrated: Hub, cli: Any) -> None:
    token = add(cli)
    assert len(token) >= 43 and "\n" not in token
    user = authenticate(migrated, token)
    assert user is not None
    assert (user.name, user.party, user.role.value) == ("anna.af", "af", "caseworker")


def test_list_shows_users_but_never_a_token_or_its_digest(migrated: Hub, cli: Any) -> None:
    tokens = [add(cli), add(cli, "dso.kommun", "kommun", "privacy_officer")]
    table = cli("users", "list")
    as_json = cli("users", "list", "--json")
    assert table.code == as_json.code == 0
    assert "anna.af" in table.out and "privacy_officer" in table.out and "active" in table.out
    for token in tokens:
        for output in (table.out, table.err, as_json.out, as_json.err):
            assert token not in output
            assert hashlib.sha256(token.encode()).hexdigest() not in output
    assert '"token' not in as_json.out


def test_the_database_holds_only_the_digest(migrated: Hub, cli: Any) -> None:
    token = add(cli)
    with migrated.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_sha256 FROM web_user")).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() != token


def test_disable_makes_the_token_useless_and_list_says_so(migrated: Hub, cli: Any) -> None:
    token = add(cli)
    result = cli("users", "disable", "anna.af")
    assert result.code == 0, result.err
    assert authenticate(migrated, token) is None
    assert "disabled" in cli("users", "list").out
    refused = cli("users", "token", "anna.af")
    assert refused.code == 2 and "disabled" in refused.err
    assert "evi users enable anna.af" in refused.err and refused.out == ""


def test_a_new_token_replaces_the_old_one(migrated: Hub, cli: Any) -> None:
    old = add(cli)
    result = cli("users", "token", "anna.af")
    assert result.code == 0, result.err
    new = result.out.strip()
    assert "cannot be shown again" in result.err
    assert new != old
    assert authenticate(migrated, old) is None
    assert authenticate(migrated, new) is not None


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("add", "Anna AF", "--party", "af", "--role", "caseworker"), 2, "user name"),
        (
            ("add", "anna", "--party", "skatteverket", "--role", "caseworker"),
            2,
            "--party is one of",
        ),
        (("add", "anna", "--party", "af", "--role", "admin"), 2, "caseworker"),
        (("disable", "nobody"), 1, "evi users list"),
        (("token", "nobody"), 1, "evi users list"),
        (("enable", "nobody"), 1, "evi users list"),
        # a user's name is the actor of their every log entry: never an identity number
        (("add", "18900101-9802", "--party", "af", "--role", "caseworker"), 2, "no identity"),
        (("add", "anna18900101-9802", "--party", "af", "--role", "caseworker"), 2, "user name"),
        (("enable", "189001019802"), 1, "there is no user by that name; see `evi users list`"),
        (("disable", "9001019802"), 1, "there is no user by that name"),
    ],
)
def test_bad_input_says_what_to_fix(
    migrated: Hub, cli: Any, args: tuple[str, ...], code: int, says: str
) -> None:
    result = cli("users", *args)
    assert result.code == code
    assert says in result.err
    assert "900101" not in result.err  # an official test number (tests/data)
    assert cli("users", "list", "--json").out.strip() == "[]"


def test_a_taken_name_is_refused(migrated: Hub, cli: Any) -> None:
    add(cli)
    result = cli("users", "add", "anna.af", "--party", "fk", "--role", "caseworker")
    assert result.code == 2
    assert "already exists" in result.err and "evi users token anna.af" in result.err


def test_a_taken_name_of_a_disabled_user_says_to_enable_them(migrated: Hub, cli: Any) -> None:
    add(cli)
    assert cli("users", "disable", "anna.af").code == 0
    result = cli("users", "add", "anna.af", "--party", "af", "--role", "caseworker")
    assert result.code == 2
    assert "already exists" in result.err and "evi users enable anna.af" in result.err


def test_enable_lets_a_disabled_user_sign_in_again_with_a_new_token_only(
    migrated: Hub, cli: Any
) -> None:
    old = add(cli)
    assert cli("users", "disable", "anna.af").code == 0
    result = cli("users", "enable", "anna.af")
    assert result.code == 0, result.err
    new = result.out.strip()
    assert len(new) >= 43 and "\n" not in new and new != old
    assert "cannot be shown again" in result.err and new not in result.err
    assert authenticate(migrated, old) is None
    assert authenticate(migrated, new) is not None
    [anna] = json.loads(cli("users", "list", "--json").out)
    assert anna["disabled_at"] is None
    assert "active" in cli("users", "list").out
    with web_client(migrated) as client:  # the sign-in form: the old token, then the new
        refused = client.post("/login", data={"token": old}, follow_redirects=False)
        assert refused.status_code == 401 and "set-cookie" not in refused.headers
        signed_in = client.post("/login", data={"token": new}, follow_redirects=False)
        assert signed_in.status_code == 303
        assert client.get("/").status_code == 200


def test_enabling_an_active_user_is_refused(migrated: Hub, cli: Any) -> None:
    token = add(cli)
    result = cli("users", "enable", "anna.af")
    assert result.code == 2 and result.out == ""
    assert "already active" in result.err and "evi users token anna.af" in result.err
    assert authenticate(migrated, token) is not None  # nothing changed


def test_users_before_db_upgrade_says_to_run_it(evi_home: Path, cli: Any) -> None:
    result = cli("users", "list")
    assert result.code == 1
    assert "evi db upgrade" in result.err


def _database_at(revision: str, evi_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub's database, migrated only as far as ``revision``."""
    from hub.settings import get_settings
    from hub.store import migrate
    from hub.store.db import Database

    url = f"sqlite:///{evi_home / 'old.db'}"
    monkeypatch.setenv("EVI_DATABASE_URL", url)
    get_settings.cache_clear()
    db = Database(url)
    migrate.upgrade(db, revision)
    db.dispose()


def test_a_database_from_before_web_users_says_to_upgrade(
    evi_home: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _database_at("0001", evi_home, monkeypatch)
    result = cli("users", "add", "anna", "--party", "af", "--role", "caseworker")
    assert result.code == 1
    assert "evi db upgrade" in result.err and result.out == ""
    assert cli("db", "upgrade").code == 0
    assert cli("users", "add", "anna", "--party", "af", "--role", "caseworker").code == 0


def test_every_change_of_access_is_in_the_transfer_log(migrated: Hub, cli: Any) -> None:
    token = add(cli)
    assert cli("users", "token", "anna.af", "--actor", "admin.kommun").code == 0
    assert cli("users", "disable", "anna.af", "--actor", "admin.kommun").code == 0
    assert cli("users", "disable", "anna.af").code == 0  # already disabled: nothing new
    enabled = cli("users", "enable", "anna.af", "--actor", "admin.kommun")
    assert enabled.code == 0
    assert cli("users", "enable", "anna.af").code == 2  # already active: nothing new

    changes = [e for e in ledger(migrated.db) if e["action"] == "access_changed"]
    by = f"admin.kommun via {cli_actor()}"
    assert [(e["reason"], e["actor"]) for e in changes] == [
        ("added: web user anna.af (af, caseworker)", changes[0]["actor"]),
        ("new token: web user anna.af (af, caseworker)", by),
        ("disabled: web user anna.af (af, caseworker)", by),
        ("enabled with a new token: web user anna.af (af, caseworker)", by),
    ]
    assert changes[0]["actor"] == cli_actor()  # who ran it; --actor: on whose behalf
    assert {e["role"] for e in changes} == {"administrator"}
    logged = str(ledger(migrated.db))
    assert token not in logged and enabled.out.strip() not in logged
    assert cli("log", "verify").code == 0


def test_a_database_from_before_last_use_says_to_upgrade(
    evi_home: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _database_at("0003", evi_home, monkeypatch)
    result = cli("users", "list")
    assert result.code == 1 and "revision 0003" in result.err and "evi db upgrade" in result.err
    assert cli("db", "upgrade").code == 0
    assert cli("users", "list").code == 0


def test_list_says_when_each_user_last_signed_in_or_used_their_token(
    migrated: Hub, cli: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from hub.web.page_sessions import open_session
    from hub.web.users import LAST_USED_STEP

    api, page = add(cli), add(cli, "dso.kommun", "kommun", "privacy_officer")
    add(cli, "idle.fk", "fk", "caseworker")
    before = datetime.now(UTC)
    assert authenticate(migrated, api) is not None  # an API request
    assert open_session(migrated, page) is not None  # a sign-in on the pages
    after = datetime.now(UTC)
    users = {u["name"]: u for u in json.loads(cli("users", "list", "--json").out)}
    for name in ("anna.af", "dso.kommun"):
        assert before <= datetime.fromisoformat(users[name]["last_used_at"]) <= after
    assert users["idle.fk"]["last_used_at"] is None
    table = cli("users", "list").out
    assert "LAST USED" in table and "never" in next(
        line for line in table.splitlines() if "idle" in line
    )
    # within the hour a request does not write again; after it, it does
    recent = datetime.now(UTC) - LAST_USED_STEP / 2
    stale = datetime.now(UTC) - LAST_USED_STEP - timedelta(minutes=1)
    for when, changed in ((recent, False), (stale, True)):
        with migrated.db.session() as session:
            session.execute(
                update(WebUserRow).where(WebUserRow.name == "anna.af").values(last_used_at=when)
            )
        asked = datetime.now(UTC)
        authenticate(migrated, api)
        [anna] = [u for u in list_users(migrated) if u.name == "anna.af"]
        assert anna.last_used_at is not None
        assert (anna.last_used_at >= asked) == changed, (when, anna.last_used_at)
