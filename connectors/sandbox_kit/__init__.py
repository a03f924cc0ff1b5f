"""What the four sandboxes share: the synthetic population, the change feed, fault knobs,
idempotent push storage, test certificates and the ``/_sandbox`` endpoints.

Identity numbers come only from Skatteverket's official test numbers (``data/``, copied
from Skatteverket's published lists); names and addresses from Faker's ``sv_SE`` locale.
Everything is a pure function of the seed: the same seed gives the same people and records
in-process and over HTTP.

The names below are imported on first use (PEP 562 ``__getattr__``), not with the package:
the fk and region connectors import :mod:`connectors.sandbox_kit.mtls` for their client
settings on every ``evi`` start, and the app (FastAPI) and population (Faker) modules cost
about 0.35 s to import, which only a sandbox that is actually served or run in-process needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.sandbox_kit.app import SandboxKit
    from connectors.sandbox_kit.population import Person, Population, skatteverket_numbers

__all__ = ["Person", "Population", "SandboxKit", "skatteverket_numbers"]

_HOMES = {
    "SandboxKit": "connectors.sandbox_kit.app",
    "Person": "connectors.sandbox_kit.population",
    "Population": "connectors.sandbox_kit.population",
    "skatteverket_numbers": "connectors.sandbox_kit.population",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value
