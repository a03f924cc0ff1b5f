"""Page sessions: what the session cookie stands for once a user has signed in.

``POST /login`` checks the user's token and opens a session: a fresh random secret (256
bits, made like a token by :func:`hub.web.users.new_token`) goes into the cookie, and only
its SHA-256 is stored, with the user and the moment it expires. The cookie never holds
the token itself, so a copied cookie is worth one working day at most, and signing out
ends it on the server too, not only in the browser.

A session is honoured only while it has not expired (:data:`SESSION_SECONDS`, checked by
the server whatever the browser keeps) and its user is active; disabling a user or giving
them a new token ends all their sessions (:mod:`hub.web.users`). Expired sessions are
cleared whenever someone signs in, so the table holds only the sessions of one working day.

This module imports no FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hub.clock import Clock, utc_now
from hub.context import Hub
from hub.store.tables.users import WebSessionRow
from hub.store.users import UserRepository
from hub.web.users import WebUser, new_token, token_digest, web_user

SESSION_SECONDS = 8 * 3600
"""How long a page session lasts before the token must be given again: a working day."""


@dataclass(frozen=True)
class OpenedSession:
    """A session just opened: its secret (for the cookie, never stored) and its user."""

    secret: str
    user: WebUser


def open_session(hub: Hub, token: str, *, clock: Clock = utc_now) -> OpenedSession | None:
    """Sign in with ``token``: the new session, or ``None`` if the token belongs to no
    active user."""
    if not token:
        return None
    hub.require_schema()
    now = clock()
    secret, digest = new_token()
    with hub.db.session(write_lock=True) as session:
        users = UserRepository(session)
        row = users.by_token_digest(token_digest(token))
        if row is None or row.disabled_at is not None:
            return None
        users.end_expired_sessions(now)
        row.last_used_at = now
        users.add_session(
            WebSessionRow(
                secret_sha256=digest,
                user_id=row.id,
                created_at=now,
                expires_at=now + timedelta(seconds=SESSION_SECONDS),
            )
        )
        return OpenedSession(secret, web_user(row))


def session_user(hub: Hub, secret: str, *, clock: Clock = utc_now) -> WebUser | None:
    """The active user whose unexpired session ``secret`` is, or ``None``."""
    if not secret:
        return None
    with hub.db.session() as session:
        found = UserRepository(session).by_session_digest(token_digest(secret))
        if found is None:
            return None
        opened, row = found
        if opened.expires_at <= clock() or row.disabled_at is not None:
            return None
        return web_user(row)


def end_session(hub: Hub, secret: str) -> WebUser | None:
    """Sign out: the session ``secret`` stops working; returns whose it was (``None`` if
    there was no such session). Ending it twice is harmless."""
    if not secret:
        return None
    digest = token_digest(secret)
    with hub.db.session(write_lock=True) as session:
        users = UserRepository(session)
        found = users.by_session_digest(digest)
        users.end_session(digest)
        return None if found is None else web_user(found[1])
