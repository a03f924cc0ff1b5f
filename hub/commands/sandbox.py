"""`evi sandbox …`: run an authority's sandbox over real HTTP, and point a connector at it.

A sandbox is the authority's side: any state it keeps (subscriptions, received pushes)
lives under ``$EVI_HOME/sandbox/NAME/``. It only ever binds 127.0.0.1.
"""

from __future__ import annotations

import errno
import shutil
import socket
from typing import Any

import typer
from pydantic import ValidationError

from hub.commands.common import area_app, hub_from, info, print_json
from hub.connector import service
from hub.connector.base import Connector
from hub.connector.registry import get_connector
from hub.connector.sandbox import SandboxSettings
from hub.errors import InputError, NotFoundError
from hub.ledger.service import cli_actor
from hub.model.problems import problems
from hub.plugins import get_plugin_manager
from hub.settings import get_settings

sandbox_app = area_app(
    help="Play an authority's API with synthetic test people.", no_args_is_help=True
)

HOST = "127.0.0.1"


def _connector(name: str) -> type[Connector]:
    return get_connector(get_plugin_manager(), name).cls


def _settings(**values: Any) -> SandboxSettings:
    try:
        return SandboxSettings(**values)
    except ValidationError as exc:
        raise InputError("invalid sandbox setting: " + "; ".join(problems(exc))) from None


def _check_port_free(port: int) -> None:
    # uvicorn reports a taken port with a log line and exit 1; say it plainly instead.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(
                    f"port {port} on {HOST} is in use; choose another with --port"
                ) from None
            raise InputError(f"cannot listen on {HOST}:{port} ({exc.strerror})") from None


@sandbox_app.command("serve")
def serve(
    name: str = typer.Argument(..., help="Connector whose authority to play."),
    port: int = typer.Option(..., "--port", min=1, max=65535, help="Port on 127.0.0.1."),
    seed: int = typer.Option(1, "--seed", help="Seed of the synthetic population."),
    population: int = typer.Option(500, "--population", min=1, help="Number of people."),
    records_per_person: int = typer.Option(3, "--records-per-person", min=0),
    latency_ms: int = typer.Option(0, "--latency-ms", min=0, help="Delay of every answer."),
    fail_rate: float = typer.Option(0.0, "--fail-rate", min=0, max=1, help="Share of 503s."),
    rate_limit_rate: float = typer.Option(
        0.0, "--rate-limit-rate", min=0, max=1, help="Share of 429s."
    ),
    retry_after: int = typer.Option(1, "--retry-after", min=0, help="Retry-After of a 429."),
    timeout_rate: float = typer.Option(
        0.0, "--timeout-rate", min=0, max=1, help="Share of requests that stall."
    ),
    malformed_rate: float = typer.Option(
        0.0, "--malformed-rate", min=0, max=1, help="Share of malformed JSON answers."
    ),
    invalid_rate: float = typer.Option(
        0.0, "--invalid-rate", min=0, max=1, help="Share of schema-violating records."
    ),
    unknown_code_rate: float = typer.Option(
        0.0, "--unknown-code-rate", min=0, max=1, help="Share of records with unmapped codes."
    ),
    all_subscribed: bool = typer.Option(
        False, "--all-subscribed", help="Answer about everyone (benchmarks)."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Forget stored subscriptions and pushes."),
) -> None:
    """Serve NAME's sandbox on 127.0.0.1 until interrupted."""
    import uvicorn

    cls = _connector(name)
    home = get_settings().resolved_home
    state_dir = home / "sandbox" / name
    if fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    settings = _settings(
        seed=seed,
        population=population,
        records_per_person=records_per_person,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        rate_limit_rate=rate_limit_rate,
        retry_after_seconds=retry_after,
        timeout_rate=timeout_rate,
        malformed_rate=malformed_rate,
        invalid_record_rate=invalid_rate,
        unknown_code_rate=unknown_code_rate,
        all_subscribed=all_subscribed,
        state_dir=state_dir,
    )
    try:
        app = cls.sandbox_app(settings)
    except ValueError as exc:  # e.g. a population larger than the test numbers allow
        raise InputError(f"sandbox {name}: {exc}") from None
    if app is None:
        raise NotFoundError(f"connector '{name}' ships no sandbox")
    server_options = cls.sandbox_server_options(home)
    _check_port_free(port)
    scheme = "https" if server_options.get("ssl_certfile") else "http"
    url = f"{scheme}://{HOST}:{port}"
    info(f"sandbox {name}: {url} (seed {seed}, {population} people); state in {state_dir}")
    info(f"point the connector at it with: evi sandbox connect {name} --url {url}")
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False, **server_options)


@sandbox_app.command("connect")
def connect(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Connector to point at its sandbox."),
    url: str = typer.Option(..., "--url", help="The sandbox's URL, as `evi sandbox serve` says."),
) -> None:
    """Configure NAME with its sandbox's URL and test credentials (stored encrypted)."""
    hub = hub_from(ctx)
    cls = _connector(name)
    options = cls.sandbox_options(url.rstrip("/"), hub.settings.resolved_home)
    print_json(service.configure(hub, name, options, actor=cli_actor()))
    info(f"{name}: configured for the sandbox at {url}; try `evi connectors check {name}`")


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
