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
    pm.check_pending()
    return pm
