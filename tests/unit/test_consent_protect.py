"""Staff mark a person's protected identity (skyddad identitet) before any authority
reports it: from then the number goes to no one and the next sync cancels every
registration; lifting it is staff's act too. Each change is logged by pseudonym."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sync_support import bench, received, sync_options
from test_consent_support import ledger

from hub.consent.service import ConsentService
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget
from hub.model.identity import PersonalIdentity
from hub.store.participants import ParticipantRepository
from hub.store.tables.participant import ParticipantRow
from hub.store.tables.sync import Subscription
from hub.sync.job import run_sync

NUMBER = "199001012385"


def _registered_numbers(targets: dict[str, SandboxTarget]) -> dict[str, set[str]]:
    """The numbers each sandbox authority has registered (subscribed)."""
    numbers = {}
    for name, target in targets.items():
        with bench(target) as client:
            numbers[name] = set(client.get("/_sandbox/subscriptions").json()["numbers"])
    return numbers


def _a_registered_person(demo: Hub, targets: dict[str, SandboxTarget]) -> PersonalIdentity:
    """Someone not protected whom at least two authorities have registered by number."""
    registered = _registered_numbers(targets)
    with demo.db.session() as session:
        people = ParticipantRepository(session, demo.keys)
        for row in session.scalars(select(ParticipantRow).order_by(ParticipantRow.id)):
            identity = people.identity_of(row)
            at = [name for name, numbers in registered.items() if identity.number in numbers]
            if not row.protected_identity and len(at) >= 2:
                return identity
    raise AssertionError("the demo caseload has someone registered at two authorities")


def test_a_person_marked_by_staff_is_cancelled_everywhere_and_sent_without_the_number(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    run_sync(demo, sync_options(targets))
    person = _a_registered_person(demo, targets)
    received_before = {name: len(received(t)["items"]) for name, t in targets.items()}

    assert ConsentService(demo).protect(person, actor="reception") is True
    report = run_sync(demo, sync_options(targets))

    assert sum(r.cancelled for r in report.connectors) >= 2
    for name, numbers in _registered_numbers(targets).items():
        assert person.number not in numbers, name
    for name, target in targets.items():  # what went after the mark carried no number
        for item in received(target)["items"][received_before[name] :]:
            assert person.number not in str(item["body"]), name
    with demo.db.session() as session:
        row = ParticipantRepository(session, demo.keys).find(person)
        assert row is not None and row.protected_identity
        active = session.scalars(
            select(Subscription).where(Subscription.participant_id == row.id, Subscription.active)
        ).all()
        assert active == []


def test_a_person_marked_before_the_first_night_is_never_registered_by_number(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    with demo.db.session() as session:
        people = ParticipantRepository(session, demo.keys)
        rows = session.scalars(select(ParticipantRow).order_by(ParticipantRow.id)).all()
        identities = [people.identity_of(r) for r in rows if not r.protected_identity]
    service = ConsentService(demo)
    for identity in identities:  # everyone, so the first night registers no one by number
        service.protect(identity, actor="reception")

    run_sync(demo, sync_options(targets))

    registered = _registered_numbers(targets)
    assert not any(
        identity.number in numbers for identity in identities for numbers in registered.values()
    )


def test_marking_and_lifting_from_the_command_line_is_logged_and_in_the_extract(
    cli, evi_home: Path, hub: Hub
) -> None:
    marked = cli("consent", "protect", "--pnr", NUMBER, "--actor", "rita.reception")
    assert marked.code == 0, marked.err
    assert "protected identity marked" in marked.err
    again = cli("consent", "protect", "--pnr", NUMBER)
    assert again.code == 0 and "nothing to change: already marked" in again.err
    lifted = cli("consent", "protect", "--pnr", NUMBER, "--lift")
    assert lifted.code == 0 and "protected identity lifted" in lifted.err
    entries = [e for e in ledger(hub.db) if e["action"] == "protection_changed"]
    assert [e["reason"] for e in entries] == [
        "protected_identity_marked",
        "protected_identity_lifted",
    ]
    assert entries[0]["actor"].startswith("rita.reception via cli:")
    assert all(e["participant"] == hub.keys.pseudonym(NUMBER) for e in entries)
    assert NUMBER not in str(entries)
    extract = cli("log", "extract", "--pnr", NUMBER).out
    assert "– Skyddad identitet\n" in extract
    assert "Skäl: registrerad: ditt personnummer lämnas inte till någon" in extract


def test_lifting_a_mark_no_one_set_changes_nothing_and_logs_nothing(
    cli, evi_home: Path, hub: Hub
) -> None:
    result = cli("consent", "protect", "--pnr", NUMBER, "--lift")
    assert result.code == 0 and "nothing to change: not marked" in result.err
    assert [e for e in ledger(hub.db) if e["action"] == "protection_changed"] == []
