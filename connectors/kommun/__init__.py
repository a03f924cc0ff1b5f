"""The municipality (kommun) connector plugin: ekonomiskt bistånd and the labour-market unit."""

from __future__ import annotations

from collections.abc import Callable

from hub.connector import Connector, hookimpl


@hookimpl
def evi_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    from connectors.kommun.connector import KommunConnector

    register(KommunConnector)
