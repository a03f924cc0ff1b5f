"""An authority whose system is compromised or faulty: what its records can make staff see.

Every text a record passes on (its id, its codes) reaches a terminal (`evi connectors
unmapped`, `evi log search`), a spreadsheet or a page. A record whose id or code holds a
terminal control sequence, a bidi override, a zero-width character or a NUL, or is a
megabyte long, is refused as invalid (counted, logged by its digest, never stored); an
unknown code that looks like a personal identity number is refused too. What was stored
before (or reached the log another way) is shown escaped, never raw
(docs/connectors.md, "Text an authority sends").
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from ledger_support import decisions
from pydantic import BaseModel
from sqlalchemy import select, update
from sync_support import stored_night, sync_options

from hub.connector.errors import InvalidRecordError
from hub.connector.mapping import mapping_for
from hub.connector.native import parse_payload
from hub.connector.service import build_connector
from hub.context import Hub
from hub.demo.sandboxes import SandboxTarget, transports
from hub.ledger.event import Action
from hub.model.codes import BenefitType
from hub.model.records import NativeRecord
from hub.store.tables.ledger import LedgerEntryRow
from hub.store.tables.sync import StoredRecord
from hub.sync.job import run_sync
from hub.sync.subscriptions import subscribed_identities
from tests.conftest import DATA

PNR = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1]
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

HOSTILE = {
    "clear screen": "A1\x1b[2J",
    "window title": "A1\x1b]0;owned\x07",
    "overwrite the line": "A1\rok",
    "backspaces": "A1\x08\x08ok",
    "bidi override": "A1\u202efdp.exe",
    "zero width": "A\u200b1",
    "nul": "A1\x00",
    "newline": "A1\nstatus: ok",
    "lone surrogate": "A1\ud800",
    "c1 csi": "A1\x9b2J",
    "a megabyte": "A" * 1_000_000,
}
"""Texts that, raw on a terminal, act instead of being shown (or hide what follows)."""

CONTROLS = ("\x1b", "\r", "\x08", "\x00", "\x07", "\u202e", "\u200b", "\x9b", "\ud800")


def _raw_controls(text: str) -> list[str]:
    return [c for c in CONTROLS if c in text]


class _Row(BaseModel):
    id: str
    code: str


def _native(source_id: str = "A1", **payload: Any) -> NativeRecord:
    return NativeRecord(
        source="kommun",
        source_id=source_id,
        cursor="1",
        payload={"id": "A1", "code": "X", **payload},
    )


# -- refused where a record is read: hub.connector.native and the mapping --------------------


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_text_field_holding_controls_or_a_megabyte_refuses_the_record(text: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_payload("kommun", _native(code=text), _Row)
    (problem,) = caught.value.problems
    assert problem.startswith("code: ")
    assert text not in str(caught.value) and not _raw_controls(str(caught.value))


@pytest.mark.parametrize(
    "text", [t for t in HOSTILE.values() if len(t) <= 200 and "\ud800" not in t], ids=str
)
def test_a_record_id_holding_controls_refuses_the_record_and_the_error_shows_it_escaped(
    text: str,
) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_payload("kommun", _native(source_id=text), _Row)
    assert caught.value.problems == [
        "source_id: holds characters that are not printable (control, format or invisible "
        "ones such as escape sequences, carriage returns, NUL, bidi overrides or zero-width "
        "characters)"
    ]
    assert not _raw_controls(str(caught.value))


def test_printable_text_of_any_script_is_taken() -> None:
    parsed = parse_payload("kommun", _native("Ärende-17 å", code="EKB/ö 1"), _Row)
    assert parsed.code == "EKB/ö 1"


@pytest.mark.parametrize(
    "code",
    [PNR, f"{PNR[2:8]}-{PNR[8:]}", "p-0123456789abcdef0123456789abcdef", "X\x1b]0;t\x07"],
    ids=["number", "ten digits", "pseudonym", "escape"],
)
def test_an_unknown_code_that_is_a_person_or_unprintable_is_refused_not_kept(code: str) -> None:
    codes = mapping_for("kommun").codes_for("kommun", "A1", strict=False)
    with pytest.raises(InvalidRecordError) as caught:
        codes.map(BenefitType, code, field="bistandstyp")
    assert caught.value.problems[0].startswith("bistandstyp: ")
    assert code not in str(caught.value)
    assert codes.unmapped == []


def test_an_unknown_code_fit_to_show_is_still_kept_as_unmapped() -> None:
    codes = mapping_for("kommun").codes_for("kommun", "A1", strict=False)
    assert codes.map(BenefitType, "NY-KOD 2027", field="bistandstyp") == "unmapped"
    assert [u.code for u in codes.unmapped] == ["NY-KOD 2027"]


# -- through the sync's inbound path ---------------------------------------------------------


@pytest.fixture
def night(demo: Hub, targets: dict[str, SandboxTarget]) -> Any:
    """A night synced; then the municipality's records, with changes, stored as one batch."""
    run_sync(demo, sync_options(targets, deliver=False))
    with build_connector(demo, "kommun", transport=transports(targets)["kommun"]) as kommun:
        with demo.db.session() as session:
            natives = list(kommun.pull(None, subscribed_identities(session, demo.keys, "kommun")))
        one = next(n for n in natives if n.payload["handelseTyp"] == "BISTAND")

        def store(**changes: Any) -> Any:
            source_id = changes.pop("handelseId", one.source_id)
            payload = {**one.payload, "handelseId": source_id, **changes}
            native = one.model_copy(update={"source_id": source_id, "payload": payload})
            return native, stored_night(demo, kommun, [native])

        yield store


INBOUND = ["window title", "overwrite the line", "bidi override", "nul", "a megabyte"]


@pytest.mark.parametrize("where", ["handelseId", "bistandstyp"])
@pytest.mark.parametrize("text", [HOSTILE[k] for k in INBOUND], ids=INBOUND)
def test_a_hostile_record_is_refused_counted_and_logged_by_digest_never_stored(
    demo: Hub, night: Any, where: str, text: str
) -> None:
    native, counts = night(**{where: text})
    assert (counts.invalid, counts.refused, counts.stored) == (1, 1, 0)
    with demo.db.session() as session:
        stored = session.execute(select(StoredRecord.source_id, StoredRecord.unmapped)).all()
        refusal = session.scalars(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.action == Action.INBOUND_REFUSED.value)
            .order_by(LedgerEntryRow.seq.desc())
        ).first()
    assert text not in {source_id for source_id, _ in stored}
    assert text not in {u["code"] for _, codes in stored for u in codes or []}
    assert refusal is not None and refusal.canonical is not None
    entry = json.loads(refusal.canonical)
    assert entry["payload_sha256"] == native.digest()
    field = "source_id" if where == "handelseId" else "bistandstyp"
    assert entry["reason"].startswith(f"invalid_record: {field}: ")
    assert text not in entry["reason"] and not _raw_controls(entry["reason"])


# -- what was stored before, or reached the log another way, is shown escaped ----------------


@SQLITE
def test_unmapped_codes_stored_before_are_listed_escaped_and_their_json_decodes_the_same(
    demo: Hub, night: Any, cli: Any
) -> None:
    night(bistandstyp="NY-KOD")
    evil = 'X\x1b]0;owned\x07\rA\u202eB\x1b[2J=HYPERLINK("http://evil.example","x")'
    with demo.db.session() as session:  # stored before the check (or by another writer)
        session.execute(
            update(StoredRecord)
            .where(StoredRecord.source == "kommun")
            .values(unmapped=[{"field": "bistandstyp\x1b[31m", "code": evil}])
        )
    table = cli("connectors", "unmapped", "kommun")
    assert table.code == 0, table.err
    assert not _raw_controls(table.out)
    assert "X\\x1b]0;owned\\x07\\x0dA\\u202eB\\x1b[2J" in table.out
    as_json = cli("connectors", "unmapped", "kommun", "--json")
    assert not _raw_controls(as_json.out)
    assert json.loads(as_json.out)[0]["code"] == evil


@SQLITE
def test_a_register_extract_shows_a_stored_code_escaped(demo: Hub, night: Any, cli: Any) -> None:
    native, _ = night(bistandstyp="NY-KOD")
    with demo.db.session() as session:
        session.execute(
            update(StoredRecord)
            .where(StoredRecord.source_id == native.source_id)
            .values(unmapped=[{"field": "bistandstyp", "code": "NY\x1b[2J\u202eKOD"}])
        )
    number = native.payload["personnummer"]
    text = cli("participants", "extract", "--pnr", number)
    assert text.code == 0, text.err
    assert '"NY\\x1b[2J\\u202eKOD"' in text.out and not _raw_controls(text.out)
    as_json = cli("participants", "extract", "--pnr", number, "--json")
    assert not _raw_controls(as_json.out)
    codes = [u["code"] for r in json.loads(as_json.out)["records"] for u in r["unmapped"]]
    assert "NY\x1b[2J\u202eKOD" in codes


@SQLITE
def test_a_log_search_table_shows_escapes_and_markup_as_text(hub: Hub, cli: Any) -> None:
    actor = "x\x1b]0;owned\x07[link=http://evil.example]klicka[/link]\u202e"
    decisions(hub, PNR, 1, actor=actor)
    table = cli("log", "search")
    assert table.code == 0, table.err
    assert not _raw_controls(table.out)
    assert "[link=http://evil" in table.out  # shown as typed, not made a link
    lines = cli("log", "search", "--format", "jsonl")
    assert not _raw_controls(lines.out)
    assert json.loads(lines.out.splitlines()[0])["actor"] == actor
    rows = list(csv.DictReader(io.StringIO(cli("log", "search", "--format", "csv").out)))
    assert rows[0]["actor"] == actor  # CSV carries the value; a formula start would be marked


@SQLITE
def test_a_clinical_field_under_a_hostile_key_is_refused_without_repeating_the_key(
    demo: Hub, targets: dict[str, SandboxTarget]
) -> None:
    native = NativeRecord(
        source="region",
        source_id="R-1",
        cursor="1",
        payload={"typ": "REHABSTATUS", f"{PNR}\x1b]0;owned\x07": {"diagnos": "F32"}},
    )
    transport = transports(targets)["region"]
    with (
        build_connector(demo, "region", transport=transport) as region,
        pytest.raises(InvalidRecordError) as caught,
    ):
        region.map(native)
    (problem,) = caught.value.problems
    assert problem.startswith("(a field named by an identity number): clinical detail")
    assert PNR not in str(caught.value) and not _raw_controls(str(caught.value))


def test_an_authoritys_words_in_an_error_line_or_the_sync_report_do_not_act_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `error: …` and the report's lines printed an authority's answer or id as
    it came (a retitled window, a cleared screen, a line shown backwards)."""
    from hub import cli
    from hub.connector.errors import AuthorityError
    from hub.sync.report import ConnectorReport, SyncReport

    words = "record K-\x1b]0;pwned\x07-\u202e1 came twice"

    def failing_app() -> Any:
        def invoke(**_kw: Any) -> None:
            raise AuthorityError("kommun", words)

        return invoke

    monkeypatch.setattr(cli, "build_app", failing_app)
    assert cli.run(["sync"]) == AuthorityError.exit_code
    err = capsys.readouterr().err
    assert err.startswith("error: kommun: record K-\\x1b]0;pwned\\x07-\\u202e1 came twice")
    assert "\x1b" not in err and "\u202e" not in err
    report = SyncReport(dry_run=False)
    report.connectors.append(ConnectorReport("kommun", status="failed", error=f"kommun: {words}"))
    table = report.table()
    assert "\\x1b]0;pwned\\x07" in table and "\x1b" not in table and "\u202e" not in table
