"""Build the plugin manager: hook specs, built-in plugins, the ``evi`` entry-point group.

``EVI_PLUGINS`` (comma-separated plugin names) restricts which plugins load; built-ins
not named are left out too, so a deployment can run with exactly the plugins it approved.
Nothing is loaded at import time.
"""

from __future__ import annotations

import importlib
import os

import pluggy

from hub import hookspecs

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


def _allowlist() -> set[str] | None:
    raw = os.environ.get("EVI_PLUGINS", "").strip()
    if not raw:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with every allowed plugin registered and checked."""
    pm = pluggy.PluginManager("evi")
    pm.add_hookspecs(hookspecs)
    allowed = _allowlist()
    for entry in BUILTIN_PLUGINS:
        name, module = entry.split("=", 1)
        if allowed is None or name in allowed:
            pm.register(importlib.import_module(module), name=name)
    if allowed is None:
        pm.load_setuptools_entrypoints("evi")
    else:
        from importlib.metadata import entry_points

        for ep in entry_points(group="evi"):
            if ep.name in allowed and pm.get_plugin(ep.name) is None:
                pm.register(ep.load(), name=ep.name)
        unknown = sorted(name for name in allowed if pm.get_plugin(name) is None)
        if unknown:  # a typo would leave that plugin out without a word
            from hub.errors import ConfigError

            raise ConfigError(
                f"EVI_PLUGINS names {', '.join(repr(n) for n in unknown)}, which is no "
                f"installed plugin; installed: {', '.join(installed_plugin_names())} "
                "(names as `evi plugins list` gives them, exactly)"
            )
    pm.check_pending()
    return pm


def installed_plugin_names() -> list[str]:
    """Every plugin that could load: the built-in ones and the ``evi`` entry points."""
    from importlib.metadata import entry_points

    names = [entry.split("=", 1)[0] for entry in BUILTIN_PLUGINS]
    return list(dict.fromkeys([*names, *(ep.name for ep in entry_points(group="evi"))]))


def left_out(name: str) -> bool:
    """Whether plugin ``name`` is installed but not allowed by ``EVI_PLUGINS``."""
    allowed = _allowlist()
    return allowed is not None and name not in allowed and name in installed_plugin_names()
