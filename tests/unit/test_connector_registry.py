"""Connectors come from plugins; each class is checked as it registers."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from hub import hookspecs
from hub.connector import Connector, ConnectorConfigError, ConnectorOptions, hookimpl
from hub.connector.registry import get_connector, load_connectors
from hub.errors import ConfigError, NotFoundError
from hub.model.identity import PersonalIdentity
from hub.model.records import CommonRecord, NativeRecord, PushResult, Transfer
from hub.model.vocab import Category
from hub.plugins import get_plugin_manager

DOCS = Path(__file__).parents[2] / "docs" / "connector-authoring.md"


class Tiny(Connector):
    name = "tiny"
    authority = "Tiny authority"
    version = "0.1"
    delivers = frozenset({Category.OUTCOME})

    def check(self) -> None:
        return None

    def pull(
        self, cursor: str | None, subscriptions: Sequence[PersonalIdentity]
    ) -> Iterator[NativeRecord]:
        return iter(())

    def map(self, native: NativeRecord) -> CommonRecord:
        raise NotImplementedError


class Plugin:
    def __init__(self, *classes: object) -> None:
        self.classes = classes

    @hookimpl
    def evi_register_connectors(self, register: Callable[[Any], None]) -> None:
        for cls in self.classes:
            register(cls)


def with_plugin(*classes: object, name: str = "third-party") -> Any:
    pm = get_plugin_manager()
    pm.register(Plugin(*classes), name=name)
    return pm


def test_the_four_built_in_connectors_are_registered_like_any_plugin() -> None:
    found = load_connectors(get_plugin_manager())
    assert {n: c.plugin for n, c in found.items()} == {
        "af": "af",
        "fk": "fk",
        "kommun": "kommun",
        "region": "region",
    }


def test_a_plugin_adds_a_connector_without_touching_the_hub() -> None:
    found = load_connectors(with_plugin(Tiny))
    assert found["tiny"].cls is Tiny and found["tiny"].plugin == "third-party"


class Abstract(Connector):
    name = "abstract"
    authority = "A"
    version = "1"


class BadName(Tiny):
    name = "Bad Name"


class Team(Tiny):
    name = "team"


class NoVersion(Tiny):
    version = ""


class LaxOptions(Tiny):
    class Options(BaseModel):
        url: str


class DigitFirst(Tiny):
    name = "2vux"  # a name that starts with a digit, though its characters are all allowed


class BadCategories(Tiny):
    delivers = frozenset({"health"})  # type: ignore[assignment]


class PlainSandboxApp(Tiny):
    def sandbox_app(self, settings: Any) -> Any:  # type: ignore[override]  # no @classmethod
        return None


class PlainSandboxOptions(Tiny):
    def sandbox_options(self, base_url: str, home: Path) -> dict[str, Any]:  # type: ignore[override]
        return {"base_url": base_url}


class PlainServerOptions(Tiny):
    def sandbox_server_options(self, home: Path) -> dict[str, Any]:  # type: ignore[override]
        return {}


class PlainBuildClient(Tiny):
    def build_client(self, options: Any, *, transport: Any = None) -> Any:  # type: ignore[override]
        raise NotImplementedError


class ReceivesWithoutPush(Tiny):
    receives = frozenset({Category.REFERRAL})


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        (object, "is not a subclass of hub.connector.Connector"),
        (Abstract, "does not implement check, map, pull"),
        (BadName, "name must be 2-32 lowercase"),
        (Team, "(and not 'team')"),
        (DigitFirst, "starting with a letter"),
        (NoVersion, "version must be a non-empty string"),
        (LaxOptions, "Options must refuse unknown keys"),
        (BadCategories, "delivers must be a frozenset of"),
        (PlainSandboxApp, "PlainSandboxApp.sandbox_app must be a classmethod"),
        (PlainSandboxOptions, "PlainSandboxOptions.sandbox_options must be a classmethod"),
        (PlainServerOptions, "PlainServerOptions.sandbox_server_options must be a classmethod"),
        (PlainBuildClient, "PlainBuildClient.build_client must be a classmethod"),
        (ReceivesWithoutPush, "receives is not empty, so it must implement push()"),
    ],
)
def test_an_invalid_connector_is_refused_naming_the_plugin(cls: object, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_connectors(with_plugin(cls))
    message = str(err.value)
    assert message.startswith("plugin 'third-party' registered an invalid connector")
    assert words in message and "EVI_PLUGINS" in message


def test_a_connector_that_receives_may_push_one_at_a_time_or_in_batches() -> None:
    class Pushes(ReceivesWithoutPush):
        name = "pushes"

        def push(self, transfer: Transfer) -> PushResult:
            raise NotImplementedError

    class Batches(ReceivesWithoutPush):
        name = "batches"
        push_batch_size = 100

        def push_many(self, transfers: Sequence[Transfer]) -> list[PushResult]:
            raise NotImplementedError

    class Sandboxed(Tiny):
        name = "sandboxed"

        @classmethod
        def sandbox_options(cls, base_url: str, home: Path) -> dict[str, Any]:
            return {"base_url": base_url}

    assert {"pushes", "batches", "sandboxed"} <= set(
        load_connectors(with_plugin(Pushes, Batches, Sandboxed))
    )


def test_a_plugin_connector_without_a_mapping_file_is_told_to_set_one() -> None:
    connector = Tiny(Tiny.Options(), httpx.Client())
    with pytest.raises(ConnectorConfigError) as err:
        connector.mapping  # noqa: B018
    message = str(err.value)
    assert message.startswith("tiny: ") and "mappings" not in message
    assert (
        "set `mapping_file` on the connector class to the mapping file shipped in the "
        "plugin's package" in message
    )


def test_two_plugins_claiming_one_name_are_refused() -> None:
    class Kommun(Tiny):
        name = "kommun"

    with pytest.raises(ConfigError, match="registered by both plugin 'kommun' and plugin 'x'"):
        load_connectors(with_plugin(Kommun, name="x"))


def test_the_allowlist_leaves_out_what_it_does_not_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVI_PLUGINS", "kommun,fk")
    assert list(load_connectors(get_plugin_manager())) == ["fk", "kommun"]


def test_an_allowlist_naming_no_installed_plugin_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A typo (or the wrong case) would leave that plugin out without a word.
    for typed, named in (("kommun,nosuch", "'nosuch'"), (" kommun , AF", "'AF'")):
        monkeypatch.setenv("EVI_PLUGINS", typed)
        with pytest.raises(ConfigError, match=f"EVI_PLUGINS names {named}, which is no"):
            get_plugin_manager()


def test_a_connector_the_allowlist_leaves_out_is_said_to_be_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVI_PLUGINS", "kommun,af")
    with pytest.raises(NotFoundError, match="'fk' is installed but EVI_PLUGINS leaves it out"):
        get_connector(get_plugin_manager(), "fk")


def test_an_unknown_name_lists_what_is_installed() -> None:
    with pytest.raises(NotFoundError, match=r"installed: af, fk, kommun, region"):
        get_connector(get_plugin_manager(), "csn")


def test_an_identity_number_typed_as_a_connector_name_is_not_repeated() -> None:
    # The name comes from a URL path too: POST /api/admin/connectors/{name}/check.
    for typed in ("199001012385", "19900101-2385", "x900101-2385"):
        with pytest.raises(NotFoundError) as err:
            get_connector(get_plugin_manager(), typed)
        message = str(err.value)
        assert message.startswith("no connector by that name is installed (installed: af,")
        assert "2385" not in message


def test_the_options_of_every_built_in_refuse_unknown_keys() -> None:
    for entry in load_connectors(get_plugin_manager()).values():
        assert issubclass(entry.cls.Options, ConnectorOptions)
        assert entry.cls.Options.model_config["extra"] == "forbid"


def test_the_registration_hook_is_typed_and_documented_with_its_signature() -> None:
    spec = hookspecs.evi_register_connectors
    assert spec.__doc__ and "register(ConnectorSubclass)" in spec.__doc__
    signature = "evi_register_connectors(register: Callable[[type[Connector]], None]) -> None"
    assert f"def {signature}" in inspect.getsource(spec)
    assert signature in DOCS.read_text()


def test_the_hub_never_imports_a_connector() -> None:
    hub_dir = Path(__file__).parents[2] / "hub"
    offenders = [
        f"{path.relative_to(hub_dir.parent)}:{number}"
        for path in hub_dir.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.strip().startswith(("import connectors", "from connectors"))
    ]
    assert offenders == []
