"""Effective configuration: shipped ``config/evi.toml`` < user file < ``EVI_*`` environment.

Read once through :func:`get_settings` (cached; tests call ``get_settings.cache_clear()``).
Secrets are ``SecretStr`` and are masked by :func:`masked_dump`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hub.errors import ConfigError
from hub.ownership import require_own
from hub.resources import bundled_path


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeySettings(_Section):
    """Keys given through the environment (base64, 32 bytes) instead of files under ``keys/``."""

    pnr_encryption: SecretStr | None = None
    pnr_lookup: SecretStr | None = None
    pseudonym: SecretStr | None = None
    connector_secrets: SecretStr | None = None
    ledger_signing: SecretStr | None = None


EXAMPLE_ORIGIN = "evi-hub.example/ledger"
"""The shipped ``[ledger] origin``: fine for the demo, refused in production."""


class LedgerSettings(_Section):
    origin: str = EXAMPLE_ORIGIN
    witness_dir: Path | None = None
    minimum_retention_days: int = Field(
        default=365,
        ge=0,
        le=36_500,
        description="days the transfer log's entries keep their content at least: `evi log "
        "purge` refuses a --before within them (hub.ledger.purge); 0: no minimum",
    )


class ConsentSettings(_Section):
    """``trust_anchors``: PEM file of the CA certificates whose e-signatures the hub accepts
    on consents (relative paths are under ``home``). Unset: signature evidence is refused."""

    trust_anchors: Path | None = None


class SyncSettings(_Section):
    max_attempts: int = Field(default=5, ge=1, le=100)
    pause_after_failures: int = Field(default=3, ge=1, le=365)
    strict_mapping: bool = False
    certificate_warning_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="warn this many days before a connector's client certificate expires "
        "(hub.connector.expiry); 0: never",
    )
    helpers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="helper processes a sync runs at a time (hub.sync.fanout); unset: one "
        "per core; 0: everything in the `evi sync` process",
    )


class RoutingRule(_Section):
    """Who should know a kind of record: parties by name, or the roles below.

    ``referring_party``: the authority that referred the person to the joint team;
    ``case_parties``: every authority the person's consent names (their subscriptions).
    The record's own origin never receives it back, and ``team`` needs no delivery: the
    joint team sees what the hub stores.
    """

    kinds: list[
        Literal["referral", "assessment", "plan", "intervention", "benefit", "health", "closure"]
    ] = Field(min_length=1)
    to: list[str] = Field(min_length=1)
    purpose: Literal["coordination", "evaluation"] = "coordination"


class WebSettings(_Section):
    language: Literal["sv", "en"] = Field(
        default="sv",
        description="language of the pages when the browser asks for neither sv nor en",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description=(
            "addresses or networks (comma-separated, e.g. 10.0.4.7 or 10.0.4.0/24) of the TLS "
            "reverse proxies whose X-Forwarded-For/-Proto the server believes"
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            try:  # not "*": anyone who reaches the port could then claim any address
                ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    "give IP addresses or networks, comma-separated, e.g. 10.0.4.7,10.0.5.0/24"
                ) from None
        return value


class Settings(BaseSettings):
    """Every setting EVI hub reads. Unknown keys anywhere are refused."""

    model_config = SettingsConfigDict(
        env_prefix="EVI_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    environment: Literal["development", "production"] = "development"
    home: Path = Path("./var")
    config: Path | None = None
    database_url: SecretStr | None = None
    keys: KeySettings = KeySettings()
    ledger: LedgerSettings = LedgerSettings()
    consent: ConsentSettings = ConsentSettings()
    sync: SyncSettings = SyncSettings()
    web: WebSettings = WebSettings()
    routing: list[RoutingRule] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        user_file = _user_config_file()
        if user_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=user_file))
        sources.append(
            TomlConfigSettingsSource(settings_cls, toml_file=bundled_path("config") / "evi.toml")
        )
        return tuple(sources)

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def keys_dir(self) -> Path:
        return self.resolved_home / "keys"

    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.resolved_home / 'evi.db'}"


def _user_config_file() -> Path | None:
    explicit = os.environ.get("EVI_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} (from EVI_CONFIG) does not exist")
        require_own(path, "the configuration file")
        return _readable_toml(path)
    home = Path(os.environ.get("EVI_HOME", "./var")).expanduser()
    if home.is_dir():
        require_own(home, "EVI_HOME")
    candidate = home / "evi.toml"
    if not candidate.is_file():
        return None
    require_own(candidate, "the configuration file")
    return _readable_toml(candidate)


def _readable_toml(path: Path) -> Path:
    """``path`` if it is TOML the settings can read; else :class:`ConfigError` naming the
    file and where it breaks (tomllib's words name a line and column, never a value)."""
    try:
        with path.open("rb") as fh:
            tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"the configuration file {path} is not valid TOML: {exc}; fix it (or move it "
            "away to run on the defaults)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"the configuration file {path} is not UTF-8 text; save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"the configuration file {path} cannot be read ({exc.strerror}); check its "
            "owner and mode"
        ) from None
    return path


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{where}': remove it or check its spelling")
        else:
            problems.append(f"setting '{where}': {err['msg']}")
    return "invalid configuration: " + "; ".join(problems)


READ_ELSEWHERE = frozenset({"PLUGINS"})
"""``EVI_*`` variables the hub reads that are no setting (``EVI_PLUGINS``: which plugins)."""


def unknown_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """The ``EVI_*`` variables no setting reads, sorted. pydantic-settings refuses an
    unknown key under a section (``EVI_SYNC__MAX_ATTEMPS``) but passes over an unknown
    top-level one, so ``EVI_DATABSE_URL`` would leave the hub on its SQLite default
    without a word. ``EVI_TEST_*`` belong to the test suite."""
    names = os.environ if environ is None else environ
    unknown = []
    for name in names:
        upper = name.upper()
        if not upper.startswith("EVI_") or upper.startswith("EVI_TEST_"):
            continue
        rest = upper.removeprefix("EVI_")
        if rest in READ_ELSEWHERE or rest.split("__", 1)[0].lower() in Settings.model_fields:
            continue
        unknown.append(name)
    return sorted(unknown)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load and validate the settings once; raises :class:`ConfigError` with what to fix."""
    unknown = unknown_environment()
    if unknown:
        known = ", ".join(f"EVI_{field.upper()}" for field in Settings.model_fields)
        connectors = (
            "; a connector's options are set with `evi connectors configure`, not variables"
            if any(n.upper().startswith("EVI_CONNECTORS") for n in unknown)
            else ""
        )
        raise ConfigError(
            f"invalid configuration: unknown setting in the environment: {', '.join(unknown)}: "
            f"remove it or check its spelling (the settings are {known}, EVI_PLUGINS, and "
            f"sections as EVI_SYNC__MAX_ATTEMPTS){connectors}"
        )
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return settings


def require_fit_for_production(settings: Settings) -> None:
    """Where ``environment = "production"``, refuse what is only fit for a developer's
    machine (:class:`ConfigError` saying what to set); elsewhere do nothing."""
    if settings.environment != "production":
        return
    if settings.ledger.origin == EXAMPLE_ORIGIN:
        raise ConfigError(
            f"environment is production but [ledger] origin is still the example "
            f"'{EXAMPLE_ORIGIN}': set it (EVI_LEDGER__ORIGIN) to a name unique to this "
            "deployment, e.g. evi.kommun.se/ledger, before the first sync: the log's "
            "signed checkpoints carry it, and it cannot change later"
        )
    if settings.ledger.minimum_retention_days == 0:
        raise ConfigError(
            "environment is production but [ledger] minimum_retention_days is 0, which lets "
            "evi log purge empty the transfer log's entries of yesterday: set it "
            "(EVI_LEDGER__MINIMUM_RETENTION_DAYS) to the days the log must stay readable "
            "at least (default 365; see docs/ledger.md); 0 is for test and demo databases"
        )


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, every secret replaced by ``'**********'``."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    from hub.store.db import safe_url  # SQLAlchemy only when asked (the CLI starts faster)

    data["database_url"] = safe_url(settings.effective_database_url())
    return data
