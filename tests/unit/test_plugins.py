"""A plugin that cannot load is a configuration error naming it, never an internal error.

Each test installs fake packages into a directory of its own: a ``*.dist-info`` with the
package's metadata and ``evi`` entry points next to the plugin's module, as pip would
leave them. The directory is put on ``sys.path`` (so ``importlib.metadata`` sees it, as
it sees the venv) and ``hub.plugins.plugin_entry_points`` is pointed at it alone, so what
else is installed does not change these tests either.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hub.plugins
from hub.errors import ConfigError
from hub.plugins import get_plugin_manager

Cli = Callable[..., Any]
PNR = "199001012385"  # Skatteverket's test number
FIX = "fix or uninstall the plugin, or leave it out with EVI_PLUGINS"
BUILT_INS = "kommun,af,fk,region,evidence-paper,evidence-signature,witness-directory"

MISSPELT_HOOK = """
from hub.connector import hookimpl

@hookimpl
def evi_register_connector(register):
    pass
"""

MISSING_IMPORT = """
import evi_test_no_such_module
"""

LAZY_IMPORT_FAILS = """
from hub.connector import hookimpl

@hookimpl
def evi_register_connectors(register):
    from evi_test_no_such_module import Connector
    register(Connector)
"""

WRONG_ARGUMENT = """
from hub.connector import hookimpl

@hookimpl
def evi_register_connectors(reg):
    pass
"""

FINE = """
from hub.connector import hookimpl

@hookimpl
def evi_register_connectors(register):
    pass
"""

NO_MAPPING_FILE = """
import httpx

from hub.connector import Connector, hookimpl
from hub.model.vocab import Category


class NoMapping(Connector):
    name = "nomapping"
    authority = "An authority"
    version = "1.0"
    delivers = frozenset({Category.OUTCOME})

    @classmethod
    def build_client(cls, options, *, transport=None):
        return httpx.Client(transport=transport or httpx.MockTransport(lambda r: None))

    def check(self):
        return None

    def pull(self, cursor, subscriptions):
        return iter(())

    def map(self, native):
        raise NotImplementedError


@hookimpl
def evi_register_connectors(register):
    register(NoMapping)
"""


class Site:
    """A directory of fake installed packages, the only place entry points come from."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.modules: list[str] = []
        root.mkdir()
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setattr(hub.plugins, "plugin_entry_points", self.entry_points, raising=False)

    def entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return [
            ep
            for dist in importlib.metadata.distributions(path=[str(self.root)])
            for ep in dist.entry_points
            if ep.group == "evi"
        ]

    def install(self, package: str, entry_points: dict[str, str], **modules: str) -> None:
        info = self.root / f"{package.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[evi]\n{lines}")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(source)
            self.modules.append(module)
        importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    made = Site(tmp_path / "site", monkeypatch)
    yield made
    for module in made.modules:
        sys.modules.pop(module, None)


def one_line_error(result: Any, code: int = 2) -> str:
    assert result.code == code, result
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("error: ") and "internal error" not in result.err
    return str(result.err)


# -- a plugin that does not load ------------------------------------------------------


def test_a_misspelt_hook_is_a_configuration_error_naming_the_plugin(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    site.install(
        "evi-test-misspelt", {"misspelt": "evi_test_misspelt"}, evi_test_misspelt=MISSPELT_HOOK
    )
    err = one_line_error(cli("plugins", "list"))
    assert "plugin 'misspelt' (package 'evi-test-misspelt')" in err
    assert "unknown hook 'evi_register_connector'" in err
    assert "did you mean 'evi_register_connectors'?" in err
    assert err.rstrip().endswith(FIX)


def test_a_plugin_that_cannot_be_imported_names_the_missing_module(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    site.install("evi-test-broken", {"broken": "evi_test_broken"}, evi_test_broken=MISSING_IMPORT)
    err = one_line_error(cli("plugins", "list"))
    assert (
        "plugin 'broken' (package 'evi-test-broken') cannot be imported: "
        "ModuleNotFoundError: No module named 'evi_test_no_such_module'; " + FIX
    ) in err


def test_a_missing_entry_point_module_is_named_too(cli: Cli, evi_home: Path, site: Site) -> None:
    site.install("evi-test-gone", {"gone": "evi_test_gone_module"})  # its module not shipped
    err = one_line_error(cli("plugins", "list"))
    assert "plugin 'gone' (package 'evi-test-gone') cannot be imported: ModuleNotFoundError" in err


def test_a_person_asking_for_their_log_extract_gets_a_configuration_error(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    assert cli("db", "upgrade").code == 0
    site.install("evi-test-broken", {"broken": "evi_test_broken"}, evi_test_broken=MISSING_IMPORT)
    err = one_line_error(cli("log", "extract", "--pnr", PNR))
    assert "plugin 'broken' (package 'evi-test-broken') cannot be imported" in err
    assert PNR not in err


def test_a_hook_whose_lazy_import_fails_names_the_plugin(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    assert cli("db", "upgrade").code == 0
    site.install("evi-test-lazy", {"lazy": "evi_test_lazy"}, evi_test_lazy=LAZY_IMPORT_FAILS)
    assert cli("plugins", "list").code == 0  # it loads; calling its hook fails
    err = one_line_error(cli("connectors", "list"))
    assert (
        "plugin 'lazy' (package 'evi-test-lazy') failed in evi_register_connectors: "
        "ModuleNotFoundError: No module named 'evi_test_no_such_module'; " + FIX
    ) in err


def test_a_hook_with_an_argument_the_spec_lacks_names_the_plugin(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    site.install("evi-test-args", {"args": "evi_test_args"}, evi_test_args=WRONG_ARGUMENT)
    err = one_line_error(cli("plugins", "list"))
    assert "plugin 'args' (package 'evi-test-args') cannot be loaded" in err
    assert "'evi_register_connectors' takes argument(s) 'reg'" in err and FIX in err


def test_leaving_the_broken_plugin_out_gets_the_hub_back(
    cli: Cli, evi_home: Path, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install("evi-test-broken", {"broken": "evi_test_broken"}, evi_test_broken=MISSING_IMPORT)
    monkeypatch.setenv("EVI_PLUGINS", BUILT_INS)
    result = cli("plugins", "list", "--json")
    assert result.code == 0, result.err
    assert "broken" not in {row["name"] for row in json.loads(result.out)}


# -- an entry point with a name already taken -------------------------------------------


def test_an_entry_point_named_like_a_built_in_is_refused_naming_both(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    site.install("some-pkg", {"kommun": "evi_test_fine"}, evi_test_fine=FINE)
    err = one_line_error(cli("plugins", "list"))
    assert "package 'some-pkg' provides plugin 'kommun'" in err
    assert "built-in plugin 'kommun' (package 'evi-hub')" in err


def test_two_packages_with_one_plugin_name_are_refused_naming_both(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    site.install("evi-test-one", {"komvux": "evi_test_fine"}, evi_test_fine=FINE)
    site.install("evi-test-two", {"komvux": "evi_test_fine2"}, evi_test_fine2=FINE)
    err = one_line_error(cli("plugins", "list"))
    assert "'evi-test-one'" in err and "'evi-test-two'" in err
    assert "both provide plugin 'komvux'" in err


def test_an_installed_plugin_is_listed_with_its_package(site: Site) -> None:
    site.install("evi-test-fine", {"fine": "evi_test_fine"}, evi_test_fine=FINE)
    pm = get_plugin_manager()
    assert pm.get_plugin("fine") is not None
    assert hub.plugins.plugin_package(pm, "fine") == "evi-test-fine"
    assert hub.plugins.plugin_package(pm, "kommun") is None


def test_a_name_clash_the_allowlist_leaves_out_is_no_error(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install("some-pkg", {"kommun": "evi_test_fine"}, evi_test_fine=FINE)
    monkeypatch.setenv("EVI_PLUGINS", "af,fk")
    assert get_plugin_manager().get_plugin("kommun") is None
    monkeypatch.setenv("EVI_PLUGINS", "af,kommun")  # which kommun? it says so
    with pytest.raises(ConfigError, match="package 'some-pkg' provides plugin 'kommun'"):
        get_plugin_manager()


# -- a third-party connector without mapping_file ---------------------------------------


def test_a_plugin_connector_without_mapping_file_is_told_to_set_it(
    cli: Cli, evi_home: Path, site: Site
) -> None:
    assert cli("db", "upgrade").code == 0
    site.install("evi-test-nomap", {"nomap": "evi_test_nomap"}, evi_test_nomap=NO_MAPPING_FILE)
    err = one_line_error(cli("connectors", "check", "nomapping"))
    assert "set `mapping_file` on the connector class" in err
    assert "shipped in the plugin's package" in err
    assert "mappings/nomapping.toml" not in err


# -- the tests see the built-in plugins only ----------------------------------------------


def _install_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package with an ``evi`` entry point installed next to the hub, as pip leaves it
    (its module does not exist)."""
    info = tmp_path / "evi_test_elsewhere-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evi-test-elsewhere\n")
    (info / "entry_points.txt").write_text("[evi]\nelsewhere = evi_test_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_the_tests_do_not_see_what_else_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A package installed next to the hub, as pip leaves it; the autouse fixture in
    # tests/conftest.py hides it from plugin loading.
    _install_elsewhere(tmp_path, monkeypatch)
    assert "elsewhere" in {ep.name for ep in importlib.metadata.entry_points(group="evi")}
    pm = get_plugin_manager()
    assert sorted(name for name, _ in pm.list_name_plugin()) == sorted(BUILT_INS.split(","))


def test_a_test_can_ask_for_the_installed_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed_entry_points: None
) -> None:
    _install_elsewhere(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match=r"plugin 'elsewhere' .*cannot be imported"):
        get_plugin_manager()
