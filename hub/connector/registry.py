"""Collect connector classes from plugins and check each one as it registers.

Plugins implement ``evi_register_connectors(register)`` and call ``register(cls)``. The
hub calls each plugin's hook on its own, so a bad class is refused with the plugin's name
in the message; one bad plugin stops the listing rather than hiding a connector silently.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

import pluggy
from pydantic import BaseModel

from hub.connector.base import Connector
from hub.errors import ConfigError, EviError, NotFoundError
from hub.ledger.event import IDENTITY_NUMBER
from hub.model.vocab import BUILTIN_PARTIES, JOINT_TEAM, Category
from hub.plugins import FIX, describe_plugin, left_out, one_line_cause, plugin_package

_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")


@dataclass(frozen=True)
class RegisteredConnector:
    """A connector class and the plugin that registered it."""

    cls: type[Connector]
    plugin: str

    @property
    def name(self) -> str:
        return self.cls.name


# Called on the class (``cls.build_client(...)``, ``cls.sandbox_app(...)``): a plain method
# there fails only when the hub first calls it, with an internal error.
_CLASSMETHODS = ("build_client", "sandbox_app", "sandbox_options", "sandbox_server_options")


def validate_connector_class(
    obj: object, plugin: str, *, package: str | None = None
) -> type[Connector]:
    """Return ``obj`` as a connector class, or raise :class:`ConfigError` naming the plugin
    (and ``package``, the distribution that installed it, when known)."""
    who = describe_plugin(plugin, package)

    def bad(reason: str) -> ConfigError:
        return ConfigError(f"{who} registered an invalid connector: {reason}; {FIX}")

    if not (inspect.isclass(obj) and issubclass(obj, Connector)):
        raise bad(f"{obj!r} is not a subclass of hub.connector.Connector")
    label = obj.__qualname__
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise bad(f"{label} does not implement {missing}")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not _NAME.match(name) or name == JOINT_TEAM:
        raise bad(
            f"{label}.name must be 2-32 lowercase letters, digits, '-' or '_', starting with a "
            "letter (and not 'team')"
        )
    for attr in ("authority", "version"):
        value = getattr(obj, attr, None)
        if not isinstance(value, str) or not value.strip():
            raise bad(f"{label}.{attr} must be a non-empty string")
    options = obj.Options
    if not (inspect.isclass(options) and issubclass(options, BaseModel)):
        raise bad(f"{label}.Options must be a pydantic model")
    if options.model_config.get("extra") != "forbid":
        raise bad(f"{label}.Options must refuse unknown keys (extra='forbid')")
    for attr in ("delivers", "receives"):
        value = getattr(obj, attr)
        if not isinstance(value, frozenset) or not all(isinstance(c, Category) for c in value):
            raise bad(f"{label}.{attr} must be a frozenset of hub.model.vocab.Category")
    for attr in _CLASSMETHODS:
        if not isinstance(inspect.getattr_static(obj, attr, None), classmethod):
            raise bad(f"{label}.{attr} must be a classmethod (decorate it with @classmethod)")
    if obj.receives and not _can_push(obj):
        raise bad(
            f"{label}.receives is not empty, so it must implement push() (or push_many() "
            "with push_batch_size above 1)"
        )
    return obj


def _can_push(cls: type[Connector]) -> bool:
    """Whether the delivery can hand ``cls`` a transfer without the base class refusing it.

    The delivery calls ``push`` when ``push_batch_size`` is 1, else ``push_many``, whose
    default calls ``push``; :meth:`Connector.push` itself refuses every transfer.
    """
    if cls.push is not Connector.push:
        return True
    return cls.push_batch_size > 1 and cls.push_many is not Connector.push_many


def known_parties(pm: pluggy.PluginManager) -> list[str]:
    """Every party of this hub: the built-in ones and every installed connector."""
    return list(dict.fromkeys([*BUILTIN_PARTIES, *load_connectors(pm)]))


def load_connectors(pm: pluggy.PluginManager) -> dict[str, RegisteredConnector]:
    """Every connector the loaded plugins register, by name, each validated.

    Raises :class:`ConfigError` for an invalid class or two plugins claiming one name.
    """
    found: dict[str, RegisteredConnector] = {}
    for impl in pm.hook.evi_register_connectors.get_hookimpls():
        plugin = impl.plugin_name
        package = plugin_package(pm, plugin)

        def register(
            obj: type[Connector], plugin: str = plugin, package: str | None = package
        ) -> None:
            cls = validate_connector_class(obj, plugin, package=package)
            other = found.get(cls.name)
            if other is not None and other.cls is not cls:
                raise ConfigError(
                    f"connector '{cls.name}' is registered by both plugin '{other.plugin}' "
                    f"and plugin '{plugin}'; uninstall one or choose with EVI_PLUGINS"
                )
            found[cls.name] = RegisteredConnector(cls, plugin)

        call: Callable[..., object] = impl.function
        try:
            call(register=register)
        except EviError:  # the hub's own errors (a refused class) say what to do already
            raise
        except Exception as exc:  # e.g. its lazy import fails: the plugin's fault, not ours
            raise ConfigError(
                f"{describe_plugin(plugin, package)} failed in evi_register_connectors: "
                f"{one_line_cause(exc)}; {FIX}"
            ) from exc
    return dict(sorted(found.items()))


def get_connector(pm: pluggy.PluginManager, name: str) -> RegisteredConnector:
    """The connector called ``name``, or :class:`NotFoundError` listing the installed ones."""
    connectors = load_connectors(pm)
    try:
        return connectors[name]
    except KeyError:
        # The name may come from a URL path; never repeat an identity number typed there.
        personal = IDENTITY_NUMBER.search(name) is not None
        if left_out(name):
            raise NotFoundError(
                "that connector is installed but EVI_PLUGINS leaves it out; add its name to "
                "EVI_PLUGINS to use it"
                if personal
                else f"connector '{name}' is installed but EVI_PLUGINS leaves it out; add "
                f"'{name}' to EVI_PLUGINS to use it"
            ) from None
        installed = ", ".join(connectors) or "none"
        named = "by that name" if personal else f"named '{name}'"
        raise NotFoundError(
            f"no connector {named} is installed (installed: {installed}); see `evi connectors list`"
        ) from None
