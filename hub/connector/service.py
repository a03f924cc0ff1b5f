"""Connector administration: list, configure, enable, build and check; sync results.

This service owns the connector configuration use cases and opens ``hub.db.session()``
for each; :func:`record_sync_result` is the exception, it writes inside the sync job's
own transaction. Secrets are encrypted with ``hub.keys.encrypt_secret`` bound to the
connector and option name, decrypted only to build a connector, and never returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.connector.base import Connector
from hub.connector.errors import ConnectorConfigError
from hub.connector.expiry import CertificateNotice, expiring, stored_certificate_expiry
from hub.connector.options import (
    ConnectorOptions,
    build_options,
    masked,
    options_schema,
    secret_fields,
    to_storable,
    validate_values,
)
from hub.connector.registry import RegisteredConnector, get_connector, load_connectors
from hub.connector.retry import RetryPolicy
from hub.context import Hub
from hub.errors import InputError
from hub.ledger.event import Action, ActorRole, LedgerEvent
from hub.ledger.writer import append
from hub.store.connector_config import ConnectorConfigRepository
from hub.store.meta import require_current_keys
from hub.store.tables.connectors import ConnectorConfigRow
from hub.store.tables.sync import Subscription, SyncCursor

STATUS_FAILED = "failed"
"""The sync status that counts towards pausing a connector; any other status resets it."""


@dataclass(frozen=True)
class ConnectorStatus:
    """What ``evi connectors list`` shows for one installed connector."""

    name: str
    authority: str
    version: str
    plugin: str
    enabled: bool
    paused: bool
    last_sync: datetime | None
    status: str | None
    last_error: str | None
    client_cert_expires: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The stable JSON shape other tools rely on (docs/connectors.md)."""
        return {
            "name": self.name,
            "authority": self.authority,
            "version": self.version,
            "enabled": self.enabled,
            "paused": self.paused,
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "status": self.status,
            "last_error": self.last_error,
            "plugin": self.plugin,
            "client_cert_expires": (
                self.client_cert_expires.isoformat() if self.client_cert_expires else None
            ),
        }


def secret_context(name: str, option: str) -> str:
    return f"evi:connector:{name}:{option}"


def list_connectors(hub: Hub) -> list[ConnectorStatus]:
    """Every installed connector with its stored state, sorted by name."""
    registered = load_connectors(hub.plugins)
    hub.require_schema()
    with hub.db.session() as session:
        rows = ConnectorConfigRepository(session).all()
        return [_status(entry, rows.get(name)) for name, entry in registered.items()]


def enabled_but_not_loaded(hub: Hub) -> list[str]:
    """Connectors enabled in the database that no loaded plugin provides (left out by
    ``EVI_PLUGINS``, or uninstalled): a sync goes without them."""
    registered = load_connectors(hub.plugins)
    hub.require_schema()
    with hub.db.session() as session:
        rows = ConnectorConfigRepository(session).all()
    return sorted(name for name, row in rows.items() if row.enabled and name not in registered)


def connector_setup(hub: Hub) -> tuple[tuple[Any, ...], ...]:
    """What decides which connectors run and how, for noticing a change: each stored one's
    name, enabled and paused flags and its options (not its last-run fields, which every
    sync changes)."""
    with hub.db.session() as session:
        rows = ConnectorConfigRepository(session).all()
        return tuple(
            (name, row.enabled, row.paused, json.dumps([row.options, row.secrets], sort_keys=True))
            for name, row in sorted(rows.items())
        )


def configured_urls(hub: Hub) -> dict[str, str | None]:
    """Each stored connector's ``base_url`` (``None`` where none is set)."""
    with hub.db.session() as session:
        rows = ConnectorConfigRepository(session).all()
        return {name: (row.options or {}).get("base_url") for name, row in rows.items()}


def _status(entry: RegisteredConnector, row: ConnectorConfigRow | None) -> ConnectorStatus:
    return ConnectorStatus(
        name=entry.name,
        authority=entry.cls.authority,
        version=entry.cls.version,
        plugin=entry.plugin,
        enabled=bool(row and row.enabled),
        paused=bool(row and row.paused),
        last_sync=row.last_sync_at if row else None,
        status=row.last_status if row else None,
        last_error=row.last_error if row else None,
        client_cert_expires=stored_certificate_expiry(row.options) if row else None,
    )


def certificate_notices(
    hub: Hub,
    statuses: list[ConnectorStatus] | None = None,
    *,
    only: Iterable[str] | None = None,
    enabled_only: bool = True,
    include_expired: bool = True,
    now: datetime | None = None,
) -> list[CertificateNotice]:
    """The connectors (enabled ones, or those named in ``only``) whose client certificate
    expires within ``[sync] certificate_warning_days`` (or has expired, unless
    ``include_expired`` is false: building such a connector fails and says so).
    ``statuses`` defaults to :func:`list_connectors`."""
    if statuses is None:
        statuses = list_connectors(hub)
    names = set(only) if only is not None else None
    now = now or datetime.now(UTC)
    notices = expiring(
        [
            (s.name, s.client_cert_expires)
            for s in statuses
            if (s.enabled or not enabled_only) and (names is None or s.name in names)
        ],
        now=now,
        within_days=hub.settings.sync.certificate_warning_days,
    )
    return [n for n in notices if include_expired or n.expires > now]


def certificate_warnings(
    hub: Hub, statuses: list[ConnectorStatus] | None = None, **which: Any
) -> list[str]:
    """:func:`certificate_notices` as the warning lines the commands print."""
    now = datetime.now(UTC)
    return [n.message(now) for n in certificate_notices(hub, statuses, now=now, **which)]


def connector_status(hub: Hub, name: str) -> ConnectorStatus:
    """The listing line of one connector."""
    entry = get_connector(hub.plugins, name)
    hub.require_schema()
    with hub.db.session() as session:
        return _status(entry, ConnectorConfigRepository(session).get(name))


def connector_spec(hub: Hub, name: str) -> dict[str, Any]:
    """The JSON Schema of a connector's options (secrets marked ``writeOnly``)."""
    return options_schema(get_connector(hub.plugins, name).cls.Options)


def configure(
    hub: Hub, name: str, values: dict[str, Any], *, actor: str, unset: Iterable[str] = ()
) -> dict[str, Any]:
    """Set (and unset) options of ``name``; returns all its options, secrets masked.

    Each value is validated against its field first; nothing is stored unless all are
    valid. Raises :class:`InputError` for an unknown option or a value that does not fit.
    The change is logged (``connector_changed``, by ``actor``), naming the options, never
    a value: where a connector sends personal data, and with which credentials, is on
    record.
    """
    cls = get_connector(hub.plugins, name).cls
    unset = list(unset)
    parsed = validate_values(name, cls.Options, values)
    unknown = sorted(set(unset) - set(cls.Options.model_fields))
    if unknown:
        raise InputError(f"{name} has no option {', '.join(repr(u) for u in unknown)} to unset")
    secrets = secret_fields(cls.Options)
    keys = hub.keys
    hub.require_schema()
    with hub.db.session() as session:
        require_current_keys(session, keys)
        row = ConnectorConfigRepository(session).ensure(name)
        plain = {k: v for k, v in row.options.items() if k not in unset}
        plain.update(to_storable(cls.Options, parsed))
        sealed = {k: v for k, v in row.secrets.items() if k not in unset}
        for key, value in parsed.items():
            if key in secrets:
                if value is None:
                    sealed.pop(key, None)
                else:
                    sealed[key] = keys.encrypt_secret(
                        value.get_secret_value(), secret_context(name, key)
                    )
        row.options = plain
        row.secrets = sealed
        row.updated_at = datetime.now(UTC)
        named = [f"{k} (secret)" if k in secrets else k for k in sorted(parsed)]
        what = [f"set {', '.join(named)}"] if named else []
        what += [f"unset {', '.join(sorted(unset))}"] if unset else []
        append(session, _changed(name, actor, "; ".join(what) or "nothing changed"))
        shown = dict(plain)
        shown.update(dict.fromkeys(sealed, "set"))
    return masked(cls.Options, shown)


def secret_options(hub: Hub, name: str) -> set[str]:
    """The names of ``name``'s options that are secrets (stored encrypted, never shown)."""
    return set(secret_fields(get_connector(hub.plugins, name).cls.Options))


def stored_options(hub: Hub, name: str) -> dict[str, Any]:
    """The options stored for ``name`` as shown to people: secrets masked."""
    cls = get_connector(hub.plugins, name).cls
    hub.require_schema()
    with hub.db.session() as session:
        row = ConnectorConfigRepository(session).get(name)
        shown: dict[str, Any] = dict(row.options) if row else {}
        if row:
            shown.update(dict.fromkeys(row.secrets, "set"))
    return masked(cls.Options, shown)


def set_enabled(hub: Hub, name: str, enabled: bool, *, actor: str) -> None:
    """Enable or disable ``name``. Enabling also lifts a pause after repeated failures.
    Logged (``connector_changed``, by ``actor``)."""
    get_connector(hub.plugins, name)
    hub.require_schema()
    with hub.db.session() as session:
        row = ConnectorConfigRepository(session).ensure(name)
        lifted = enabled and row.paused
        row.enabled = enabled
        if enabled:
            row.paused = False
            row.consecutive_failures = 0
        row.updated_at = datetime.now(UTC)
        what = ("enabled" + (" (its pause lifted)" if lifted else "")) if enabled else "disabled"
        append(session, _changed(name, actor, what))


def _changed(name: str, actor: str, what: str) -> LedgerEvent:
    """The log entry of a change to connector ``name`` (its party is the recipient)."""
    return LedgerEvent(
        action=Action.CONNECTOR_CHANGED,
        actor=actor,
        role=ActorRole.ADMINISTRATOR,
        recipient=name,
        reason=f"{name}: {what}",
    )


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget_authority` dropped: registrations and whether a cursor."""

    registrations: int
    cursor: bool

    def __str__(self) -> str:
        """``3 registration(s) and its cursor``, as the commands say it."""
        return f"{self.registrations} registration(s)" + (" and its cursor" if self.cursor else "")


def forget_authority(hub: Hub, name: str, *, actor: str, really: bool) -> Forgotten:
    """Drop what the hub holds about the authority at the address ``name`` pointed at
    before: its cursor (the next sync reads from the start) and whom it follows (every
    registration marked not active, so the next sync registers each consented person
    again, at the new address; nothing is cancelled at the old one). For a connector moved
    from a test endpoint to production. Without ``really`` only counts; logged when done.
    """
    get_connector(hub.plugins, name)
    hub.require_schema()
    with hub.db.session(write_lock=really) as session:
        followed = select(Subscription.id).where(
            Subscription.party == name, Subscription.active.is_(True)
        )
        ids = list(session.scalars(followed))
        cursor = session.get(SyncCursor, name)
        done = Forgotten(len(ids), cursor is not None)
        if not really:
            return done
        now = datetime.now(UTC)
        if ids:
            session.execute(
                update(Subscription),
                [{"id": i, "active": False, "changed_at": now} for i in ids],
            )
        if cursor is not None:
            session.delete(cursor)
        what = f"forgot its cursor and {len(ids)} registration(s) at the old address"
        append(session, _changed(name, actor, what))
    return done


def runnable_connectors(hub: Hub) -> list[str]:
    """Names of the connectors the sync job should run: installed, enabled, not paused."""
    return [s.name for s in list_connectors(hub) if s.enabled and not s.paused]


def build_connector(
    hub: Hub,
    name: str,
    *,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> Connector:
    """A ready connector for ``name`` from its stored options (secrets decrypted).

    ``transport`` replaces the network, e.g. an
    :class:`~hub.connector.asgi.InProcessTransport` on the connector's sandbox for the
    demo. The strictness of mapping follows ``sync.strict_mapping``. The caller closes the
    connector (it is a context manager). Raises :class:`ConnectorConfigError` naming any
    missing option and the command that sets it.
    """
    cls = get_connector(hub.plugins, name).cls
    keys = hub.keys
    hub.require_schema()
    with hub.db.session() as session:
        row = ConnectorConfigRepository(session).get(name)
        values: dict[str, Any] = dict(row.options) if row else {}
        for key, token in (row.secrets if row else {}).items():
            try:
                values[key] = keys.decrypt_secret(token, secret_context(name, key))
            except Exception:
                raise ConnectorConfigError(
                    name,
                    f"stored secret '{key}' cannot be decrypted with the loaded "
                    "'connector-secrets' key; if the key was rotated since this process "
                    "started (a running `evi worker` or `evi web serve`), restart it; "
                    f"otherwise set the secret again with `evi connectors configure {name} "
                    f"--set {key}=…`",
                ) from None
    options = build_options(name, cls.Options, values)
    if transport is None:
        _require_reachable(name, options)
    return cls.create(
        options,
        transport=transport,
        retry=retry,
        strict_mapping=hub.settings.sync.strict_mapping,
    )


def _require_reachable(name: str, options: ConnectorOptions) -> None:
    """Refuse a ``base_url`` under ``.invalid`` (RFC 6761: it never resolves) at once, not
    after retrying a name lookup that cannot succeed. `evi demo` gives its in-process
    sandboxes such addresses, so the message says how those are reached."""
    url = getattr(options, "base_url", None)
    if url is None:
        return
    host = httpx.URL(str(url)).host
    if host == "invalid" or host.endswith(".invalid"):
        raise ConnectorConfigError(
            name,
            f"base_url {url} never resolves (.invalid): `evi demo` sets such addresses for "
            "its in-process sandboxes, which only `evi sync --sandbox` and `evi demo` "
            f"reach; to reach the authority: `evi connectors configure {name} --set "
            "base_url=https://…`",
        )


CHECK_RETRY = RetryPolicy(attempts=2, initial_wait=0.5, max_wait=2.0, max_retry_after=5.0)
"""A check answers an administrator who is waiting: one quick retry, not a night's budget."""


def check_connector(
    hub: Hub,
    name: str,
    *,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> ConnectorStatus:
    """Build ``name`` and run its :meth:`~Connector.check`; raises the classified error."""
    with build_connector(hub, name, transport=transport, retry=retry) as connector:
        connector.mapping  # noqa: B018 - a broken mapping file is a configuration error too
        connector.check()
    return connector_status(hub, name)


def record_sync_result(
    session: Session,
    name: str,
    status: str,
    at: datetime,
    *,
    error: str | None = None,
    pause_after: int | None = None,
    counted: bool = True,
) -> bool:
    """Record how a sync of ``name`` ended, inside the caller's transaction.

    ``status`` is shown as is by ``evi connectors list``; :data:`STATUS_FAILED` adds to the
    run of consecutive failures, any other status ends it. ``error`` is one line for the
    administrator (no personal data, no secrets). With ``pause_after`` set, the connector
    is paused when that many failures follow each other, until ``evi connectors enable``.
    ``counted=False``: an end that says nothing about the authority (the run failed on
    the hub's own database) is shown, and neither adds to nor ends the run of failures.
    Returns whether the connector is paused now. Never commits.
    """
    row = ConnectorConfigRepository(session).ensure(name)
    row.last_sync_at = at
    row.last_status = status
    row.last_error = error[:500] if error else None
    if counted and status == STATUS_FAILED:
        row.consecutive_failures += 1
        if pause_after is not None and row.consecutive_failures >= pause_after:
            row.paused = True
    elif counted:
        row.consecutive_failures = 0
    row.updated_at = datetime.now(UTC)
    return row.paused
