"""Connector options: the nested ``Options`` model, secrets, and the ``key=value`` edge.

Every connector declares ``class Options(ConnectorOptions)``. The model refuses unknown
keys (``extra="forbid"``) so a misspelt option is an error, not a silently ignored line;
secrets are ``SecretStr`` so ``repr()``, ``str()`` and ``model_dump()`` show ``**********``.

Options are stored field by field (see :mod:`hub.connector.service`): plain values as JSON,
``SecretStr`` values encrypted. ``evi connectors configure NAME --set key=value`` may set
one option at a time, so a single value is validated against its field here, and the whole
model only when a connector is built (:func:`build_options`), with a message naming each
missing option and the command that sets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
)

from hub.connector.errors import ConnectorConfigError
from hub.connector.limits import DEADLINE_FACTOR
from hub.errors import InputError
from hub.model.problems import problems

MASK = "**********"


class ConnectorOptions(BaseModel):
    """Base of every connector's ``Options``: unknown keys are refused, instances frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""An http(s) URL without a trailing slash. A type-level validator (not a model
``field_validator``) so that setting the one option alone normalises it too. Plain http is
accepted here (the in-process demo uses it, and no network is involved there); the client
refuses it over the network except to a loopback address
(:func:`hub.connector.http.require_secure_url`)."""


class HttpOptions(ConnectorOptions):
    """Options every HTTP connector shares."""

    base_url: HttpUrl = Field(
        description="Root URL of the authority's API: https (plain http only to this "
        "machine, e.g. a sandbox on 127.0.0.1)."
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Connect timeout and longest wait for the next bytes of an answer; a "
        f"whole request may take at most {DEADLINE_FACTOR:g} times this.",
    )


class ClientCertificateOptions(HttpOptions):
    """Options of a connector that authenticates with a TLS client certificate (mTLS).

    The certificate and key files are PEM. ``ca_bundle`` is the authority's CA; when it is
    not given the system's trust store is used.
    """

    client_cert: Path = Field(description="PEM file with the client certificate (and chain).")
    client_key: Path = Field(description="PEM file with the client certificate's private key.")
    client_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted client key."
    )
    ca_bundle: Path | None = Field(
        default=None, description="PEM file with the CA that signed the authority's server."
    )


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def secret_fields(options: type[BaseModel]) -> frozenset[str]:
    """Names of the options stored encrypted and never shown (the ``SecretStr`` fields)."""
    return frozenset(
        name for name, field in options.model_fields.items() if _is_secret(field.annotation)
    )


def parse_assignments(items: list[str], option: str = "--set") -> dict[str, str]:
    """``["key=value", …]`` from the command line; raises :class:`InputError` naming the bad one.

    The message quotes only the key, never the value (it may be a secret).
    """
    result: dict[str, str] = {}
    example = "token=KOMMUN_TOKEN" if option == "--secret-from-env" else "base_url=https://…"
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(
                f"each {option} takes KEY={'ENV_VAR' if option != '--set' else 'VALUE'} "
                f"(for example {option} {example})"
            )
        result[key] = value
    return result


def _adapter(options: type[BaseModel], key: str) -> TypeAdapter[Any]:
    field = options.model_fields[key]
    # The FieldInfo carries the constraints (ge, le, …) the bare annotation lacks.
    annotated: Any = Annotated[cast(Any, field.annotation), field]
    return TypeAdapter(annotated)


def validate_values(
    connector: str, options: type[BaseModel], values: dict[str, Any]
) -> dict[str, Any]:
    """Validate some options one by one; returns the values in their field types.

    Raises :class:`InputError` naming unknown keys (and the known ones) or the field that
    does not fit, never the value. Strings are read the way the command line means them
    (``5``, ``true``, a path, or JSON for lists). Field validators run too; checks that
    need every option run when the connector is built (:func:`build_options`).
    """
    fields = options.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(
            f"{connector} has no option {', '.join(repr(u) for u in unknown)}; "
            f"its options are {', '.join(sorted(fields))} (see `evi connectors spec {connector}`)"
        )
    result: dict[str, Any] = {}
    for key, value in values.items():
        adapter = _adapter(options, key)
        try:
            if isinstance(value, str):
                try:
                    parsed = adapter.validate_strings(value)
                except ValidationError:
                    if not value.lstrip().startswith(("[", "{")):
                        raise
                    parsed = adapter.validate_json(value)
            else:
                parsed = adapter.validate_python(value)
        except ValidationError as exc:
            reasons = "; ".join(p.split(": ", 1)[-1] for p in problems(exc))
            raise InputError(f"{connector} option '{key}': {reasons}") from None
        if isinstance(parsed, SecretStr) and not parsed.get_secret_value().strip():
            # An empty token or password reaches the authority as a malformed header and
            # reads as "it may be overloaded": retried, and counted towards pausing.
            raise InputError(
                f"{connector} option '{key}' is empty; give the secret (with "
                f"--secret-from-env {key}=ENV_VAR, the variable must hold it), or --unset {key}"
            )
        if isinstance(parsed, Path) and not parsed.is_absolute():
            parsed = parsed.absolute()  # the nightly job runs from another directory
        result[key] = parsed
    try:
        options.model_validate(result)
    except ValidationError as exc:
        for err in exc.errors(include_input=False):
            if err["type"] != "missing" and err["loc"] and err["loc"][0] in result:
                raise InputError(f"{connector} option '{err['loc'][0]}': {err['msg']}") from None
    return result


def to_storable(options: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON values for the non-secret options in ``values`` (secrets are skipped)."""
    secrets = secret_fields(options)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in secrets:
            continue
        out[key] = _adapter(options, key).dump_python(value, mode="json")
    return out


def build_options(connector: str, options: type[BaseModel], values: dict[str, Any]) -> Any:
    """The validated options model, or :class:`ConnectorConfigError` saying what to set.

    ``values`` holds plain values and decrypted secrets. The message lists every missing or
    invalid option by name and the command that sets it; it never repeats a value.
    """
    try:
        return options.model_validate(values)
    except ValidationError as exc:
        missing = [
            str(e["loc"][0])
            for e in exc.errors(include_input=False)
            if e["type"] == "missing" and e["loc"]
        ]
        if missing:
            hidden = secret_fields(options)
            sets = " ".join(
                f"--secret-from-env {m}=ENV_VAR" if m in hidden else f"--set {m}=…" for m in missing
            )
            names = [repr(m) for m in missing]
            which = (
                f"option {names[0]} is not set"
                if len(names) == 1
                else f"options {', '.join(names[:-1])} and {names[-1]} are not set"
            )
            raise ConnectorConfigError(
                connector, f"{which}; run `evi connectors configure {connector} {sets}`"
            ) from None
        raise ConnectorConfigError(
            connector,
            "invalid options: "
            + "; ".join(problems(exc))
            + f"; fix them with `evi connectors configure {connector} --set KEY=VALUE`",
        ) from None


def masked(options: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """Values fit to show: every secret that is set becomes ``**********``."""
    secrets = secret_fields(options)
    shown: dict[str, Any] = {}
    for key, value in values.items():
        if key in secrets:
            shown[key] = MASK if value is not None else None
        else:
            shown[key] = value
    return shown


def options_schema(options: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of the options; secrets are marked ``writeOnly`` and ``format: password``."""
    schema: dict[str, Any] = options.model_json_schema()
    return schema
