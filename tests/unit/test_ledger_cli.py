"""`evi log …` as a privacy officer and an outside auditor use it: contracts and privacy."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from ledger_support import decisions
from sqlalchemy import select, text
from test_ledger_reference import ref_check_consistency, ref_root_from_path

from hub.context import Hub
from hub.ledger.event import Action
from hub.ledger.records import EXPORT_FIELDS
from hub.store.tables.ledger import LedgerEntryRow
from tests.conftest import DATA

NUMBERS = (DATA / "skatteverket_testpersonnummer.csv").read_text().split()[1:4]
PNR, OTHER, THIRD = NUMBERS


def number_forms(number: str) -> list[str]:
    return [number, number[2:], f"{number[:8]}-{number[8:]}", f"{number[2:8]}-{number[8:]}"]


@pytest.fixture
def ledger(hub: Hub) -> Hub:
    decisions(hub, PNR, 3)
    decisions(hub, OTHER, 2, decision="deny", recipient="fk", reason="no consent covers fk")
    decisions(hub, PNR, 1, action=Action.DELIVERY, decision=None, outcome="serious_failure")
    return hub


def jsonl(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def ledger_size(hub: Hub) -> int:
    with hub.db.session() as session:
        return len(session.scalars(select(LedgerEntryRow.seq)).all())


# -- an outsider's tools: nothing from hub.ledger ------------------------------------


def outsider_open_checkpoint(note: str, vkey: str) -> tuple[int, bytes]:
    """Check a C2SP checkpoint with only the vkey; returns (size, root)."""
    name, key_hex, key_b64 = vkey.split("+", 2)
    public = base64.b64decode(key_b64)[1:]
    body, signatures = note.split("\n\n", 1)
    sig_name, sig_b64 = signatures.strip().removeprefix("— ").split(" ")
    blob = base64.b64decode(sig_b64)
    assert sig_name == name and blob[:4].hex() == key_hex
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], (body + "\n").encode())
    origin, size, root = body.split("\n")
    assert origin == name
    return int(size), base64.b64decode(root)


# -- contracts -----------------------------------------------------------------------


def test_jsonl_export_lines_carry_the_documented_fields_and_the_exact_leaf(
    ledger: Hub, cli
) -> None:
    result = cli("log", "export", "--format", "jsonl")
    assert result.code == 0, result.err
    lines = jsonl(result.out)
    assert [line["seq"] for line in lines] == list(range(len(lines)))
    for line in lines:
        assert list(line)[:2] == ["seq", "leaf"]
        assert set(EXPORT_FIELDS) <= set(line)
        leaf = base64.b64decode(line["leaf"])
        assert hashlib.sha256(b"\x00" + leaf).hexdigest() == line["leaf_hash"]
        document = json.loads(leaf)
        for name in EXPORT_FIELDS:
            assert line[name] == document[name]
        assert line["decision"] in ("permit", "deny", None)
        assert isinstance(line["categories"], list)
    assert lines[0]["participant"].startswith("p-")
    assert lines[3]["decision"] == "deny" and lines[3]["recipient"] == "fk"


def test_prove_and_consistency_json_check_out_with_an_independent_verifier(
    ledger: Hub, cli
) -> None:
    first = cli("log", "checkpoint", "--new").out
    decisions(ledger, THIRD, 5)
    second = cli("log", "checkpoint", "--new").out
    vkey = cli("log", "pubkey").out.strip()
    old_size, old_root = outsider_open_checkpoint(first, vkey)
    size, root = outsider_open_checkpoint(second, vkey)
    assert (old_size, size) == (6, 11)
    leaves = [
        base64.b64decode(x["leaf"]) for x in jsonl(cli("log", "export", "--format", "jsonl").out)
    ]
    for seq in range(size):
        result = cli("log", "prove", "--seq", str(seq), "--json")
        assert result.code == 0, result.err
        proof = json.loads(result.out)
        assert set(proof) == {"leaf_index", "tree_size", "hashes"}
        assert (proof["leaf_index"], proof["tree_size"]) == (seq, size)
        leaf_hash = hashlib.sha256(b"\x00" + leaves[seq]).digest()
        path = [bytes.fromhex(h) for h in proof["hashes"]]
        assert ref_root_from_path(seq, size, leaf_hash, path) == root
    result = cli("log", "consistency", "--from", str(old_size), "--json")
    proof = json.loads(result.out)
    assert proof.keys() == {"from", "to", "hashes"} and (proof["from"], proof["to"]) == (6, 11)
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    assert ref_check_consistency(old_size, size, old_root, root, hashes)
    assert not ref_check_consistency(old_size, size, hashlib.sha256(b"x").digest(), root, hashes)


def test_pubkey_prints_vkey_or_pem(ledger: Hub, cli) -> None:
    cli("log", "checkpoint", "--new")
    vkey = cli("log", "pubkey").out.strip()
    assert vkey.startswith(ledger.settings.ledger.origin + "+")
    pem = cli("log", "pubkey", "--pem").out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_fhir_export_is_a_valid_bundle_of_audit_events(ledger: Hub, cli) -> None:
    from fhir.resources.auditevent import AuditEvent
    from fhir.resources.bundle import Bundle

    cli("log", "purge", "--before", "2999-01-01", "--yes")  # refused: in the future
    result = cli("log", "export", "--format", "fhir")
    assert result.code == 0, result.err
    bundle = Bundle.model_validate_json(result.out)
    events = [AuditEvent.model_validate(e.resource.model_dump()) for e in bundle.entry]
    assert len(events) == ledger_size(ledger)  # the export's own entry is the last one
    assert events[-1].code.coding[0].code == "ledger_export"
    first = events[0]
    assert first.patient.identifier.value == ledger.keys.pseudonym(PNR)
    assert first.outcome.code.code == "0"
    assert {a.who.identifier.value for a in first.agent} == {"job:sync", "af", "team"}
    assert events[5].outcome.code.code == "8"


def test_every_action_exports_as_an_audit_event_of_its_own_kind(hub: Hub, cli) -> None:
    from fhir.resources.auditevent import AuditEvent
    from fhir.resources.bundle import Bundle

    for action in Action:
        decisions(hub, PNR, 1, action=action, decision=None)
    bundle = Bundle.model_validate_json(cli("log", "export", "--format", "fhir").out)
    events = [AuditEvent.model_validate(e.resource.model_dump()) for e in bundle.entry]
    kinds = {e.code.coding[0].code: e.category[0].coding[0].code for e in events}
    assert set(kinds) == {a.value for a in Action}
    # none falls back to the generic "Application Activity" but the log's own purge and
    # its recorded restore from a backup
    generic = {a for a, code in kinds.items() if code == "110100"}
    assert generic == {"ledger_purge", "log_restored"}


def test_fhir_export_of_purged_entries_is_still_valid(ledger: Hub, cli, monkeypatch) -> None:
    from fhir.resources.bundle import Bundle

    from hub.ledger import service
    from hub.ledger.records import LedgerQuery

    with ledger.db.session() as session:
        session.execute(text("UPDATE ledger_entry SET time = '2000-01-01 00:00:00+00:00'"))
    assert cli("log", "purge", "--before", "2001-01-01", "--yes").code == 0
    bundle = Bundle.model_validate_json(cli("log", "export", "--format", "fhir").out)
    assert bundle.entry[0].resource.agent[0].who.display == "(purged)"
    assert next(iter(service.export(ledger, LedgerQuery(), "t", "jsonl"))).purged


# -- privacy -------------------------------------------------------------------------


def test_no_personnummer_in_the_ledger_its_exports_or_search_output(ledger: Hub, cli) -> None:
    outputs = [
        cli("log", "search", "--pnr", PNR).out,
        cli("log", "search", "--pnr", PNR, "--format", "jsonl").out,
        cli("log", "search", "--pnr", OTHER, "--format", "csv").out,
        cli("log", "export", "--format", "jsonl").out,
        cli("log", "export", "--format", "fhir").out,
        cli("log", "checkpoint", "--new").out,
        cli("log", "verify").out,
    ]
    extract = cli("log", "extract", "--pnr", PNR)
    assert extract.code == 0, extract.err
    outputs.append(cli("log", "export", "--format", "jsonl").out)
    with ledger.db.engine.connect() as conn:
        stored = [
            repr(row)
            for table in ("ledger_entry", "ledger_tile", "ledger_checkpoint", "ledger_head")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        ]
        decoded = [
            bytes(row[0]).decode()
            for row in conn.execute(text("SELECT canonical FROM ledger_entry"))
        ]
    for number in (PNR, OTHER):
        for form in number_forms(number):
            for output in (*outputs, *stored, *decoded):
                assert form not in output
    assert f"{PNR[:8]}-{PNR[8:]}" in extract.out  # the person's own extract names them


def test_reads_of_the_log_are_logged_with_the_pseudonym(ledger: Hub, cli) -> None:
    cli("log", "search", "--pnr", PNR, "--party", "af")
    cli("log", "export", "--format", "jsonl")
    cli("log", "extract", "--pnr", PNR, "--format", "json")
    lines = jsonl(cli("log", "export", "--format", "jsonl").out)
    reads = [line for line in lines if line["action"].startswith("ledger_")]
    assert [r["action"] for r in reads] == [
        "ledger_search",
        "ledger_export",
        "ledger_extract",
        "ledger_export",
    ]
    search = reads[0]
    assert search["participant"] == ledger.keys.pseudonym(PNR)
    assert search["actor"].startswith("cli:")
    assert "party=af" in search["reason"] and PNR not in search["reason"]
    assert reads[2]["participant"] == ledger.keys.pseudonym(PNR)


# -- search ----------------------------------------------------------------------------


def test_search_filters_by_person_party_decision_action_and_time(ledger: Hub, cli) -> None:
    def seqs(*args: str) -> list[int]:
        result = cli("log", "search", "--format", "jsonl", *args)
        assert result.code == 0, result.err
        return [line["seq"] for line in jsonl(result.out) if line["action"] != "ledger_search"]

    assert seqs("--pnr", PNR) == [0, 1, 2, 5]
    assert seqs("--pnr", OTHER, "--decision", "deny") == [3, 4]
    assert seqs("--party", "fk") == [3, 4]
    assert seqs("--action", "delivery") == [5]
    assert seqs("--to", "2000-01-01") == []
    assert seqs("--from", "2000-01-01", "--limit", "2") == [0, 1]
    table = cli("log", "search", "--pnr", OTHER).out
    assert "deny" in table and "fk" in table
    assert "reason" in table.splitlines()[1]  # why the gate refused, as the demo promises
    assert "no consent covers fk" in " ".join(table.split())
    rows = list(csv.reader(io.StringIO(cli("log", "search", "--format", "csv").out)))
    assert rows[0] == ["seq", *EXPORT_FIELDS]
    assert rows[1][EXPORT_FIELDS.index("categories") + 1] == "identity;plan"


def test_search_and_sample_by_who_made_the_entries(hub: Hub, cli) -> None:
    decisions(hub, PNR, 2, action=Action.VIEW, decision=None, actor="anna.af")
    decisions(hub, PNR, 1, action=Action.VIEW, decision=None, actor="anna.af via cli:ops")
    decisions(hub, PNR, 1, action=Action.VIEW, decision=None, actor="anna.afx")
    decisions(hub, PNR, 1, action=Action.VIEW, decision=None, actor="bo.fk via cli:ops")
    decisions(hub, PNR, 1, actor="evi-sync")

    def seqs(*args: str) -> list[int]:
        result = cli("log", "search", "--format", "jsonl", *args)
        assert result.code == 0, result.err
        return [line["seq"] for line in jsonl(result.out) if line["action"] != "ledger_search"]

    assert seqs("--by", "anna.af") == [0, 1, 2]  # as a web user and on whose behalf
    assert seqs("--by", "cli:ops") == [2, 4]  # who ran the command
    assert seqs("--by", "evi-sync", "--action", "decision") == [5]
    assert seqs("--by", "anna") == []  # the whole name, not a part of it
    search = jsonl(cli("log", "export", "--format", "jsonl").out)[-2]
    assert search["action"] == "ledger_search" and "actor=anna" in search["reason"]
    drawn = cli("log", "sample", "--size", "5", "--by", "anna.af", "--format", "jsonl")
    assert sorted(line["seq"] for line in jsonl(drawn.out)) == [0, 1, 2]

    before = ledger_size(hub)
    for bad in ("anna af", f"x{PNR}", "=cmd()"):
        refused = cli("log", "search", "--by", bad)
        assert refused.code == 2 and "by: give a name as the log" in refused.err
        assert PNR not in refused.err
    assert ledger_size(hub) == before  # nothing searched, nothing logged


def test_search_by_correlation_finds_one_report_or_look_up(hub: Hub, cli) -> None:
    report = "stats-0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
    decisions(hub, PNR, 2, correlation_id=report)
    decisions(hub, PNR, 1, correlation_id="sync-0123456789abcdef")

    def seqs(*args: str) -> list[int]:
        result = cli("log", "search", "--format", "jsonl", *args)
        assert result.code == 0, result.err
        return [line["seq"] for line in jsonl(result.out) if line["action"] != "ledger_search"]

    assert seqs("--correlation", report) == [0, 1]
    assert seqs("--correlation", "sync-0123456789abcdef") == [2]
    key = "evi2-" + "0a" * 29 + "f"  # a transfer's idempotency key, as the sync makes it
    decisions(hub, PNR, 1, correlation_id=key)
    assert len(seqs("--correlation", key)) == 1
    for bad in (PNR, f"stats-{PNR}", "stats-x", f"evi2-{PNR}", f"evi-{PNR}", key + "0"):
        refused = cli("log", "search", "--correlation", bad)
        assert refused.code == 2 and "correlation: give a correlation id" in refused.err
        assert PNR not in refused.err
    search = jsonl(cli("log", "export", "--format", "jsonl").out)
    assert PNR not in json.dumps(search)


def test_search_goes_on_after_the_last_entry_printed(ledger: Hub, cli) -> None:
    def seqs(*args: str) -> list[int]:
        result = cli("log", "search", "--action", "decision", "--format", "jsonl", *args)
        assert result.code == 0, result.err
        return [line["seq"] for line in jsonl(result.out)]

    assert seqs("--limit", "2") == [0, 1]
    assert seqs("--limit", "2", "--after", "1") == [2, 3]
    assert seqs("--limit", "2", "--after", "3") == [4]
    assert seqs("--after", "4") == []
    search = jsonl(cli("log", "export", "--format", "jsonl").out)[-2]
    assert search["action"] == "ledger_search" and search["reason"].endswith(", after=4")


def test_a_search_for_more_than_the_most_says_how_to_get_them_and_reads_nothing(
    ledger: Hub, cli
) -> None:
    size = ledger_size(ledger)
    result = cli("log", "search", "--limit", "10001", "--format", "jsonl")
    assert result.code == 2 and result.out == ""
    assert "at most 10,000" in result.err and "--after" in result.err
    assert "evi log export" in result.err
    assert ledger_size(ledger) == size  # nothing read, so nothing recorded
    assert cli("log", "search", "--limit", "10000").code == 0


def test_search_output_is_written_as_the_entries_are_read(
    ledger: Hub, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large answer is never held whole: each line goes out as its entry is read, so a
    # failure part way leaves the lines before it (and the search on record).
    from hub.errors import StorageError
    from hub.ledger import records

    read = records.record_from_row

    def failing_at_the_third(row: LedgerEntryRow) -> object:
        if row.seq == 2:
            raise StorageError("the database went away")
        return read(row)

    monkeypatch.setattr(records, "record_from_row", failing_at_the_third)
    for fmt in ("jsonl", "csv"):
        result = cli("log", "search", "--format", fmt)
        assert result.code == 1 and "went away" in result.err
        lines = result.out.splitlines()
        if fmt == "jsonl":
            assert [json.loads(line)["seq"] for line in lines] == [0, 1]
        else:
            assert [row[0] for row in csv.reader(lines)] == ["seq", "0", "1"]


# -- the person's extract ------------------------------------------------------------


def test_extract_is_plain_swedish_with_every_entry_about_the_person(ledger: Hub, cli) -> None:
    result = cli("log", "extract", "--pnr", PNR)
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("REGISTERUTDRAG UR ÖVERFÖRINGSLOGGEN")
    assert "Antal händelser: 4" in out
    assert "Beslut om utlämnande: tillåtet" in out
    assert "Från: Arbetsförmedlingen (af)" in out
    assert "Uppgifter: identitetsuppgifter, planering" in out
    assert "Överföring till annan part" in out and "misslyckades (allvarligt fel)" in out
    assert "no consent covers fk" not in out  # the other person's entries are not there


def test_an_extract_written_to_a_file_is_for_its_owner_only(
    ledger: Hub, cli, tmp_path: Path
) -> None:
    target = tmp_path / "registerutdrag.txt"
    target.write_text("an older extract\n")
    target.chmod(0o644)
    written = cli("log", "extract", "--pnr", PNR, "-o", str(target))
    assert written.code == 0, written.err
    assert written.out == ""
    assert target.read_text(encoding="utf-8").startswith("REGISTERUTDRAG UR ÖVERFÖRINGSLOGGEN")
    assert target.stat().st_mode & 0o077 == 0
    as_json = tmp_path / "registerutdrag.json"
    assert cli("log", "extract", "--pnr", PNR, "--format", "json", "-o", str(as_json)).code == 0
    assert json.loads(as_json.read_text(encoding="utf-8"))["entries"]
    size = ledger_size(ledger)
    missing = cli("log", "extract", "--pnr", PNR, "-o", str(tmp_path / "no" / "such" / "x"))
    assert missing.code == 2 and ledger_size(ledger) == size  # refused before it is made


def test_the_extract_gives_each_reason_in_words_with_its_code(hub: Hub, cli) -> None:
    decisions(hub, PNR, 1, reason="covered")
    decisions(hub, PNR, 1, decision="deny", reason="withdrawn")
    decisions(hub, PNR, 1, action=Action.DELIVERY, decision=None, reason="timed out after 30 s")
    out = cli("log", "extract", "--pnr", PNR).out
    assert "   Skäl: ditt samtycke omfattar det (covered)\n" in out
    assert "   Skäl: du har återkallat samtycket (withdrawn)\n" in out
    assert "   Skäl: timed out after 30 s\n" in out  # a reason with no words of its own


def test_the_extract_tells_the_person_who_and_what_in_swedish(hub: Hub, cli) -> None:
    view = {"action": Action.VIEW, "decision": None, "origin": None, "categories": ()}
    decisions(hub, PNR, 1, **view, actor="anna.af", role="caseworker", reason="shown 3 records")
    decisions(hub, PNR, 1, decision="deny", outcome="minor_failure", reason="withdrawn")
    decisions(hub, PNR, 1, action=Action.CONSENT_REGISTERED, reason="registered", actor="evi-sync")
    out = cli("log", "extract", "--pnr", PNR).out
    assert "   Skäl: handläggaren såg 3 uppgift(er) om dig\n" in out
    assert "   Utfört av: anna.af (handläggare)\n" in out
    assert "– Beslut om utlämnande: nekat\n" in out
    assert "genomfört med mindre fel" not in out  # a refusal is no failure of the hub's
    assert "– Samtycke registrerat\n" in out  # no "tillåtet" tacked onto it
    assert "Utfört av: EVI hub (den automatiska överföringen)" in out
    assert "Resultat: genomfört\n" not in out  # said of every line, it says nothing
    # what the proofs are for, in plain words, before the technical part
    assert "kan kontrollera att ingen av händelserna ovan har\nändrats eller tagits bort" in out


def test_a_look_up_that_found_no_one_is_not_told_as_a_view(hub: Hub, cli) -> None:
    # a caseworker typed the number before the person was a participant: nothing was shown
    looked = cli("participants", "status", "--pnr", PNR, "--as", "af")
    assert looked.code == 1, looked.err
    out = cli("log", "extract", "--pnr", PNR).out
    assert "– Handläggare sökte på ditt personnummer\n" in out
    assert "   Skäl: EVI hub hade inga uppgifter om dig (not_a_participant)\n" in out
    assert "Handläggare visade dina uppgifter" not in out


def test_the_extract_gives_its_times_in_swedish_time(ledger: Hub, cli) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    as_json = json.loads(cli("log", "extract", "--pnr", PNR, "--format", "json").out)
    out = cli("log", "extract", "--pnr", PNR).out
    sweden = ZoneInfo("Europe/Stockholm")
    for number, entry in enumerate(as_json["entries"], start=1):
        local = datetime.fromisoformat(entry["time"]).astimezone(sweden)
        assert f"\n{number}. {local:%Y-%m-%d %H:%M} – " in out
    assert "(svensk tid, som alla tider här)" in out and "(UTC)" not in out


def test_every_action_about_a_person_has_a_swedish_title_in_the_extract() -> None:
    from hub.ledger.extract import ACTIONS_SV

    # access_changed (web users), connector_changed (a connector's options) and
    # log_restored (the log itself) are never about a participant: in no one's extract
    about_no_one = {"access_changed", "connector_changed", "log_restored"}
    assert set(ACTIONS_SV) == {a.value for a in Action} - about_no_one


def test_extract_json_proves_every_entry_against_its_checkpoint(ledger: Hub, cli) -> None:
    result = cli("log", "extract", "--pnr", PNR, "--format", "json")
    data = json.loads(result.out)
    assert data["subject"] == {"personal_identity": f"{PNR[:8]}-{PNR[8:]}"}
    size, root = outsider_open_checkpoint(data["checkpoint"]["note"], data["verifier_key"])
    assert [e["seq"] for e in data["entries"]] == [0, 1, 2, 5]
    for item in data["entries"]:
        proof = item["inclusion_proof"]
        assert proof["tree_size"] == size
        leaf_hash = hashlib.sha256(b"\x00" + base64.b64decode(item["leaf"])).digest()
        path = [bytes.fromhex(h) for h in proof["hashes"]]
        assert ref_root_from_path(item["seq"], size, leaf_hash, path) == root


# -- bad input: a clear message, a non-zero exit, nothing changed ---------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("log", "search", "--pnr", "19900101"), "10 or 12 digits"),
        (("log", "search", "--pnr", PNR[:-1] + str((int(PNR[-1]) + 1) % 10)), "check digit"),
        (("log", "search", "--from", "last tuesday"), "--from: not a date; write YYYY-MM-DD"),
        (("log", "search", "--to", "9999-12-31T23:59:59-14:00"), "--to: out of range; give"),
        (("log", "search", "--from", "0001-01-01T00:00:00+14:00"), "between 0001-01-02 and"),
        (("log", "search", "--decision", "maybe"), "'permit' or 'deny'"),
        (
            ("log", "search", "--from", "2026-03-01", "--to", "2026-02-01"),
            "--to 2026-02-01 is not after --from 2026-03-01",
        ),
        (("log", "search", "--from", "2026-03-01", "--to", "2026-03-01"), "not including, --to"),
        (("log", "sample", "--size", "2", "--from", "2026-03-01", "--to", "2026-02-01"), "--to"),
        (
            ("log", "export", "--format", "jsonl", "--from", "2026-03-01", "--to", "2020-01-01"),
            "give a --to after --from",
        ),
        (("log", "extract", "--pnr", "abc"), "YYYYMMDD-NNNC"),
        (("log", "prove", "--seq", "99", "--size", "6"), "not in the tree of size 6"),
        (("log", "prove", "--seq", "0", "--size", "60"), "does not exist yet"),
        (("log", "consistency", "--from", "5", "--to", "3"), "--from <= --to"),
        (
            ("log", "purge", "--before", "2001-01-01"),
            "would purge 0 entries recorded before 2001-01-01;",
        ),
        (
            ("log", "purge", "--before", "2001-01-01T12:30:00Z"),
            "would purge 0 entries recorded before 2001-01-01T12:30:00Z;",  # the time kept
        ),
        (("log", "verify", "--pubkey", "nonsense"), "not a verifier key"),
    ],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    ledger: Hub, cli, args: tuple[str, ...], message: str
) -> None:
    before = ledger_size(ledger)
    result = cli(*args)
    assert result.code == 2, (result.code, result.err)
    assert message in result.err
    assert ledger_size(ledger) == before
    for number in NUMBERS:
        assert number not in result.err


def test_prove_without_a_checkpoint_says_how_to_get_one(ledger: Hub, cli) -> None:
    result = cli("log", "prove", "--seq", "0")
    assert result.code == 1 and "evi log checkpoint --new" in result.err


# -- retention ---------------------------------------------------------------------------


def test_purge_keeps_the_tree_verifying_and_verify_reports_the_purged_range(
    ledger: Hub, cli
) -> None:
    with ledger.db.session() as session:
        session.execute(
            text("UPDATE ledger_entry SET time = '2001-06-01 00:00:00+00:00' WHERE seq < 3")
        )
    cli("log", "checkpoint", "--new")
    refused = cli("log", "purge", "--before", "2002-01-01")
    assert refused.code == 2 and "would purge 3 entries" in refused.err
    result = cli("log", "purge", "--before", "2002-01-01", "--yes")
    assert result.code == 0, result.err
    verified = cli("log", "verify")
    assert verified.code == 0, verified.out
    assert "purged (content removed by retention, hashes kept): 0-2" in verified.out
    lines = jsonl(cli("log", "export", "--format", "jsonl").out)
    assert [line["purged"] for line in lines[:4]] == [True, True, True, False]
    assert lines[0]["participant"] is None and lines[0]["leaf"] is None
    assert lines[-2]["action"] == "ledger_purge" and "purged 3 entries" in lines[-2]["reason"]
    assert cli("log", "prove", "--seq", "1", "--size", "6", "--json").code == 0


def test_verify_with_someone_elses_key_fails(ledger: Hub, cli) -> None:
    cli("log", "checkpoint", "--new")
    other = (
        "evi-hub.example/ledger+"
        + "00000000"
        + "+"
        + base64.b64encode(b"\x01" + bytes(32)).decode()
    )
    result = cli("log", "verify", "--pubkey", other)
    assert result.code == 2 and "key's ID does not match" in result.err


def test_verify_json_report(ledger: Hub, cli, tmp_path: Path) -> None:
    cli("log", "checkpoint", "--new")
    report = json.loads(cli("log", "verify", "--json").out)
    assert report == {
        "ok": True,
        "size": 6,
        "checkpoints": 1,
        "witness_copies": 0,
        "superseded_witness_copies": [],
        "purged": [],
        "first_bad_seq": None,
        "problems": [],
        "unlisted_problems": 0,
    }


def test_export_to_a_file_is_what_stdout_gets_and_only_the_owner_reads_it(
    ledger: Hub, cli, tmp_path: Path
) -> None:
    target = tmp_path / "export.jsonl"
    written = cli("log", "export", "--format", "jsonl", "--output", str(target))
    assert written.code == 0, written.err
    shown = cli("log", "export", "--format", "jsonl")
    from_file = jsonl(target.read_text(encoding="utf-8"))
    assert len(from_file) > 6
    assert from_file == jsonl(shown.out)[:-1]  # the second export logged itself: one more
    assert target.stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".export")) == []


def test_a_failed_export_leaves_the_earlier_file_as_it_was(
    cli, evi_home: Path, tmp_path: Path
) -> None:
    target = tmp_path / "export.jsonl"
    target.write_text("yesterday's export\n", encoding="utf-8")
    failed = cli("log", "export", "--format", "jsonl", "--output", str(target))  # no database
    assert failed.code != 0
    assert "evi db upgrade" in failed.err
    assert target.read_text(encoding="utf-8") == "yesterday's export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".export")] == []


def test_an_export_into_a_missing_directory_says_so(ledger: Hub, cli, tmp_path: Path) -> None:
    result = cli("log", "export", "--format", "jsonl", "-o", str(tmp_path / "no" / "x.jsonl"))
    assert result.code == 2
    assert "is not a directory; create it first" in result.err
    assert "Traceback" not in result.err


def test_an_export_into_a_directory_says_to_name_a_file_and_is_not_recorded(
    ledger: Hub, cli, tmp_path: Path
) -> None:
    size = ledger_size(ledger)
    result = cli("log", "export", "--format", "jsonl", "-o", str(tmp_path))
    assert result.code == 2, result.err
    assert f"error: {tmp_path} is a directory; give the name of a file to write" in result.err
    assert ledger_size(ledger) == size
    assert list(tmp_path.parent.glob(f".{tmp_path.name}.*")) == []


def test_purge_before_a_date_means_before_that_day_began_in_sweden(
    ledger: Hub, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `evi participants purge` reads its date (before: midnight UTC, so the two purges
    of one retention plan drew the line an hour apart, and an entry of 00:30 on New Year's
    Day in Sweden went with the old year's)."""
    monkeypatch.setenv("EVI_LEDGER__MINIMUM_RETENTION_DAYS", "0")  # 2026-01-01 may be recent
    times = ["2025-12-31 22:30:00+00:00", "2025-12-31 23:30:00+00:00"]  # 23:30 / 00:30 CET
    with ledger.db.session() as session:
        for seq, time in enumerate(times):
            session.execute(
                text("UPDATE ledger_entry SET time = :t WHERE seq = :s"), {"t": time, "s": seq}
            )
    cli("log", "checkpoint", "--new")
    refused = cli("log", "purge", "--before", "2026-01-01")
    assert refused.code == 2
    assert "would purge 1 entries recorded before 2026-01-01" in refused.err, refused.err
    done = cli("log", "purge", "--before", "2026-01-01", "--yes")
    assert done.code == 0 and "purged 1 entries recorded before 2026-01-01" in done.err, done.err
    lines = jsonl(cli("log", "export", "--format", "jsonl").out)
    assert [line["purged"] for line in lines[:2]] == [True, False]
