"""Many consents at once (`register_many`, `evi consent import`): the same as one by one.

A batch stores the same rows and ledger entries as registering each consent alone would;
any refused evidence, amendment or bad line stores nothing of the batch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_consent_support import Clock, ledger, paper_fields, paper_submission, skatteverket_numbers

from hub.consent.bulk import BulkEvidenceRefusedError
from hub.consent.decisions import decide
from hub.consent.service import ConsentService
from hub.context import Hub
from hub.errors import InputError
from hub.model.identity import parse_identity
from hub.store.participants import ParticipantRepository
from hub.store.tables.consent import ConsentRow, ConsentVersionRow
from hub.store.tables.participant import ParticipantRow

NUMBERS = skatteverket_numbers(8)
EMPTY_SCAN = hashlib.sha256(b"").hexdigest()  # the paper verifier refuses an empty scan
ASKED = [("af", "team", "plan"), ("fk", "region", "health"), ("kommun", "af", "plan")]
TERMS: list[dict[str, Any]] = [
    {},
    {"parties": ["fk", "region", "team"], "categories": ["health", "plan"]},
    {"purposes": ["coordination", "evaluation"], "valid_until": "2027-06-01T00:00:00Z"},
]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(hub: Hub, clock: Clock) -> ConsentService:
    return ConsentService(hub, clock=clock)


def counts(hub: Hub) -> tuple[int, int, int]:
    with hub.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(ParticipantRow)) or 0,
            session.scalar(select(func.count()).select_from(ConsentRow)) or 0,
            session.scalar(select(func.count()).select_from(ConsentVersionRow)) or 0,
        )


def stored_versions(hub: Hub, consent_ids: list[str]) -> list[dict[str, Any]]:
    """Each consent's version as stored, without what differs by person or by id."""
    out = []
    with hub.db.session() as session:
        for consent_id in consent_ids:
            (row,) = session.scalars(
                select(ConsentVersionRow).where(ConsentVersionRow.consent_id == consent_id)
            )
            values = {
                c.key: getattr(row, c.key)
                for c in ConsentVersionRow.__table__.columns
                if c.key not in ("id", "consent_id", "evidence_sealed")
            }
            out.append({**values, "parties": row.parties})
    return out


def registered_entries(hub: Hub) -> list[dict[str, Any]]:
    """The consent_registered ledger entries, without consent id, pseudonym and salt."""
    return [
        {k: v for k, v in entry.items() if k not in ("consent_id", "participant", "salt")}
        for entry in ledger(hub.db)
        if entry["action"] == "consent_registered"
    ]


def test_a_batch_stores_what_registering_one_by_one_would(
    hub: Hub, service: ConsentService, clock: Clock
) -> None:
    alone = [
        service.register(paper_submission(n, **t), actor="cw:1")
        for n, t in zip(NUMBERS[:3], TERMS, strict=True)
    ]
    one_by_one = registered_entries(hub)
    batch = service.register_many(
        [paper_submission(n, **t) for n, t in zip(NUMBERS[3:6], TERMS, strict=True)],
        actor="cw:1",
    )
    assert [r.participant for r in batch] == [hub.keys.pseudonym(n) for n in NUMBERS[3:6]]
    assert [(r.version, r.verdict) for r in batch] == [(a.version, a.verdict) for a in alone]
    assert stored_versions(hub, [r.consent_id for r in batch]) == stored_versions(
        hub, [a.consent_id for a in alone]
    )
    assert registered_entries(hub) == one_by_one + one_by_one
    for a, b, n, m in zip(alone, batch, NUMBERS[:3], NUMBERS[3:6], strict=True):
        assert service.evidence(parse_identity(m), b.consent_id, 1) == service.evidence(
            parse_identity(n), a.consent_id, 1
        )
    with hub.db.session() as session:
        people = ParticipantRepository(session, hub.keys)
        for n, m in zip(NUMBERS[:3], NUMBERS[3:6], strict=True):
            left, right = people.find(parse_identity(n)), people.find(parse_identity(m))
            assert left is not None and right is not None
            for origin, recipient, category in ASKED:
                asked = (origin, recipient, category, "coordination", clock())
                one = decide(session, left, *asked, actor="job:test")
                two = decide(session, right, *asked, actor="job:test")
                assert (one.decision, one.reason) == (two.decision, two.reason)


def test_a_person_twice_in_a_batch_is_one_participant_with_two_consents(
    hub: Hub, service: ConsentService
) -> None:
    first, second = service.register_many(
        [paper_submission(NUMBERS[0]), paper_submission(NUMBERS[0], parties=["fk", "team"])],
        actor="cw",
    )
    assert first.participant == second.participant and first.consent_id != second.consent_id
    assert counts(hub) == (1, 2, 2)
    service.register_many([paper_submission(NUMBERS[0])], actor="cw")  # an existing person
    assert counts(hub) == (1, 3, 3)


def test_bad_evidence_refuses_the_whole_batch_and_logs_the_refusal(
    hub: Hub, service: ConsentService
) -> None:
    good = paper_fields(NUMBERS[0])
    bad = paper_fields(NUMBERS[1])
    bad["evidence"] = {**bad["evidence"], "document_sha256": EMPTY_SCAN}
    submissions = [paper_submission(**{**good, "pnr": n}) for n in NUMBERS[2:4]]
    with pytest.raises(BulkEvidenceRefusedError) as refused:
        service.register_many([submissions[0], paper_submission(**bad), submissions[1]], actor="cw")
    assert [position for position, _ in refused.value.refused] == [1]
    assert "empty file" in refused.value.message and "none was stored" in refused.value.message
    assert not any(n in refused.value.message for n in NUMBERS)
    assert counts(hub) == (0, 0, 0)
    (entry,) = ledger(hub.db)
    assert (entry["action"], entry["decision"], entry["reason"]) == (
        "consent_registered",
        "deny",
        "evidence_refused",
    )
    assert entry["participant"] == hub.keys.pseudonym(NUMBERS[1])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"amends": "6f1c1d4e-8a33-4a3e-9c55-5b8f0d7f2b10"}, "new consents only"),
        ({"informed_at": "2030-01-01T00:00:00Z"}, "informed_at is in the future"),
    ],
)
def test_an_amendment_or_a_future_informed_at_refuses_the_batch(
    hub: Hub, service: ConsentService, change: dict[str, str], message: str
) -> None:
    batch = [paper_submission(NUMBERS[0]), paper_submission(NUMBERS[1], **change)]
    with pytest.raises(InputError, match=message) as refused:
        service.register_many(batch, actor="cw")
    assert "#2" in refused.value.message
    assert counts(hub) == (0, 0, 0) and ledger(hub.db) == []


# -- evi consent import ----------------------------------------------------------------------


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    return path


def listed(cli) -> list[dict[str, Any]]:
    result = cli("consent", "list", "--json")
    assert result.code == 0, result.err
    data: list[dict[str, Any]] = json.loads(result.out)
    return data


def test_import_registers_every_line_and_prints_the_ids(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    rows = [paper_fields(n, **t) for n, t in zip(NUMBERS[:3], TERMS, strict=True)]
    result = cli("consent", "import", str(jsonl(evi_home / "consents.jsonl", rows)))
    assert result.code == 0, result.err
    ids = result.out.split()
    assert len(ids) == 3 and "registered 3 consents" in result.err
    by_id = {e["id"]: e for e in listed(cli)}
    assert [by_id[i]["pnr"] for i in ids] == NUMBERS[:3]  # one id per line, in file order
    assert by_id[ids[1]]["parties"] == ["fk", "region", "team"]


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"categories": ["gossip"]}, "categories"),
        (
            {"evidence": {"kind": "paper", "document_sha256": EMPTY_SCAN, "witnessed_by": "x"}},
            "empty",
        ),
    ],
)
def test_import_names_the_bad_line_and_stores_nothing(
    cli, evi_home: Path, bad: dict[str, Any], problem: str
) -> None:
    assert cli("db", "upgrade").code == 0
    rows = [paper_fields(NUMBERS[0]), paper_fields(NUMBERS[1], **bad), paper_fields(NUMBERS[2])]
    path = jsonl(evi_home / "consents.jsonl", rows)
    result = cli("consent", "import", str(path))
    assert result.code == 2
    assert f"{path}:2:" in result.err and problem in result.err
    assert "nothing was stored" in result.err
    assert not any(n in result.err + result.out for n in NUMBERS)
    assert listed(cli) == []


def test_import_refuses_a_party_the_hub_does_not_have(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    rows = [paper_fields(NUMBERS[0]), paper_fields(NUMBERS[1], parties=["kommun", "fkk"])]
    result = cli("consent", "import", str(jsonl(evi_home / "consents.jsonl", rows)))
    assert result.code == 2, result.err
    assert "#2 name(s) a party this hub does not have (fkk); the parties are kommun," in (
        result.err
    )
    assert "Nothing was stored" in result.err
    assert listed(cli) == []


def test_import_refuses_a_line_that_repeats_an_earlier_one(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    rows = [paper_fields(NUMBERS[0]), paper_fields(NUMBERS[1]), paper_fields(NUMBERS[0])]
    result = cli("consent", "import", str(jsonl(evi_home / "consents.jsonl", rows)))
    assert result.code == 2, result.err
    assert "#3 repeat(s) an earlier line of the file word for word" in result.err
    assert not any(n in result.err for n in NUMBERS)
    assert listed(cli) == []


def test_import_refuses_a_line_that_is_not_json(cli, evi_home: Path) -> None:
    assert cli("db", "upgrade").code == 0
    path = evi_home / "consents.jsonl"
    path.write_text(json.dumps(paper_fields(NUMBERS[0])) + "\n{not json\n", encoding="utf-8")
    result = cli("consent", "import", str(path))
    assert result.code == 2 and f"{path}:2: not a JSON object" in result.err
    assert listed(cli) == []
