"""Signed checkpoints: the C2SP note format, the signing key's custody, witnesses."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

import pluggy
import pytest

from hub.context import Hub
from hub.errors import ConfigError, InputError
from hub.hookspecs import hookimpl
from hub.ledger.checkpoint import Checkpoint, latest_checkpoint, open_checkpoint, write_checkpoint
from hub.ledger.event import Action, LedgerEvent
from hub.ledger.signing import NoteError, NoteSigner, NoteVerifier, load_signer
from hub.ledger.tree import StoredTree
from hub.ledger.writer import append_many
from hub.plugins import get_plugin_manager
from hub.settings import get_settings
from tests.conftest import DATA

NOTE_VECTORS = json.loads((DATA / "ledger" / "signed_note_vectors.json").read_text())


def events(n: int) -> list[LedgerEvent]:
    return [LedgerEvent(action=Action.VIEW, actor=f"user:{i}") for i in range(n)]


def go_signer() -> NoteSigner:
    # PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>
    _, _, name, _, encoded = NOTE_VECTORS["signer_key"].split("+", 4)
    return NoteSigner(name, base64.b64decode(encoded)[1:])


# -- the signed-note format against the Go reference ----------------------------------


def test_signer_reproduces_the_published_go_note_byte_for_byte() -> None:
    signer = go_signer()
    assert signer.verifier.vkey == NOTE_VECTORS["verifier_key"]
    assert signer.sign(NOTE_VECTORS["text"]) == NOTE_VECTORS["signed_note"]


def test_verifier_opens_the_published_note_and_refuses_a_changed_one() -> None:
    verifier = NoteVerifier.from_vkey(NOTE_VECTORS["verifier_key"])
    assert verifier.open(NOTE_VECTORS["signed_note"]) == NOTE_VECTORS["text"]
    with pytest.raises(NoteError, match="does not verify"):
        verifier.open(NOTE_VECTORS["signed_note"].replace("cryptography", "cryptographY"))
    other = NoteVerifier("PeterNeumann", bytes(32))
    with pytest.raises(NoteError, match="no signature"):
        other.open(NOTE_VECTORS["signed_note"])


def test_verifier_keys_that_do_not_parse_are_refused() -> None:
    good = NOTE_VECTORS["verifier_key"]
    for bad in (good[:-4], good.replace("c74f20a3", "c74f20a4"), "nonsense", good + "+x"):
        with pytest.raises(InputError):
            NoteVerifier.from_vkey(bad)


# -- checkpoints on the stored ledger ------------------------------------------------


def test_checkpoint_signs_size_and_root_in_c2sp_form(hub: Hub) -> None:
    with hub.db.session() as session:
        append_many(session, events(5))
    with hub.db.session() as session:
        checkpoint = write_checkpoint(session, hub.settings, get_plugin_manager())
        root = StoredTree(session).root()
    lines = checkpoint.note.split("\n")
    assert lines[:4] == [hub.settings.ledger.origin, "5", base64.b64encode(root).decode(), ""]
    assert lines[4].startswith(f"— {hub.settings.ledger.origin} ")
    with hub.db.session() as session:
        verifier = load_signer(session, hub.settings).verifier
    assert open_checkpoint(checkpoint.note, verifier) == (hub.settings.ledger.origin, 5, root)


def test_checkpoint_is_not_repeated_while_the_ledger_has_not_grown(hub: Hub) -> None:
    pm = get_plugin_manager()
    with hub.db.session() as session:
        append_many(session, events(2))
        first = write_checkpoint(session, hub.settings, pm)
    with hub.db.session() as session:
        assert write_checkpoint(session, hub.settings, pm).id == first.id
        append_many(session, events(1))
        assert write_checkpoint(session, hub.settings, pm).size == 3


def test_signing_key_is_created_0600_outside_the_database(hub: Hub, evi_home: Path) -> None:
    with hub.db.session() as session:
        write_checkpoint(session, hub.settings, get_plugin_manager())
    key_file = evi_home / "keys" / "ledger-signing.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    seed = base64.b64decode(key_file.read_text())
    with hub.db.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT note FROM ledger_checkpoint").all()
    assert raw and all(base64.b64encode(seed).decode() not in row[0] for row in raw)


def test_missing_signing_key_is_named_and_never_replaced(hub: Hub, evi_home: Path) -> None:
    with hub.db.session() as session:
        write_checkpoint(session, hub.settings, get_plugin_manager())
    key_file = evi_home / "keys" / "ledger-signing.key"
    key_file.unlink()
    with (
        pytest.raises(ConfigError, match="ledger-signing' is missing") as err,
        hub.db.session() as session,
    ):
        append_many(session, events(1))
        write_checkpoint(session, hub.settings, get_plugin_manager())
    assert "EVI_KEYS__LEDGER_SIGNING" in str(err.value)
    assert not key_file.exists()
    with hub.db.session() as session:
        assert StoredTree(session).size() == 0  # the failed transaction left nothing


def test_a_different_signing_key_is_refused(
    hub: Hub, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hub.db.session() as session:
        write_checkpoint(session, hub.settings, get_plugin_manager())
    monkeypatch.setenv("EVI_KEYS__LEDGER_SIGNING", base64.b64encode(b"k" * 32).decode())
    get_settings.cache_clear()
    with (
        pytest.raises(ConfigError, match="not the key this ledger was signed with"),
        hub.db.session() as session,
    ):
        load_signer(session, get_settings())


def test_the_origin_a_log_was_signed_as_cannot_change(
    hub: Hub, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signed under a new origin, the log would never verify again, under either name.
    with hub.db.session() as session:
        append_many(session, events(2))
        write_checkpoint(session, hub.settings, get_plugin_manager())
    monkeypatch.setenv("EVI_LEDGER__ORIGIN", "kommun.example/evi")
    for command in (("log", "verify"), ("log", "checkpoint", "--new")):
        refused = cli(*command)
        assert refused.code == 2, refused.err
        assert "signed as 'evi-hub.example/ledger'" in refused.err
        assert "EVI_LEDGER__ORIGIN=evi-hub.example/ledger" in refused.err
    with hub.db.session() as session:
        latest = latest_checkpoint(session)
        assert latest is not None and latest.note.startswith("evi-hub.example/ledger\n")
    monkeypatch.delenv("EVI_LEDGER__ORIGIN")
    assert cli("log", "verify").code == 0


def test_a_log_from_before_the_origin_was_recorded_is_judged_by_its_checkpoints(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.store.tables.meta import HubMeta

    with hub.db.session() as session:
        write_checkpoint(session, hub.settings, get_plugin_manager())
    with hub.db.session() as session:
        session.delete(session.get(HubMeta, "ledger:origin"))
    monkeypatch.setenv("EVI_LEDGER__ORIGIN", "kommun.example/evi")
    get_settings.cache_clear()
    with (
        pytest.raises(ConfigError, match=re.escape("signed as 'evi-hub.example/ledger'")),
        hub.db.session() as session,
    ):
        load_signer(session, get_settings())


def test_a_recorded_origin_changed_by_hand_is_an_integrity_error_not_advice(hub: Hub, cli) -> None:
    # Setting the environment to the changed record, as a config error would advise, would
    # make every checkpoint fail: the two disagreeing is itself the finding.
    from hub.store.tables.meta import HubMeta

    with hub.db.session() as session:
        append_many(session, events(2))
        write_checkpoint(session, hub.settings, get_plugin_manager())
    with hub.db.session() as session:
        row = session.get(HubMeta, "ledger:origin")
        assert row is not None
        row.value = "evil.example/ledger"
    refused = cli("log", "verify")
    assert refused.code == 4, refused.err
    assert "is not the one its latest checkpoint is signed as ('evi-hub.example/ledger')" in (
        refused.err
    )
    assert "EVI_LEDGER__ORIGIN=" not in refused.err


# -- witnesses ------------------------------------------------------------------------


def test_hooks_get_the_checkpoint_only_after_commit(hub: Hub) -> None:
    seen: list[Checkpoint] = []

    class Witness:
        @hookimpl
        def evi_checkpoint_signed(self, checkpoint: Checkpoint) -> None:
            seen.append(checkpoint)

    pm = get_plugin_manager()
    pm.register(Witness(), name="test-witness")
    with pytest.raises(RuntimeError), hub.db.session() as session:
        append_many(session, events(1))
        write_checkpoint(session, hub.settings, pm)
        raise RuntimeError("rolled back")
    assert seen == []
    with hub.db.session() as session:
        append_many(session, events(1))
        written = write_checkpoint(session, hub.settings, pm)
        assert seen == []
    assert seen == [written]


def test_a_failing_witness_does_not_stop_the_others_or_undo_the_checkpoint(hub: Hub) -> None:
    seen: list[int] = []

    class Broken:
        @hookimpl
        def evi_checkpoint_signed(self, checkpoint: Checkpoint) -> None:
            raise PermissionError(13, "Permission denied", "/worm/x")

    class Working:
        @hookimpl
        def evi_checkpoint_signed(self, checkpoint: Checkpoint) -> None:
            seen.append(checkpoint.size)

    pm = pluggy.PluginManager("evi")
    from hub import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(Broken(), name="broken")
    pm.register(Working(), name="working")
    with hub.db.session() as session:
        append_many(session, events(2))
        written = write_checkpoint(session, hub.settings, pm)
    assert seen == [2]
    assert written.witness_failures == ["broken: PermissionError: Permission denied (/worm/x)"]
    with hub.db.session() as session:
        assert latest_checkpoint(session) == written


def test_witness_directory_plugin_keeps_one_read_only_file_per_checkpoint(
    hub: Hub, evi_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVI_LEDGER__WITNESS_DIR", "witness")
    get_settings.cache_clear()
    settings = get_settings()
    pm = get_plugin_manager()
    assert pm.get_plugin("witness-directory") is not None
    notes = []
    for n in (1, 2):
        with hub.db.session() as session:
            append_many(session, events(n))
            notes.append(write_checkpoint(session, settings, pm))
    files = sorted((evi_home / "witness").iterdir())
    assert [f.read_text() for f in files] == [c.note for c in notes]
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o444 for f in files)
    assert all(not c.witness_failures for c in notes)


def test_a_checkpoint_waits_for_a_writer_at_work_and_covers_what_it_committed(hub: Hub) -> None:
    """`evi sync` ends with a checkpoint while other writers (another connector's sync, a
    worker) may be appending: it waits for them instead of failing, and signs what they
    committed."""
    import threading
    import time

    from hub.ledger.service import new_checkpoint

    with hub.db.session() as session:
        append_many(session, events(2))
    appended, done = threading.Event(), threading.Event()

    def other_writer() -> None:
        with hub.db.session(write_lock=True) as session:
            append_many(session, events(3))
            appended.set()
            time.sleep(0.3)  # still holding the write lock when the checkpoint is asked for
        done.set()

    writer = threading.Thread(target=other_writer)
    writer.start()
    try:
        assert appended.wait(30)
        checkpoint = new_checkpoint(hub)
    finally:
        writer.join()
    assert done.is_set()
    assert checkpoint.size == 5
