"""The ledger's Ed25519 signing key and C2SP signed notes (https://c2sp.org/signed-note).

The key lives outside the database: ``$EVI_HOME/keys/ledger-signing.key`` (base64 of the
32-byte Ed25519 seed, mode 0600, created on first use) or ``EVI_KEYS__LEDGER_SIGNING``.
As for the hub's other keys (:mod:`hub.store.meta`), the database records the key's
fingerprint in ``hub_meta`` the first time it signs; later a missing or different key is
refused with a message naming it, never silently replaced, because a new key would make
every earlier checkpoint unverifiable with the published public key.

Signed-note encoding, written by hand because no maintained Python package implements it
(it is a few lines over ``cryptography``'s Ed25519):

* key ID = first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key);
* verifier key ("vkey") = ``name+<key ID hex>+<base64(0x01 || public key)>``;
* a note is its text (ending in a newline), a blank line, then one line per signature
  ``— name base64(key ID || signature)``; the signature covers the text only.

Checked against the Go reference example (tests/data/ledger/signed_note_vectors.json).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import ConfigError, EviError, InputError
from hub.keys import KeySource, key_fingerprint
from hub.settings import Settings
from hub.store.tables.ledger import LedgerCheckpointRow
from hub.store.tables.meta import HubMeta

KEY_NAME = "ledger-signing"
META_KEY = f"key:{KEY_NAME}"
ORIGIN_KEY = "ledger:origin"
ED25519 = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space


class NoteError(ValueError):
    """A signed note is malformed or its signature does not verify."""


def _check_name(name: str) -> str:
    if not name or any(ch.isspace() for ch in name) or "+" in name:
        raise ConfigError(
            f"ledger origin '{name}' cannot name a signing key: it must be non-empty with "
            "no spaces or '+'; set EVI_LEDGER__ORIGIN (e.g. evi-hub.example.se/ledger)"
        )
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    """A public key that can check notes signed under ``name``."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        """The C2SP verifier key string, as printed by ``evi log pubkey``."""
        encoded = base64.b64encode(ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def pem(self) -> str:
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``name+hexid+base64``; raises :class:`InputError` if it is not one."""
        parts = vkey.strip().split("+", 2)
        try:
            name, hex_id, encoded = parts
            raw = base64.b64decode(encoded, validate=True)
            wanted = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error):
            raise InputError(
                "not a verifier key; expected NAME+KEYID+BASE64 as printed by `evi log pubkey`"
            ) from None
        if len(raw) != 33 or raw[:1] != ED25519:
            raise InputError("the verifier key is not an Ed25519 signed-note key")
        verifier = cls(name, raw[1:])
        if verifier.key_id != wanted:
            raise InputError("the verifier key's ID does not match its name and key")
        return verifier

    def open(self, note: str) -> str:
        """The note's text if it carries a valid signature by this key, else :class:`NoteError`."""
        text, sep, signatures = note.rpartition("\n\n")
        if not sep or not signatures.endswith("\n"):
            raise NoteError("not a signed note: no blank line before the signatures")
        text += "\n"
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        for line in signatures[:-1].split("\n"):
            if not line.startswith(SIGNATURE_PREFIX):
                raise NoteError("a signature line does not start with '— '")
            name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
            try:
                blob = base64.b64decode(encoded, validate=True)
            except (ValueError, binascii.Error):
                raise NoteError("a signature is not valid base64") from None
            if name != self.name or blob[:4] != self.key_id:
                continue
            try:
                key.verify(blob[4:], text.encode())
            except InvalidSignature:
                raise NoteError(f"the signature by '{self.name}' does not verify") from None
            return text
        raise NoteError(f"the note carries no signature by '{self.name}' with this key")


@dataclass(frozen=True, repr=False)
class NoteSigner:
    """The private key; ``repr`` hides it."""

    name: str
    seed: bytes

    def __repr__(self) -> str:
        return f"NoteSigner({self.name!r}, <key hidden>)"

    @property
    def verifier(self) -> NoteVerifier:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return NoteVerifier(self.name, raw)

    def sign(self, text: str) -> str:
        """The signed note: ``text`` (must end in a newline), a blank line, the signature."""
        if not text.endswith("\n") or "\n\n" in text:
            raise ValueError("note text must end in one newline and contain no blank line")
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(text.encode())
        blob = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


def _source(settings: Settings) -> KeySource:
    return KeySource(KEY_NAME, settings.keys.ledger_signing, settings.keys_dir / f"{KEY_NAME}.key")


def load_signer(session: Session, settings: Settings, *, create: bool = False) -> NoteSigner:
    """The ledger signing key, checked against the fingerprint this database recorded.

    ``create=True`` is for signing: a key is created if there is none, and its fingerprint
    is recorded (in the caller's transaction) if this database has never recorded one;
    otherwise nothing is written. Raises
    :class:`ConfigError` naming the key and where it belongs when it is missing or is not
    the key on record; nothing is written then.
    """
    name = _check_name(settings.ledger.origin)
    _check_origin(session, name)
    source = _source(settings)
    row = session.get(HubMeta, META_KEY)
    seed = source.load()
    if row is not None:
        if seed is None:
            raise ConfigError(
                f"key '{KEY_NAME}' is missing: this ledger's checkpoints were signed with it. "
                f"Restore it to {source.where()} (from your key backup); nothing was changed"
            )
        if key_fingerprint(seed) != row.value:
            raise ConfigError(
                f"key '{KEY_NAME}' at {source.where()} is not the key this ledger was signed "
                "with; restore the right key; nothing was changed"
            )
        return NoteSigner(name, seed)
    if seed is None:
        if not create:
            raise ConfigError(
                f"no ledger signing key yet: it is created with the first checkpoint "
                f"(`evi log checkpoint --new`), or put one in {source.where()}"
            )
        seed = source.create()
    if create:  # about to sign: from now on this database insists on this key and origin
        session.add(HubMeta(key=META_KEY, value=key_fingerprint(seed)))
        if session.get(HubMeta, ORIGIN_KEY) is None:
            session.add(HubMeta(key=ORIGIN_KEY, value=name))
        session.flush()
    return NoteSigner(name, seed)


def check_signer(session: Session, settings: Settings) -> None:
    """Refuse now what signing a checkpoint would refuse later: an origin other than the
    recorded one, or a signing key other than the one on record (each a ConfigError
    saying what to set back). For a command that does a night's work before it signs. A
    database that has never signed passes: its first checkpoint creates the key."""
    _check_origin(session, _check_name(settings.ledger.origin))
    if session.get(HubMeta, META_KEY) is not None:
        load_signer(session, settings)


def _check_origin(session: Session, name: str) -> None:
    """Refuse an origin other than the one this ledger's checkpoints were signed as.

    A checkpoint names its log by its origin line and is verified against it: signed under
    a new origin, the log could never be verified as one again, under either name. The
    origin is recorded with the first checkpoint (``hub_meta``); a database from before
    that is judged by its latest checkpoint's origin line."""
    row = session.get(HubMeta, ORIGIN_KEY)
    latest = _latest_origin(session)
    if row is not None and latest is not None and row.value != latest:
        raise OriginConflictError(
            f"the origin recorded in the database ('{row.value}') is not the one its latest "
            f"checkpoint is signed as ('{latest}'): one of them was changed; verify the "
            "checkpoints with the ledger's public key (`evi log verify --pubkey …`)"
        )
    recorded = row.value if row is not None else latest
    if recorded is not None and recorded != name:
        raise ConfigError(
            f"this ledger's checkpoints are signed as '{recorded}', but [ledger] origin is "
            f"'{name}'; set it back (EVI_LEDGER__ORIGIN={recorded}): a log's origin cannot "
            "change; nothing was changed"
        )


def _latest_origin(session: Session) -> str | None:
    note = session.scalar(
        select(LedgerCheckpointRow.note).order_by(LedgerCheckpointRow.id.desc()).limit(1)
    )
    return note.split("\n", 1)[0] if note else None


class OriginConflictError(EviError):
    """The origin the database records and the one its checkpoints are signed as differ:
    the record was tampered with (exit 4, as a ledger that does not verify)."""

    exit_code = 4
    http_status = 500
