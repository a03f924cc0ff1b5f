"""What the four sandboxes share: the synthetic population, the change feed, fault knobs,
idempotent push storage, test certificates and the ``/_sandbox`` endpoints.

Identity numbers come only from Skatteverket's official test numbers (``data/``, copied
from Skatteverket's published lists); names and addresses from Faker's ``sv_SE`` locale.
Everything is a pure function of the seed: the same seed gives the same people and records
in-process and over HTTP.
"""

from connectors.sandbox_kit.app import SandboxKit
from connectors.sandbox_kit.population import Person, Population, skatteverket_numbers

__all__ = ["Person", "Population", "SandboxKit", "skatteverket_numbers"]
