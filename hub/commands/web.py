"""`evi web serve`: the web pages and JSON API (see docs/web.md).

FastAPI and uvicorn are imported when the server starts, not with this module, so other
commands do not pay for them. Uvicorn's access log keeps its lines but loses their query
strings and any identity number in a path (:class:`hub.web.security.PathOnly`).

It serves plain HTTP, so an address other than loopback (``--host 0.0.0.0``, a network
interface) gets a ``warning:`` line on stderr: tokens, session cookies and personnummer
would cross that network in clear text unless only the TLS reverse proxy can reach it.
"""

from __future__ import annotations

import ipaddress

import typer

from hub.commands.common import area_app, hub_from, info

web_app = area_app(help="The web pages and JSON API.", no_args_is_help=True)


@web_app.command("serve")
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the web pages and JSON API over plain HTTP until interrupted.

    Put it behind the organisation's TLS reverse proxy; users sign in with a token from
    `evi users add`.
    """
    import logging

    import uvicorn

    from hub.web.app import create_app
    from hub.web.security import PathOnly
    from hub.web.users import count_active_users

    hub = hub_from(ctx)
    hub.require_schema()
    hub.keys  # noqa: B018 - a missing or wrong key fails here, with its name, not per request
    if count_active_users(hub) == 0:
        info(
            "hint: there are no web users yet, so nobody can sign in; add one with "
            "`evi users add NAME --party P --role R`"
        )
    reach = beyond_this_host(host)
    if reach is not None:
        info(
            f"warning: --host {host!r} serves plain HTTP on {reach}, not only this host: "
            "tokens, session cookies and personnummer cross that network in clear text; put "
            "it behind the organisation's TLS reverse proxy and listen on 127.0.0.1 (or an "
            "interface only the proxy reaches)"
        )
    info(f"serving EVI hub on http://{host}:{port} (put it behind a TLS reverse proxy)")
    config = uvicorn.Config(
        create_app(hub),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=hub.settings.web.trusted_proxies,
        server_header=False,
        log_level="info",
    )
    # After Config: creating it (re)configures uvicorn's loggers.
    logging.getLogger("uvicorn.access").addFilter(PathOnly())
    logging.getLogger("hub.web.audit").setLevel(logging.INFO)  # sign-ins, like the access log
    uvicorn.Server(config).run()


def beyond_this_host(host: str) -> str | None:
    """Where listening on ``host`` reaches beyond this machine ("every interface", or the
    address or name itself); ``None`` for loopback (127.0.0.0/8, ``::1``, ``localhost``).
    A name other than ``localhost`` counts as reaching beyond: it may resolve to any
    interface."""
    if host.lower() in ("localhost", "localhost."):
        return None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host or "every interface"  # "": every interface, as uvicorn binds it
    if address.is_loopback:
        return None
    return "every interface" if address.is_unspecified else host


def register(app: typer.Typer) -> None:
    app.add_typer(web_app, name="web")
