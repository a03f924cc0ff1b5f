"""Point the installed connectors at sandbox authorities: in-process, or over HTTP.

The hub reaches connectors (and their sandboxes) only through the plugin manager: each
connector class says whether it ships a sandbox (``sandbox_app``) and which options talk to
it (``sandbox_options``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from hub.connector.asgi import InProcessTransport
from hub.connector.base import Connector
from hub.connector.registry import load_connectors
from hub.connector.sandbox import SandboxSettings
from hub.connector.service import configure, set_enabled
from hub.context import Hub
from hub.errors import InputError
from hub.ledger.service import cli_actor

IN_PROCESS_URL = "http://{name}.sandbox.invalid"
"""The base URL connectors are configured with when their sandbox runs in-process; the
``.invalid`` top-level domain never resolves, so it can never reach a real host."""

DEMO_POPULATION = 500


@dataclass(frozen=True)
class SandboxTarget:
    """Where one connector's sandbox answers: a transport in this process, or a URL."""

    name: str
    cls: type[Connector]
    url: str
    transport: httpx.BaseTransport | None


def sandbox_connectors(hub: Hub) -> dict[str, type[Connector]]:
    """Installed connectors that ship a sandbox, by name."""
    return {
        name: entry.cls
        for name, entry in load_connectors(hub.plugins).items()
        if entry.cls.sandbox_app.__func__ is not Connector.sandbox_app.__func__  # type: ignore[attr-defined]
    }


def parse_sandbox_urls(values: list[str], known: Mapping[str, object]) -> dict[str, str]:
    """``NAME=URL`` pairs from the command line, each checked."""
    urls = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise InputError(
                f"--sandbox-url takes NAME=URL (e.g. af=http://127.0.0.1:8001), got '{value}'"
            )
        if name not in known:
            raise InputError(
                f"--sandbox-url names '{name}', which has no sandbox; "
                f"choose one of {', '.join(known)}"
            )
        urls[name] = url.rstrip("/")
    return urls


def sandbox_targets(
    hub: Hub, seed: int, urls: Mapping[str, str], population: int = DEMO_POPULATION
) -> dict[str, SandboxTarget]:
    """A target per sandbox connector: the URL given, else an in-process app with ``seed``."""
    targets = {}
    for name, cls in sandbox_connectors(hub).items():
        if name in urls:
            targets[name] = SandboxTarget(name, cls, urls[name], None)
            continue
        settings = SandboxSettings(
            seed=seed,
            population=population,
            state_dir=hub.settings.resolved_home / "sandbox" / name,
        )
        app = cls.sandbox_app(settings)
        assert app is not None
        targets[name] = SandboxTarget(
            name, cls, IN_PROCESS_URL.format(name=name), InProcessTransport(app)
        )
    return targets


def configure_for_sandboxes(hub: Hub, targets: Mapping[str, SandboxTarget]) -> None:
    """Configure and enable each connector to talk to its sandbox target."""
    home = hub.settings.resolved_home
    for name, target in targets.items():
        configure(hub, name, target.cls.sandbox_options(target.url, home), actor=cli_actor())
        set_enabled(hub, name, True, actor=cli_actor())


def transports(targets: Mapping[str, SandboxTarget]) -> dict[str, httpx.BaseTransport]:
    return {n: t.transport for n, t in targets.items() if t.transport is not None}


def sandbox_client(target: SandboxTarget) -> httpx.Client:
    """A plain client for the sandbox's own ``/_sandbox`` bench endpoints."""
    if target.transport is not None:
        return httpx.Client(base_url=target.url, transport=target.transport, timeout=30)
    return httpx.Client(base_url=target.url, timeout=30)
