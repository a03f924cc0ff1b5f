"""A big city's caseload (bench/city.py, docs/benchmarks.md 'A big city'): what one night or
one look-up holds and asks of the database stays in proportion to the people, not worse.
"""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import pytest
from sqlalchemy import select
from test_consent_support import JAN, Clock, paper_submission, skatteverket_numbers

from hub.consent import snapshots
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.store.participants import participant_columns
from hub.store.tables.participant import ParticipantRow

PEOPLE = 300
CONSENTS = 4  # each person's consents over the years: three ended, one in force


def _caseload(hub: Hub) -> None:
    """``PEOPLE`` people with ``CONSENTS`` consents each, registered in bulk as staff do."""
    batch = []
    for number in skatteverket_numbers(PEOPLE):
        for year in range(CONSENTS):
            start = JAN - timedelta(days=365 * (CONSENTS - 1 - year))
            batch.append(
                paper_submission(
                    number,
                    parties=["kommun", "af", "fk", "region", "team"],
                    categories=["identity", "referral", "plan", "benefit", "health"],
                    purposes=["coordination", "evaluation"],
                    valid_from=start.isoformat(),
                    valid_until=(start + timedelta(days=364)).isoformat(),
                    informed_at=(start - timedelta(days=1)).isoformat(),
                )
            )
    ConsentService(hub, clock=Clock()).register_many(batch, actor="test")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_snapshots_of_everyone_hold_a_few_kilobytes_a_person(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly subscription check loads every person's gate snapshot at once (and
    keeps it for the night's batches): at 24,000 people it held 575 MB more than the
    process had before, most of it a set of parties, categories and purposes of its own
    for each of the 120,000 consent versions, and, while loading, the raw rows of
    everyone. Equal sets are now one object, and the rows are read a chunk at a time."""
    _caseload(hub)
    monkeypatch.setattr(snapshots, "SNAPSHOT_CHUNK", 100, raising=False)  # three chunks of people
    with hub.db.session() as session:
        ids = list(session.scalars(select(ParticipantRow.id)))
        people = participant_columns(session, ids)
        tracemalloc.start()
        try:
            loaded = snapshots.load_snapshots(session, people)
            held, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(loaded) == PEOPLE
    assert all(len(s.consents) == CONSENTS for s in loaded.values())
    per_person_held, per_person_peak = held / PEOPLE, peak / PEOPLE
    assert per_person_held < 8_000, f"{per_person_held:.0f} bytes held per person"
    assert per_person_peak < 10_000, f"{per_person_peak:.0f} bytes at most per person"
