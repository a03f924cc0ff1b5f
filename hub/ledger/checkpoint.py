"""Signed checkpoints: the ledger's size and root in the C2SP tlog-checkpoint format.

A checkpoint note (https://c2sp.org/tlog-checkpoint) is::

    <origin>
    <tree size, decimal>
    <base64 of the 32-byte root hash>

    — <origin> <base64(key ID || Ed25519 signature)>

Anyone with the verifier key (``evi log pubkey``) can check it with any signed-note
implementation. The sync job calls :func:`write_checkpoint` at the end of every run; an
administrator can ask for one with ``evi log checkpoint --new``.

After the transaction that stored a checkpoint commits, every ``evi_checkpoint_signed``
hook gets it (witnesses, write-once storage). A hook that fails does not undo the
checkpoint: the failure is logged and listed in :attr:`Checkpoint.witness_failures`.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pluggy
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from hub.ledger.hashing import HASH_SIZE, root_from_frontier
from hub.ledger.signing import NoteError, NoteVerifier, load_signer
from hub.ledger.writer import lock_head
from hub.settings import Settings
from hub.store.tables.ledger import LedgerCheckpointRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint as stored; ``note`` is the exact signed text."""

    id: int
    origin: str
    size: int
    root: bytes
    note: str
    created_at: datetime
    witness_failures: list[str] = field(default_factory=list, compare=False)


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_body(text: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint's text; raises :class:`NoteError` if malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not (size_text.isascii() and size_text.isdigit()) or (
        size_text != "0" and size_text.startswith("0")
    ):
        raise NoteError("the checkpoint's size line is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (ValueError, binascii.Error):
        raise NoteError("the checkpoint's root line is not base64") from None
    if len(root) != HASH_SIZE:
        raise NoteError("the checkpoint's root is not 32 bytes")
    return origin, int(size_text), root


def open_checkpoint(note: str, verifier: NoteVerifier) -> tuple[str, int, bytes]:
    """Verify a checkpoint note's signature and return its (origin, size, root).

    Raises :class:`NoteError` when the signature or the format is wrong, or the origin
    line is not the key's name.
    """
    origin, size, root = parse_body(verifier.open(note))
    if origin != verifier.name:
        raise NoteError(f"the checkpoint's origin '{origin}' is not '{verifier.name}'")
    return origin, size, root


def _from_row(row: LedgerCheckpointRow, origin: str) -> Checkpoint:
    return Checkpoint(row.id, origin, row.tree_size, bytes(row.root_hash), row.note, row.created_at)


def latest_checkpoint(session: Session) -> Checkpoint | None:
    row = session.scalars(
        select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return _from_row(row, row.note.split("\n", 1)[0])


def write_checkpoint(
    session: Session, settings: Settings, plugins: pluggy.PluginManager
) -> Checkpoint:
    """Sign and store a checkpoint of the ledger as it stands in this transaction.

    Takes the writer lock, so the checkpoint covers exactly the entries committed before
    it (and any this transaction appended). If the ledger has not grown since the latest
    checkpoint, that checkpoint is returned and nothing is written or handed on. Creates
    the signing key on first use. Hooks run after the caller commits. Never commits.
    """
    signer = load_signer(session, settings, create=True)
    size, frontier = lock_head(session)
    latest = latest_checkpoint(session)
    if latest is not None and latest.size == size and latest.origin == signer.name:
        return latest
    root = root_from_frontier(frontier)
    note = signer.sign(checkpoint_body(signer.name, size, root))
    row = LedgerCheckpointRow(
        tree_size=size, root_hash=root, note=note, created_at=datetime.now(UTC)
    )
    session.add(row)
    session.flush()
    checkpoint = _from_row(row, signer.name)

    def _after_commit(_session: Session) -> None:
        checkpoint.witness_failures.extend(publish_checkpoint(checkpoint, settings, plugins))

    event.listen(session, "after_commit", _after_commit, once=True)
    return checkpoint


def publish_checkpoint(
    checkpoint: Checkpoint, settings: Settings, plugins: pluggy.PluginManager
) -> list[str]:
    """Hand a stored checkpoint to every ``evi_checkpoint_signed`` hook.

    Each plugin is called even if another fails; returns one line per failure (plugin
    name and what went wrong).
    """
    failures: list[str] = []
    for impl in plugins.hook.evi_checkpoint_signed.get_hookimpls():
        offered = {"checkpoint": checkpoint, "settings": settings}
        try:
            impl.function(**{name: offered[name] for name in impl.argnames})
        except Exception as exc:
            failures.append(f"{impl.plugin_name}: {_describe(exc)}")
            log.warning(
                "witness plugin %s failed on checkpoint of size %d: %s",
                impl.plugin_name,
                checkpoint.size,
                _describe(exc),
            )
    return failures


def _describe(exc: Exception) -> str:
    # File-system errors name the path the operator must fix; other messages could carry
    # anything a plugin put there, so only their type is shown.
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror} ({exc.filename})"
    return type(exc).__name__
