"""EVI hub plugin: registers the komvux connector (entry point group ``evi``)."""

from __future__ import annotations

from collections.abc import Callable

from hub.connector import Connector, hookimpl


@hookimpl
def evi_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    from evi_komvux.connector import KomvuxConnector

    register(KomvuxConnector)
