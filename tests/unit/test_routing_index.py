"""Who referred a person is read from an index, not from every record kept about them.

Routing sends an intervention or closure to the party that referred the person. It read
that, once per run for each person met, from every stored record of theirs and each
referral's JSON body: a read that grew with the records kept, so a night's work for the
same records took twice the CPU after a year of nights (bench/year.py). Revision 0008
keeps each referral's ``referring_party`` beside it, under a partial index."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import event, select
from sync_support import sync_options

from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget
from hub.store import migrate
from hub.store.tables.sync import StoredRecord
from hub.sync.job import run_sync
from hub.sync.routing import RoutingCache


def _from_bodies(hub: Hub) -> dict[int, set[str]]:
    """Each person's referring parties as the stored referrals' bodies give them."""
    found: dict[int, set[str]] = defaultdict(set)
    with hub.db.session() as session:
        for record in session.scalars(select(StoredRecord)):
            party = record.body.get("referring_party") if record.kind == "referral" else None
            assert record.referring_party == party, (record.kind, record.source_id)
            if party is not None:
                found[record.participant_id].add(party)
    return dict(found)


def _routed(hub: Hub, people: set[int]) -> dict[int, set[str]]:
    cache = RoutingCache()
    with hub.db.session() as session:
        cache.preload(session, people)
    return {p: set(cache.referring_parties(p)) for p in people if cache.referring_parties(p)}


def test_each_referral_keeps_who_referred_and_an_upgrade_fills_it_in(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    referred = _from_bodies(demo)
    assert referred and any(len(parties) > 0 for parties in referred.values())
    with demo.db.session() as session:
        people = set(session.scalars(select(StoredRecord.participant_id)))
    assert _routed(demo, people) == referred
    # a database of the release before: the upgrade fills the column in from the bodies
    from alembic import command

    with demo.db.engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0007")
    assert migrate.upgrade(demo.db) == ("0007", migrate.HEAD)
    assert migrate.drift(demo.db) == []
    assert _from_bodies(demo) == referred
    assert _routed(demo, people) == referred


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_routing_reads_who_referred_from_the_index_alone(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    assert run_sync(demo, sync_options(targets, deliver=False)).exit_code == 0
    with demo.db.session() as session:
        people = set(session.scalars(select(StoredRecord.participant_id)))
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM record" in statement:
            seen.append((statement, parameters))

    event.listen(demo.db.engine, "before_cursor_execute", keep)
    try:
        _routed(demo, people)
    finally:
        event.remove(demo.db.engine, "before_cursor_execute", keep)
    [(statement, parameters)] = seen
    with demo.db.engine.connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING COVERING INDEX ix_record_referring_party" in details, details
