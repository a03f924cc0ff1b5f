"""Key fingerprints in ``hub_meta``: the database remembers which keys wrote it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import ConfigError
from hub.key_files import finish_rotation
from hub.keys import ENCRYPTING, KeyRing, key_fingerprint, key_sources
from hub.settings import Settings
from hub.store.tables.meta import HubMeta


def open_keyring(session: Session, settings: Settings) -> KeyRing:
    """Load every key, creating one only where this database has never recorded it.

    Raises :class:`ConfigError` naming the key when the database knows a key that cannot
    be found, or when a key does not match the fingerprint on record. Nothing is written
    in that case.
    """
    sources = key_sources(settings)
    loaded: dict[str, bytes | None] = {}
    recorded: dict[str, str | None] = {}
    for name, source in sources.items():
        row = session.get(HubMeta, f"key:{name}")
        recorded[name] = row.value if row else None
        loaded[name] = source.load()
        known = recorded[name]
        if (
            known
            and key_fingerprint(loaded[name] or b"") != known
            and finish_rotation(source, known)
        ):
            loaded[name] = source.load()  # a rotation had committed; its new key is now in place
        if recorded[name] and loaded[name] is None:
            raise ConfigError(
                f"key '{name}' is missing: this database was written with it. Restore it to "
                f"{source.where()} (from your key backup); nothing was changed"
            )
        if recorded[name] and key_fingerprint(loaded[name] or b"") != recorded[name]:
            raise ConfigError(
                f"key '{name}' at {source.where()} is not the key this database was "
                "written with; restore the right key; nothing was changed"
            )
    keys: dict[str, bytes] = {}
    for name, source in sources.items():
        key = loaded[name]
        if key is None:
            key = source.create()
        if recorded[name] is None:
            session.add(HubMeta(key=f"key:{name}", value=key_fingerprint(key)))
        keys[name] = key
    return KeyRing(keys)


def require_current_keys(
    session: Session, keys: KeyRing, names: tuple[str, ...] = ENCRYPTING
) -> None:
    """Refuse to encrypt with a key that was rotated since ``keys`` was loaded.

    Called in a write transaction before it stores a ciphertext: a process started before
    a rotation (a web server, say) must not write values the new key cannot open. On
    PostgreSQL the fingerprints are read ``FOR SHARE``, so a rotation (which takes them
    ``FOR UPDATE``) waits for this transaction to end, or this one for the rotation.
    """
    rows = session.execute(
        select(HubMeta.key, HubMeta.value)
        .where(HubMeta.key.in_([f"key:{name}" for name in names]))
        .with_for_update(read=True)
    ).all()
    for key, value in rows:
        name = key.removeprefix("key:")
        if value != keys.fingerprint(name):
            raise ConfigError(
                f"the key '{name}' was rotated since this process started; restart it and "
                "try again; nothing was written"
            )


def get_meta(session: Session, key: str) -> str | None:
    """A value from ``hub_meta`` (``None`` when unset)."""
    row = session.get(HubMeta, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str) -> None:
    """Set a value in ``hub_meta``. Never commits."""
    row = session.get(HubMeta, key)
    if row is None:
        session.add(HubMeta(key=key, value=value))
    else:
        row.value = value
