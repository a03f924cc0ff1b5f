"""The base for connectors whose authority requires a client certificate (mTLS)."""

from __future__ import annotations

from typing import Any

import httpx

from hub.connector.base import Connector
from hub.connector.http import build_client, require_secure_url
from hub.connector.tls import client_ssl_context


class ClientCertificateConnector(Connector):
    """A connector that presents the client certificate named in its options.

    Its ``Options`` must derive from
    :class:`~hub.connector.options.ClientCertificateOptions`. The TLS context is built
    even when a transport replaces the network (the in-process demo), so a missing,
    unreadable or expired certificate fails the same way everywhere. Over the network
    ``base_url`` must be https, even to this machine: over plain http the certificate
    would silently not be presented at all.
    """

    @classmethod
    def build_client(
        cls, options: Any, *, transport: httpx.BaseTransport | None = None
    ) -> httpx.Client:
        if transport is None:
            require_secure_url(cls.name, options.base_url, client_certificate=True)
        return build_client(
            cls.name,
            options.base_url,
            timeout_seconds=options.timeout_seconds,
            transport=transport,
            verify=client_ssl_context(cls.name, options),
        )
