"""Rotating an encryption key: a new key, every ciphertext rewritten, the old key retired.

Two keys encrypt what the database keeps (:data:`hub.keys.ENCRYPTING`):

* ``pnr-encryption``: every participant's identity number;
* ``connector-secrets``: connector secrets and the sealed evidence of every consent version.

``evi keys rotate NAME`` makes a new random key and, in one write transaction, opens every
ciphertext of the old key and seals it again with the new one, records the new key's
fingerprint and appends a ``key_rotated`` ledger entry (who, which key, how many values).
Either all of that commits or none of it does.

The new key is written beside the old one before the transaction and takes its place
after the commit, so that a crash at any moment leaves a hub that opens (see
:mod:`hub.key_files`).

The two keyed-hash keys are not rotated: ``pseudonym`` names people in the append-only
ledger (a new key would cut every person's history in two), and ``pnr-lookup`` is how every
process finds a person by number (a process still holding the old key would register the
same person again). Both are one-way: neither can reveal a stored identity number.

Written here rather than taken from a library: the rewriting is specific to the hub's
tables. A key-management service (a KMS, Vault) can hold the keys instead, through
``EVI_KEYS__*``; rotating those is then done there (the hub refuses to, see
:func:`rotatable_source`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.errors import ConfigError, InputError
from hub.key_files import next_path, swap
from hub.keys import ENCRYPTING, KeyRing, KeySource, env_var_for, key_sources, write_key_file
from hub.ledger.event import Action, ActorRole, LedgerEvent
from hub.ledger.writer import append
from hub.store.meta import set_meta
from hub.store.tables.connectors import ConnectorConfigRow
from hub.store.tables.consent import ConsentVersionRow
from hub.store.tables.meta import HubMeta
from hub.store.tables.participant import ParticipantRow
from hub.sync.lock import require_no_sync

if TYPE_CHECKING:
    from hub.context import Hub

NOT_ROTATED = {
    "pseudonym": "it names people in the append-only transfer log; a new key would cut "
    "every person's history in two",
    "pnr-lookup": "every process finds people by it; one still holding the old key would "
    "register the same person again. It is a keyed hash and cannot reveal a number",
}


@dataclass(frozen=True)
class Rotation:
    """What a rotation did."""

    name: str
    rewritten: int
    retired: Path
    fingerprint: str


def rotatable_source(hub: Hub, name: str) -> KeySource:
    """The file source of key ``name``; a clear error if it cannot be rotated here."""
    if name in NOT_ROTATED:
        raise InputError(f"the key '{name}' is not rotated: {NOT_ROTATED[name]}")
    if name not in ENCRYPTING:
        raise InputError(f"no key named '{name}'; rotatable keys: {', '.join(ENCRYPTING)}")
    source = key_sources(hub.settings)[name]
    if source.from_env is not None:
        raise ConfigError(
            f"the key '{name}' comes from {env_var_for(name)}: rotate it where that value "
            "is kept, or unset the variable and keep the key in "
            f"{source.path} to rotate it here"
        )
    return source


def values_to_rewrite(hub: Hub, name: str) -> int:
    """How many stored values key ``name`` encrypts (what a rotation would rewrite)."""
    with hub.db.session() as session:
        return _REWRITERS[name](session, None, None)


def rotate_key(hub: Hub, name: str, *, actor: str) -> Rotation:
    """Rotate key ``name`` (see the module docstring); raises before changing anything if
    it cannot be rotated."""
    source = rotatable_source(hub, name)
    require_no_sync(hub.db, "a key rotation")
    old = hub.keys  # checks every key against the database (and finishes a rotation)
    key = secrets.token_bytes(32)
    pending = next_path(source)
    write_key_file(pending, key)
    new = old.with_key(name, key)
    with hub.db.session(write_lock=True) as session:
        recorded = session.execute(
            select(HubMeta.value).where(HubMeta.key == f"key:{name}").with_for_update()
        ).scalar_one_or_none()
        if recorded != old.fingerprint(name):
            raise ConfigError(
                f"the key '{name}' changed while it was being rotated; nothing was changed"
            )
        rewritten = _REWRITERS[name](session, old, new)
        set_meta(session, f"key:{name}", new.fingerprint(name))
        append(
            session,
            LedgerEvent(
                action=Action.KEY_ROTATED,
                actor=actor,
                role=ActorRole.ADMINISTRATOR,
                reason=f"{name}: {rewritten} stored values encrypted again with the new key",
            ),
        )
    retired = swap(source, pending)
    hub.reload_keys()
    return Rotation(name, rewritten, retired, new.fingerprint(name))


Rewriter = Callable[[Session, KeyRing | None, KeyRing | None], int]
"""Rewrites one key's ciphertexts from the first ring to the second, returning how many;
with no rings, only counts them."""


def _rewrite_numbers(session: Session, old: KeyRing | None, new: KeyRing | None) -> int:
    rows = session.execute(select(ParticipantRow.id, ParticipantRow.pnr_ciphertext)).all()
    if old is not None and new is not None and rows:
        session.execute(
            update(ParticipantRow),
            [
                {"id": pid, "pnr_ciphertext": new.encrypt_number(old.decrypt_number(blob))}
                for pid, blob in rows
            ],
        )
    return len(rows)


def _rewrite_secrets(session: Session, old: KeyRing | None, new: KeyRing | None) -> int:
    from hub.connector.service import secret_context
    from hub.consent.service import evidence_context

    count = 0
    for row in session.scalars(select(ConnectorConfigRow)).all():
        count += len(row.secrets)
        if old is not None and new is not None and row.secrets:
            row.secrets = {
                option: _reseal(old, new, sealed, secret_context(row.name, option))
                for option, sealed in row.secrets.items()
            }
    versions = session.execute(
        select(
            ConsentVersionRow.id,
            ConsentVersionRow.consent_id,
            ConsentVersionRow.version,
            ConsentVersionRow.evidence_sealed,
        )
    ).all()
    if old is not None and new is not None and versions:
        session.execute(
            update(ConsentVersionRow),
            [
                {"id": vid, "evidence_sealed": _reseal(old, new, sealed, evidence_context(cid, v))}
                for vid, cid, v, sealed in versions
            ],
        )
    return count + len(versions)


def _reseal(old: KeyRing, new: KeyRing, sealed: str, context: str) -> str:
    return new.encrypt_secret(old.decrypt_secret(sealed, context), context)


_REWRITERS: dict[str, Rewriter] = {
    "pnr-encryption": _rewrite_numbers,
    "connector-secrets": _rewrite_secrets,
}
