"""The connector core: what a connector plugin builds on. Knows no particular authority.

Public API for connector authors::

    from hub.connector import Connector, HttpOptions, hookimpl, ...

See docs/connector-authoring.md.
"""

from hub.connector.asgi import InProcessTransport
from hub.connector.base import Connector
from hub.connector.errors import (
    AuthorityError,
    ConnectorConfigError,
    ConnectorError,
    InvalidRecordError,
    RefusedRequestError,
    TransientConnectorError,
    UnmappedCodeError,
    UnusableAnswerError,
)
from hub.connector.http import JsonApi, build_client
from hub.connector.mapping import Mapping, RecordCodes, mapping_for
from hub.connector.options import ClientCertificateOptions, ConnectorOptions, HttpOptions
from hub.connector.retry import NO_RETRY, RetryPolicy
from hub.connector.sandbox import SandboxSettings
from hub.hookspecs import hookimpl

__all__ = [
    "NO_RETRY",
    "AuthorityError",
    "ClientCertificateOptions",
    "Connector",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorOptions",
    "HttpOptions",
    "InProcessTransport",
    "InvalidRecordError",
    "JsonApi",
    "Mapping",
    "RecordCodes",
    "RefusedRequestError",
    "RetryPolicy",
    "SandboxSettings",
    "TransientConnectorError",
    "UnmappedCodeError",
    "UnusableAnswerError",
    "build_client",
    "hookimpl",
    "mapping_for",
]
