"""The region (healthcare) connector plugin. It never carries diagnoses."""

from __future__ import annotations

from collections.abc import Callable

from hub.connector import Connector, hookimpl


@hookimpl
def evi_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    from connectors.region.connector import RegionConnector

    register(RegionConnector)
