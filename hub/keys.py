"""The hub's symmetric keys and what they protect.

Four 32-byte keys, each from ``EVI_KEYS__<NAME>`` (base64) or a file
``$EVI_HOME/keys/<name>.key`` (base64, mode 0600):

* ``pnr-encryption``: AES-256-GCM over the personnummer at rest;
* ``pnr-lookup``: keyed HMAC that lets the hub find a participant by number;
* ``pseudonym``: a separate keyed HMAC giving the participant pseudonym used in logs
  and the ledger (never reversible without the key);
* ``connector-secrets``: AES-256-GCM over secrets in connector configuration.

The database records a fingerprint of each key the first time it is used. Opening it
later without a key, or with a different key, fails with a message naming the key;
a key is only ever created when the database has never seen one, so nothing is lost
or overwritten.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from hub.errors import ConfigError
from hub.ownership import require_own
from hub.settings import Settings

KEY_NAMES = ("pnr-encryption", "pnr-lookup", "pseudonym", "connector-secrets")
PROTECTS = {
    "pnr-encryption": "identity numbers at rest (AES-256-GCM)",
    "pnr-lookup": "finding a person by number (keyed HMAC)",
    "pseudonym": "pseudonyms in logs and the ledger (keyed HMAC)",
    "connector-secrets": "connector secrets and consent evidence (AES-256-GCM)",
}
"""What each key protects, as `evi keys list` says it."""
ENCRYPTING = ("pnr-encryption", "connector-secrets")
"""The keys whose ciphertexts the database keeps (and :mod:`hub.key_rotation` rewrites)."""
_NONCE = 12


def env_var_for(name: str) -> str:
    return "EVI_KEYS__" + name.replace("-", "_").upper()


def key_fingerprint(key: bytes) -> str:
    return hmac.new(key, b"evi-hub key fingerprint v1", hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class KeySource:
    """Where one key comes from: the environment or a file under ``keys/``."""

    name: str
    from_env: SecretStr | None
    path: Path

    def load(self) -> bytes | None:
        if self.from_env is not None:
            return _decode(self.name, self.from_env.get_secret_value(), env_var_for(self.name))
        if self.path.is_file():
            require_own(self.path.parent, "the key directory")
            require_own(self.path, "key file", private=True)
            try:  # a damaged file may hold anything: never shown, never an internal error
                text = self.path.read_bytes().decode("ascii")
            except UnicodeDecodeError:
                raise ConfigError(f"key '{self.name}' in {self.path} is not valid base64") from None
            return _decode(self.name, text.strip(), str(self.path))
        return None

    def create(self) -> bytes:
        key = secrets.token_bytes(32)
        write_key_file(self.path, key)
        return key

    def where(self) -> str:
        return f"{self.path} or the environment variable {env_var_for(self.name)}"


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` (base64, mode 0600, in a 0700 directory), replacing a
    stale file, synced to disk before this returns."""
    home = path.parent.parent
    if not home.exists():  # the home made for the keys alone (PostgreSQL): private too
        home.mkdir(mode=0o700, parents=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    sync_dir(path.parent)


def sync_dir(path: Path) -> None:
    """Make a directory's entries (a file created, renamed or replaced) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _decode(name: str, text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"key '{name}' in {where} is not valid base64") from None
    if len(key) != 32:
        raise ConfigError(f"key '{name}' in {where} must be 32 bytes, got {len(key)}")
    return key


def key_sources(settings: Settings) -> dict[str, KeySource]:
    env = settings.keys
    given = {
        "pnr-encryption": env.pnr_encryption,
        "pnr-lookup": env.pnr_lookup,
        "pseudonym": env.pseudonym,
        "connector-secrets": env.connector_secrets,
    }
    return {
        name: KeySource(name, given[name], settings.keys_dir / f"{name}.key") for name in KEY_NAMES
    }


class KeyRing:
    """The loaded keys and what they do; built by :func:`hub.store.meta.open_keyring`."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        missing = set(KEY_NAMES) - keys.keys()
        if missing:
            raise ConfigError(f"key ring incomplete: {', '.join(sorted(missing))}")
        self._keys = dict(keys)
        self._pnr_aead = AESGCM(keys["pnr-encryption"])
        self._secret_aead = AESGCM(keys["connector-secrets"])

    def with_key(self, name: str, key: bytes) -> KeyRing:
        """This ring with ``name`` replaced by ``key`` (for a rotation, see
        :mod:`hub.key_rotation`)."""
        return KeyRing({**self._keys, name: key})

    def fingerprint(self, name: str) -> str:
        """The fingerprint the database records for key ``name`` (not secret)."""
        return key_fingerprint(self._keys[name])

    # -- personnummer at rest ------------------------------------------------------
    def lookup_digest(self, number: str) -> str:
        """Keyed HMAC of the 12-digit number, for finding a participant by number."""
        return hmac.new(self._keys["pnr-lookup"], number.encode(), hashlib.sha256).hexdigest()

    def pseudonym(self, number: str) -> str:
        """The participant pseudonym used in logs and the ledger."""
        digest = hmac.new(self._keys["pseudonym"], number.encode(), hashlib.sha256).hexdigest()
        return "p-" + digest[:32]

    def encrypt_number(self, number: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._pnr_aead.encrypt(nonce, number.encode(), b"evi:pnr:v1")

    def decrypt_number(self, blob: bytes) -> str:
        try:
            plain = self._pnr_aead.decrypt(blob[:_NONCE], blob[_NONCE:], b"evi:pnr:v1")
        except InvalidTag:
            raise ConfigError(
                "a stored identity number does not open with the loaded 'pnr-encryption' "
                "key; if the key was rotated since this process started, restart it"
            ) from None
        return plain.decode()

    # -- connector secrets ------------------------------------------------------------
    def encrypt_secret(self, value: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        blob = nonce + self._secret_aead.encrypt(nonce, value.encode(), context.encode())
        return base64.b64encode(blob).decode()

    def decrypt_secret(self, token: str, context: str) -> str:
        blob = base64.b64decode(token)
        return self._secret_aead.decrypt(blob[:_NONCE], blob[_NONCE:], context.encode()).decode()

    def __repr__(self) -> str:
        return "KeyRing(<keys hidden>)"
