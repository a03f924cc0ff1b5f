"""`evi db harden`: on PostgreSQL the ledger is append-only inside the database itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from hub.context import Hub
from hub.ledger import service
from hub.ledger.checkpoint import write_checkpoint
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.writer import append_many
from hub.plugins import get_plugin_manager


def events(n: int) -> list[LedgerEvent]:
    return [LedgerEvent(action=Action.VIEW, actor="user:a", participant="p-" + "1" * 32)] * n


@pytest.fixture
def app_role(hub: Hub) -> Iterator[str]:
    if hub.db.dialect != "postgresql":
        pytest.skip("roles and grants are PostgreSQL's")
    role = "evi_app_" + uuid.uuid4().hex[:8]
    with hub.db.engine.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        conn.exec_driver_sql(f"CREATE ROLE {role} NOLOGIN")
        # what a deployment grants its application role before hardening
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.exec_driver_sql(f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
        conn.exec_driver_sql(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}')
    try:
        yield role
    finally:
        with hub.db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")


def as_role(session: Session, role: str) -> Session:
    session.execute(text(f"SET LOCAL ROLE {role}"))
    return session


def refused(hub: Hub, role: str | None, statement: str) -> str:
    with pytest.raises(DBAPIError) as err, hub.db.session() as session:
        if role:
            as_role(session, role)
        session.execute(text(statement))
    return str(err.value.orig)


def test_hardened_ledger_takes_appends_but_refuses_changes(hub: Hub, app_role: str, cli) -> None:
    with hub.db.session() as session:
        append_many(session, events(3))
    result = cli("db", "harden", "--role", app_role)
    assert result.code == 0, result.err
    assert cli("db", "harden", "--role", app_role).code == 0  # repeatable

    with hub.db.session() as session:  # the application still writes and checkpoints
        as_role(session, app_role)
        assert append_many(session, events(2)) == range(3, 5)
        write_checkpoint(session, hub.settings, get_plugin_manager())

    for statement in (
        "UPDATE ledger_entry SET actor = 'x' WHERE seq = 1",
        "DELETE FROM ledger_entry WHERE seq = 1",
        "TRUNCATE ledger_entry",
        "UPDATE ledger_tile SET hashes = hashes",
        "DELETE FROM ledger_checkpoint",
    ):
        assert "permission denied" in refused(hub, app_role, statement)
    # the guards bind the owner too
    assert "only a purge may change an entry" in refused(
        hub, None, "UPDATE ledger_entry SET canonical = NULL, purged_at = now() WHERE seq = 1"
    )
    assert "append-only" in refused(hub, None, "DELETE FROM ledger_entry WHERE seq = 1")
    assert "append-only" in refused(hub, None, "UPDATE ledger_checkpoint SET tree_size = 1")
    assert "may only grow" in refused(hub, None, "UPDATE ledger_head SET size = 1")

    # retention still works, run as the owner
    with hub.db.session() as session:
        session.execute(text("ALTER TABLE ledger_entry DISABLE TRIGGER evi_append_only_update"))
        session.execute(text("UPDATE ledger_entry SET time = '2001-01-01+00' WHERE seq < 2"))
        session.execute(text("ALTER TABLE ledger_entry ENABLE TRIGGER evi_append_only_update"))
    from datetime import UTC, datetime

    purged = service.purge(hub, datetime(2002, 1, 1, tzinfo=UTC), "cli:test", confirmed=True)
    assert purged.purged == 2
    assert service.verify(hub).ok


def test_harden_names_an_unknown_role(hub: Hub, cli) -> None:
    result = cli("db", "harden", "--role", "no_such_role_here")
    assert result.code == 2
    if hub.db.dialect == "postgresql":
        assert "has no role 'no_such_role_here'" in result.err
    else:
        assert "is for PostgreSQL" in result.err


def test_harden_can_print_its_sql_for_a_dba(hub: Hub, cli) -> None:
    result = cli("db", "harden", "--role", "app", "--print")
    assert result.code == 0
    assert "REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entry" in result.out


def test_a_purge_run_as_the_application_role_says_to_run_it_as_the_owner(
    hub: Hub, app_role: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hub.db.session() as session:
        append_many(session, events(3))
        session.execute(text("UPDATE ledger_entry SET time = '2001-01-01+00' WHERE seq < 2"))
    assert cli("db", "harden", "--role", app_role).code == 0
    url = make_url(hub.db.url)
    options = f"{url.query['options']} -crole={app_role}"  # connect as the application role
    as_app = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    monkeypatch.setenv("EVI_DATABASE_URL", as_app)
    result = cli("log", "purge", "--before", "2002-01-01", "--yes")
    assert result.code == 1
    assert result.err.startswith("error: the database user in EVI_DATABASE_URL may not do this")
    assert "`evi log purge` connect as the database's owner" in result.err
    assert "internal error" not in result.err
    with hub.db.session() as session:  # nothing of the purge was kept
        kept = "SELECT count(*) FROM ledger_entry WHERE purged_at IS NULL"
        assert session.execute(text(kept)).scalar() == 3
