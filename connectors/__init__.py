"""The built-in connectors: one plugin package per authority (kommun, af, fk, region).

Each package holds ``client.py`` (the authority's HTTP API as typed calls), ``connector.py``
(the :class:`hub.connector.Connector` subclass and its mapping) and ``sandbox.py`` (an ASGI
app that plays the authority). :mod:`connectors.sandbox_kit` is what the sandboxes share.
They are registered by :data:`hub.plugins.BUILTIN_PLUGINS` exactly like third-party
plugins.
"""
