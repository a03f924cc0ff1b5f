"""Web users and their tokens: add, list, disable, enable, replace a token, authenticate.

A token is ``secrets.token_urlsafe(32)`` (256 random bits). It is returned once, when it
is issued, and only its SHA-256 is stored: a request's token is looked up by its digest,
so the database never holds a token that would let anyone sign in, and a token that was
replaced or belongs to a disabled user no longer matches anyone. Enabling a disabled user
again issues a new token (:func:`enable_user`): the token they had when they were
disabled, perhaps the reason they were, never works again.

Every change of who may sign in (a user added, disabled, enabled, given a new token) is a
ledger entry (action ``access_changed``) in the same transaction as the change, naming the
administrator as actor and the user, party and role in its reason: a privacy officer can
tell who had access when.

This module imports no FastAPI: `evi users …` uses it too.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from hub.context import Hub
from hub.errors import InputError, NotFoundError
from hub.ledger.event import IDENTITY_NUMBER, Action, ActorRole, LedgerEvent
from hub.ledger.writer import append
from hub.model.vocab import Party
from hub.store.tables.users import WebUserRow
from hub.store.users import UserRepository

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class Role(StrEnum):
    """What a web user may do; each router requires one or more of these."""

    CASEWORKER = ActorRole.CASEWORKER.value
    PRIVACY_OFFICER = ActorRole.PRIVACY_OFFICER.value
    STEERING_GROUP = ActorRole.STEERING_GROUP.value
    ADMINISTRATOR = ActorRole.ADMINISTRATOR.value


@dataclass(frozen=True)
class WebUser:
    """A signed-in user as the web edge sees them (never their token or its digest)."""

    name: str
    party: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @property
    def actor(self) -> str:
        """Who this user is in a ledger entry's ``actor`` field."""
        return self.name

    def as_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "party": self.party,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


@dataclass(frozen=True)
class IssuedToken:
    """A user and the token just issued to them: show the token once, then forget it."""

    user: WebUser
    token: str


def token_digest(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random token (256 bits) and its stored form."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def web_user(row: WebUserRow) -> WebUser:
    """The user a stored row describes (without its token digest)."""
    return WebUser(
        name=row.name,
        party=row.party,
        role=Role(row.role),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        last_used_at=row.last_used_at,
    )


def known_parties(hub: Hub) -> list[str]:
    """The parties a user can belong to: the built-in ones and every installed connector."""
    from hub.connector import registry

    return registry.known_parties(hub.plugins)


def _check_name(name: str) -> None:
    # The name is the actor of the user's every log entry: never an identity number.
    if not _NAME.match(name) or IDENTITY_NUMBER.search(name):
        raise InputError(
            "a user name is 2 to 64 characters: lowercase letters, digits, '.', '-' or '_', "
            "starting with a letter or digit (e.g. anna.af), and no identity number"
        )


def _check_party(hub: Hub, party: Party) -> None:
    parties = known_parties(hub)
    if party not in parties:
        raise InputError(f"--party is one of: {', '.join(parties)}")


def add_user(hub: Hub, name: str, party: str, role: Role, *, actor: str) -> IssuedToken:
    """Add a user and issue their first token. Raises :class:`InputError` for a bad or
    taken name or an unknown party."""
    _check_name(name)
    _check_party(hub, party)
    hub.require_schema()  # the web tables came with revisions 0002-0004
    token, digest = new_token()
    with hub.db.session(write_lock=True) as session:
        users = UserRepository(session)
        taken = users.by_name(name)
        if taken is not None:
            again = (
                f"enable them again with `evi users enable {name}`"
                if taken.disabled_at is not None
                else f"issue them a new token with `evi users token {name}`"
            )
            raise InputError(
                f"a user named '{name}' already exists; choose another name, or {again}"
            )
        row = WebUserRow(
            name=name,
            party=party,
            role=role.value,
            token_sha256=digest,
            created_at=datetime.now(UTC),
        )
        users.add(row)
        user = web_user(row)
        append(session, _access_event(actor, "added", user))
    return IssuedToken(user, token)


def list_users(hub: Hub) -> list[WebUser]:
    hub.require_schema()
    with hub.db.session() as session:
        return [web_user(row) for row in UserRepository(session).all()]


def count_active_users(hub: Hub) -> int:
    hub.require_schema()
    with hub.db.session() as session:
        return UserRepository(session).count_active()


def _access_event(actor: str, what: str, user: WebUser) -> LedgerEvent:
    return LedgerEvent(
        action=Action.ACCESS_CHANGED,
        actor=actor,
        role=ActorRole.ADMINISTRATOR,
        recipient=user.party,
        reason=f"{what}: web user {user.name} ({user.party}, {user.role.value})",
    )


def _existing(users: UserRepository, name: str) -> WebUserRow:
    row = users.by_name(name)
    if row is None:
        named = "by that name" if IDENTITY_NUMBER.search(name) else f"named '{name}'"
        raise NotFoundError(f"there is no user {named}; see `evi users list`")
    return row


def disable_user(hub: Hub, name: str, *, actor: str) -> WebUser:
    """Disable a user: their token stops working at once. Disabling twice is harmless."""
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        users = UserRepository(session)
        row = _existing(users, name)
        if row.disabled_at is None:
            row.disabled_at = datetime.now(UTC)
            users.end_sessions_of(row.id)
            append(session, _access_event(actor, "disabled", web_user(row)))
        return web_user(row)


def replace_token(hub: Hub, name: str, *, actor: str) -> IssuedToken:
    """Issue a new token for an active user; the old one stops working at once. A
    disabled user is refused (:class:`InputError`): `evi users enable` gives them one."""
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        users = UserRepository(session)
        row = _existing(users, name)
        if row.disabled_at is not None:
            raise InputError(
                f"user '{name}' is disabled; to let them sign in again, enable them with a "
                f"new token: `evi users enable {name}`"
            )
        return _issue_token(users, row, actor, "new token")


def enable_user(hub: Hub, name: str, *, actor: str) -> IssuedToken:
    """Make a disabled user active again with a new token (the token they had stays
    useless). Raises :class:`InputError` if they are active already."""
    hub.require_schema()
    with hub.db.session(write_lock=True) as session:
        users = UserRepository(session)
        row = _existing(users, name)
        if row.disabled_at is None:
            raise InputError(
                f"user '{name}' is already active; to replace their token use "
                f"`evi users token {name}`"
            )
        row.disabled_at = None
        return _issue_token(users, row, actor, "enabled with a new token")


def _issue_token(users: UserRepository, row: WebUserRow, actor: str, what: str) -> IssuedToken:
    """Give ``row`` a fresh token in place of the one it had, end all its page sessions
    and record the change (``what``) in the ledger, in the caller's transaction."""
    token, digest = new_token()
    row.token_sha256 = digest
    users.end_sessions_of(row.id)
    append(users.session, _access_event(actor, what, web_user(row)))
    return IssuedToken(web_user(row), token)


LAST_USED_STEP = timedelta(hours=1)
"""How fresh ``last_used_at`` is kept: a request writes it only when it is older than this,
so an API client's every request does not become a write."""


def authenticate(hub: Hub, token: str) -> WebUser | None:
    """The active user holding ``token``, or ``None`` (unknown, replaced or disabled)."""
    if not token:
        return None
    with hub.db.session() as session:
        row = UserRepository(session).by_token_digest(token_digest(token))
        if row is None or row.disabled_at is not None:
            return None
        user = web_user(row)
    now = datetime.now(UTC)
    if user.last_used_at is None or now - user.last_used_at >= LAST_USED_STEP:
        with hub.db.session(write_lock=True) as session:
            UserRepository(session).mark_used(user.name, now)
    return user
