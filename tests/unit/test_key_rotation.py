"""Rotating an encryption key: every stored value still opens, with the new key only; the
old key is retired, not lost; a crash at any step leaves a hub that opens; a process that
loaded the old key cannot write with it afterwards."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sync_support import connector_lock
from test_consent_support import ledger, paper_submission, skatteverket_numbers

from hub import key_rotation
from hub.connector import service as connectors
from hub.connector.errors import ConnectorConfigError
from hub.consent.service import ConsentService, Registered
from hub.context import Hub
from hub.errors import ConfigError, InputError, LockHeldError
from hub.key_files import next_path
from hub.key_rotation import rotate_key
from hub.keys import key_fingerprint, key_sources
from hub.model.identity import parse_identity
from hub.settings import get_settings
from hub.store.meta import get_meta
from hub.store.participants import ParticipantRepository
from hub.store.tables.connectors import ConnectorConfigRow
from hub.store.tables.participant import ParticipantRow

PEOPLE = skatteverket_numbers(3)
TOKEN = "kommun-token-for-the-test"


@pytest.fixture
def stored(hub: Hub) -> dict[str, Registered]:
    """Three people with a consent each (sealed evidence), and a connector secret."""
    service = ConsentService(hub)
    registered = {pnr: service.register(paper_submission(pnr), actor="test") for pnr in PEOPLE}
    connectors.configure(
        hub, "kommun", {"base_url": "http://k.example", "token": TOKEN}, actor="test"
    )
    return registered


def _numbers(hub: Hub) -> list[str]:
    with hub.db.session() as session:
        repo = ParticipantRepository(session, hub.keys)
        rows = session.scalars(select(ParticipantRow).order_by(ParticipantRow.id)).all()
        return [repo.identity_of(row).number for row in rows]


def _ciphertexts(hub: Hub) -> list[bytes]:
    with hub.db.session() as session:
        return list(session.scalars(select(ParticipantRow.pnr_ciphertext)).all())


def _secret(hub: Hub) -> str:
    with hub.db.session() as session:
        row = session.get(ConnectorConfigRow, "kommun")
        assert row is not None
        return hub.keys.decrypt_secret(
            row.secrets["token"], connectors.secret_context("kommun", "token")
        )


def _evidence(hub: Hub, stored: dict[str, Registered]) -> list[dict[str, Any]]:
    service = ConsentService(hub)
    return [service.evidence(parse_identity(p), r.consent_id, r.version) for p, r in stored.items()]


def _key_file(hub: Hub, name: str) -> Path:
    return key_sources(hub.settings)[name].path


def _fresh(hub: Hub) -> Hub:
    """The same database opened by a new process (keys loaded from scratch)."""
    return Hub(settings=hub.settings, db=hub.db)


def test_rotating_the_number_key_rewrites_every_number_and_retires_the_old_key(
    hub: Hub, stored: dict[str, Registered]
) -> None:
    before = _ciphertexts(hub)
    old_key = _key_file(hub, "pnr-encryption").read_text()
    done = rotate_key(hub, "pnr-encryption", actor="admin")
    assert done.rewritten == len(PEOPLE)
    after = _ciphertexts(hub)
    assert all(a != b for a, b in zip(after, before, strict=True))
    reopened = _fresh(hub)
    assert sorted(_numbers(reopened)) == sorted(PEOPLE)
    assert done.retired.read_text() == old_key
    assert done.retired.stat().st_mode & 0o777 == 0o600
    new_key = base64.b64decode(_key_file(hub, "pnr-encryption").read_text())
    with hub.db.session() as session:
        assert get_meta(session, "key:pnr-encryption") == key_fingerprint(new_key)
    assert not next_path(key_sources(hub.settings)["pnr-encryption"]).exists()
    entry = ledger(hub.db)[-1]
    assert entry["action"] == "key_rotated" and entry["actor"] == "admin"
    assert entry["reason"].startswith("pnr-encryption: 3 stored values")
    assert not any(p in str(entry) for p in PEOPLE)


def test_rotating_the_secrets_key_keeps_connector_secrets_and_consent_evidence(
    hub: Hub, stored: dict[str, Registered]
) -> None:
    evidence = _evidence(hub, stored)
    done = rotate_key(hub, "connector-secrets", actor="admin")
    assert done.rewritten == 1 + len(PEOPLE)  # the token and each consent's evidence
    reopened = _fresh(hub)
    assert _secret(reopened) == TOKEN
    assert _evidence(reopened, stored) == evidence
    retired = base64.b64decode(done.retired.read_text())
    assert retired != base64.b64decode(_key_file(hub, "connector-secrets").read_text())


@pytest.mark.parametrize("name", ["pseudonym", "pnr-lookup", "no-such-key"])
def test_the_keyed_hash_keys_and_unknown_names_are_refused(
    hub: Hub, stored: dict[str, Registered], name: str
) -> None:
    with pytest.raises(InputError) as refused:
        rotate_key(hub, name, actor="admin")
    assert ("not rotated" in str(refused.value)) == (name != "no-such-key")


def test_a_key_from_the_environment_is_rotated_where_it_is_kept(
    hub: Hub, stored: dict[str, Registered], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _key_file(hub, "pnr-encryption").read_text().strip()
    monkeypatch.setenv("EVI_KEYS__PNR_ENCRYPTION", key)
    get_settings.cache_clear()
    from_env = Hub(settings=get_settings(), db=hub.db)
    with pytest.raises(ConfigError, match="EVI_KEYS__PNR_ENCRYPTION") as refused:
        rotate_key(from_env, "pnr-encryption", actor="admin")
    assert key not in str(refused.value)
    assert _key_file(hub, "pnr-encryption").read_text().strip() == key


def test_a_failure_before_the_commit_changes_nothing(
    hub: Hub, stored: dict[str, Registered], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _ciphertexts(hub)
    key_before = _key_file(hub, "pnr-encryption").read_text()
    entries = len(ledger(hub.db))

    def half_way(session: Any, old: Any, new: Any) -> int:
        original(session, old, new)  # every row rewritten in the transaction, then a crash
        raise KeyboardInterrupt

    original = key_rotation._REWRITERS["pnr-encryption"]
    monkeypatch.setitem(key_rotation._REWRITERS, "pnr-encryption", half_way)
    with pytest.raises(KeyboardInterrupt):
        rotate_key(hub, "pnr-encryption", actor="admin")
    assert _ciphertexts(hub) == before
    assert _key_file(hub, "pnr-encryption").read_text() == key_before
    assert len(ledger(hub.db)) == entries
    monkeypatch.setitem(key_rotation._REWRITERS, "pnr-encryption", original)
    assert sorted(_numbers(_fresh(hub))) == sorted(PEOPLE)
    rotate_key(_fresh(hub), "pnr-encryption", actor="admin")  # the stale .next is replaced
    assert sorted(_numbers(_fresh(hub))) == sorted(PEOPLE)


def test_a_crash_after_the_commit_is_finished_by_the_next_command(
    hub: Hub, stored: dict[str, Registered], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_before = _key_file(hub, "pnr-encryption").read_text()

    def crash(*args: Any) -> Path:
        raise KeyboardInterrupt  # the database holds the new key's values; files not swapped

    monkeypatch.setattr(key_rotation, "swap", crash)
    with pytest.raises(KeyboardInterrupt):
        rotate_key(hub, "pnr-encryption", actor="admin")
    assert _key_file(hub, "pnr-encryption").read_text() == key_before
    reopened = _fresh(hub)
    assert sorted(_numbers(reopened)) == sorted(PEOPLE)  # opening the keys finished the swap
    assert _key_file(hub, "pnr-encryption").read_text() != key_before
    retired = list((_key_file(hub, "pnr-encryption").parent / "retired").iterdir())
    assert [p.read_text() for p in retired] == [key_before]


def test_a_process_that_loaded_the_old_key_cannot_write_or_misread_with_it(
    hub: Hub, stored: dict[str, Registered]
) -> None:
    stale = _fresh(hub)
    stale.keys  # noqa: B018 - loaded before the rotation, like a running web server
    rotate_key(hub, "pnr-encryption", actor="admin")
    newcomer = skatteverket_numbers(4)[-1]
    with pytest.raises(ConfigError, match="rotated since this process started"):
        ConsentService(stale).register(paper_submission(newcomer), actor="test")
    with pytest.raises(ConfigError, match="restart"):
        _numbers(stale)
    assert sorted(_numbers(_fresh(hub))) == sorted(PEOPLE)  # nothing was written


def test_a_process_older_than_a_secrets_rotation_is_told_to_restart(
    hub: Hub, stored: dict[str, Registered]
) -> None:
    stale = _fresh(hub)
    stale.keys  # noqa: B018 - loaded before the rotation, like a running worker
    rotate_key(hub, "connector-secrets", actor="admin")
    with pytest.raises(ConnectorConfigError) as refused:
        connectors.build_connector(stale, "kommun")
    assert "if the key was rotated since this process started" in refused.value.message
    assert "restart it" in refused.value.message and TOKEN not in refused.value.message
    assert _secret(_fresh(hub)) == TOKEN  # a restarted process reads it


def test_the_cli_says_what_a_rotation_would_rewrite_and_does_it_with_yes(
    hub: Hub, stored: dict[str, Registered], cli: Any
) -> None:
    before = _ciphertexts(hub)
    asked = cli("keys", "rotate", "pnr-encryption")
    assert asked.code == 2
    assert "3 stored values" in asked.err and "--yes" in asked.err
    assert _ciphertexts(hub) == before
    done = cli("keys", "rotate", "pnr-encryption", "--yes", "--actor", "anna.admin")
    assert done.code == 0, done.err
    assert "retired" in done.err
    listed = cli("keys", "list", "--json")
    assert listed.code == 0
    rows = {row["name"]: row for row in json.loads(listed.out)}
    new_key = base64.b64decode(_key_file(hub, "pnr-encryption").read_text())
    assert rows["pnr-encryption"]["fingerprint"] == key_fingerprint(new_key)
    assert rows["pseudonym"]["rotatable"] is False
    assert "identity numbers" in rows["pnr-encryption"]["protects"]
    assert "protects identity numbers" in cli("keys", "list").out
    for name in rows:
        assert _key_file(hub, name).read_text().strip() not in listed.out
    assert sorted(_numbers(_fresh(hub))) == sorted(PEOPLE)


def test_a_rotation_waits_for_a_running_sync(hub: Hub, stored: dict[str, Registered]) -> None:
    before = _ciphertexts(hub)
    with connector_lock(hub.db, "kommun"), pytest.raises(LockHeldError, match="kommun"):
        rotate_key(hub, "pnr-encryption", actor="admin")
    assert _ciphertexts(hub) == before
    rotate_key(hub, "pnr-encryption", actor="admin")  # the lock is released
    assert _ciphertexts(hub) != before
