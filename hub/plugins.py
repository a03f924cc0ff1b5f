"""Build the plugin manager: hook specs, built-in plugins, the ``evi`` entry-point group.

``EVI_PLUGINS`` (comma-separated plugin names) restricts which plugins load; built-ins
not named are left out too, so a deployment can run with exactly the plugins it approved.
Nothing is loaded at import time.

A plugin that cannot load (its module does not import, it implements a hook the hub does
not have, its entry point has the name of another plugin) is a :class:`ConfigError`
naming the plugin, its package and the cause, never a skipped plugin or an internal error.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from importlib.metadata import Distribution, EntryPoint

import pluggy

from hub import hookspecs
from hub.errors import ConfigError

GROUP = "evi"

BUILTIN_PLUGINS: tuple[str, ...] = (
    # Each entry is "name=module"; the module is registered under that name.
    "evidence-paper=plugins.evidence_paper",
    "evidence-signature=plugins.evidence_signature",
    "witness-directory=plugins.witness_directory",
    "kommun=connectors.kommun",
    "af=connectors.af",
    "fk=connectors.fk",
    "region=connectors.region",
)

_HUB_PACKAGE = "evi-hub"

FIX = "fix or uninstall the plugin, or leave it out with EVI_PLUGINS"


def builtin_names() -> list[str]:
    """The names of the built-in plugins, in the order they register."""
    return [entry.split("=", 1)[0] for entry in BUILTIN_PLUGINS]


def builtin_connector_names() -> frozenset[str]:
    """The built-in plugins that are connectors (their mapping files are in ``mappings/``)."""
    return frozenset(
        name
        for name, module in (entry.split("=", 1) for entry in BUILTIN_PLUGINS)
        if module.startswith("connectors.")
    )


def plugin_entry_points() -> list[EntryPoint]:
    """Every entry point of the ``evi`` group, one per installed distribution.

    The only place the hub looks for third-party plugins (the tests replace it, so that
    what else is installed does not change them).
    """
    from importlib.metadata import entry_points

    return list(entry_points(group=GROUP))


def _allowlist() -> set[str] | None:
    raw = os.environ.get("EVI_PLUGINS", "").strip()
    if not raw:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _package(ep: EntryPoint) -> str | None:
    dist: Distribution | None = getattr(ep, "dist", None)
    if dist is None:
        return None
    name = dist.metadata["Name"]
    return str(name) if name else None


def describe_plugin(name: str, package: str | None) -> str:
    """``plugin 'NAME'``, with `` (package 'PKG')`` when it came from a distribution."""
    return f"plugin '{name}'" + (f" (package '{package}')" if package else "")


class HubPluginManager(pluggy.PluginManager):
    """pluggy's manager that also remembers which package installed each entry-point
    plugin. The hub loads entry points itself, to name a plugin that cannot load, and
    pluggy records packages only for the entry points it loads itself."""

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.packages: dict[str, Distribution] = {}
        """Plugin name -> the distribution whose entry point registered it."""


def plugin_distribution(pm: pluggy.PluginManager, name: str) -> Distribution | None:
    """The distribution that installed plugin ``name``; None for a built-in one."""
    return pm.packages.get(name) if isinstance(pm, HubPluginManager) else None


def plugin_package(pm: pluggy.PluginManager, name: str) -> str | None:
    """The name of the package that installed plugin ``name``, if it came from one."""
    dist = plugin_distribution(pm, name)
    return str(dist.metadata["Name"]) if dist is not None else None


def one_line_cause(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` on one line, for a message that names a plugin's fault."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _validation_cause(exc: pluggy.PluginValidationError) -> str:
    text = one_line_cause(exc)
    found = re.search(r"for hook '(\w+)'.*Argument\(s\) \{(.*)\} are declared", text)
    if found:
        return (
            f"its hook '{found[1]}' takes argument(s) {found[2]}, which the hook "
            "specification does not have"
        )
    return text


def _check_names(entries: list[EntryPoint], builtins: list[str]) -> None:
    """Refuse an entry point that has the name of a built-in or of another package's."""
    seen: dict[str, str | None] = {}
    for ep in entries:
        package = _package(ep)
        if ep.name in builtins:
            raise ConfigError(
                f"package '{package or 'unknown'}' provides plugin '{ep.name}' (entry point "
                f"group '{GROUP}'), but the hub's built-in plugin '{ep.name}' (package "
                f"'{_HUB_PACKAGE}') is registered under that name, so it cannot load; rename "
                f"the entry point, or uninstall '{package or ep.value}'"
            )
        if ep.name in seen:
            raise ConfigError(
                f"packages '{seen[ep.name] or 'unknown'}' and '{package or 'unknown'}' both "
                f"provide plugin '{ep.name}' (entry point group '{GROUP}'), and only one can "
                "load under that name; uninstall one, or rename its entry point"
            )
        seen[ep.name] = package


def _register_entry_point(pm: HubPluginManager, ep: EntryPoint) -> None:
    package = _package(ep)
    who = describe_plugin(ep.name, package)
    try:
        plugin = ep.load()
    except Exception as exc:  # whatever its import raises: the plugin's fault, not ours
        raise ConfigError(f"{who} cannot be imported: {one_line_cause(exc)}; {FIX}") from exc
    if plugin is None:
        return
    try:
        pm.register(plugin, name=ep.name)
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"{who} cannot be loaded: {_validation_cause(exc)}; {FIX}") from exc
    except ValueError as exc:  # the same module under another plugin's name
        other = pm.get_name(plugin)
        raise ConfigError(
            f"{who} is the module plugin '{other}' already loaded ({ep.value}); {FIX}"
        ) from exc
    dist: Distribution | None = getattr(ep, "dist", None)
    if dist is not None:  # for `evi plugins list` and the messages naming the package
        pm.packages[ep.name] = dist


def _check_hooks(pm: pluggy.PluginManager) -> None:
    """Refuse a plugin that implements a hook the hub does not specify (a misspelt name)."""
    callers = {name: c for name, c in vars(pm.hook).items() if not name.startswith("_")}
    known = sorted(name for name, caller in callers.items() if caller.has_spec())
    for name, caller in callers.items():
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            who = describe_plugin(impl.plugin_name, plugin_package(pm, impl.plugin_name))
            raise ConfigError(
                f"{who} implements unknown hook '{name}'{hint}; the hooks are "
                f"{', '.join(known)}; {FIX}"
            )
    pm.check_pending()


def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with every allowed plugin registered and checked.

    Raises :class:`ConfigError` naming the plugin when one cannot load.
    """
    pm = HubPluginManager()
    pm.add_hookspecs(hookspecs)
    allowed = _allowlist()
    builtins = builtin_names()
    for entry in BUILTIN_PLUGINS:
        name, module = entry.split("=", 1)
        if allowed is None or name in allowed:
            pm.register(importlib.import_module(module), name=name)
    wanted = [ep for ep in plugin_entry_points() if allowed is None or ep.name in allowed]
    _check_names(wanted, builtins)
    for ep in wanted:
        _register_entry_point(pm, ep)
    if allowed is not None:
        unknown = sorted(name for name in allowed if pm.get_plugin(name) is None)
        if unknown:  # a typo would leave that plugin out without a word
            raise ConfigError(
                f"EVI_PLUGINS names {', '.join(repr(n) for n in unknown)}, which is no "
                f"installed plugin; installed: {', '.join(installed_plugin_names())} "
                "(names as `evi plugins list` gives them, exactly)"
            )
    _check_hooks(pm)
    return pm


def installed_plugin_names() -> list[str]:
    """Every plugin that could load: the built-in ones and the ``evi`` entry points."""
    return list(dict.fromkeys([*builtin_names(), *(ep.name for ep in plugin_entry_points())]))


def left_out(name: str) -> bool:
    """Whether plugin ``name`` is installed but not allowed by ``EVI_PLUGINS``."""
    allowed = _allowlist()
    return allowed is not None and name not in allowed and name in installed_plugin_names()
