"""Every extension point of EVI hub, grouped by lifecycle phase.

A plugin is any object or module with functions marked ``@hookimpl`` whose names match
the specs below. Built-ins are registered exactly like third-party plugins (see
:mod:`hub.plugins`). Specs may gain arguments later; implementations may accept fewer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from hub.settings import Settings

hookspec = pluggy.HookspecMarker("evi")
hookimpl = pluggy.HookimplMarker("evi")


# ---------------------------------------------------------------------------------------
# Registration: called once when the plugin manager is built
# ---------------------------------------------------------------------------------------


@hookspec
def evi_register_connectors(register: Callable[[type[Any]], None]) -> None:
    """Register connector classes by calling ``register(ConnectorSubclass)``.

    Called once per plugin when connectors are first listed. The hub validates each class
    as it is registered (unique ``name``, an ``Options`` model) and refuses bad ones with
    a message naming the plugin. Returns nothing.
    """


# ---------------------------------------------------------------------------------------
# Consent: evidence verification
# ---------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def evi_verify_consent_evidence(evidence: Any, document: bytes, settings: Settings) -> Any | None:
    """Verify the evidence attached to a consent before the consent becomes active.

    ``evidence`` is the consent's evidence model, ``document`` the canonical consent
    document bytes that a signature must cover. Return a verdict for evidence kinds this
    plugin understands, ``None`` to let another plugin answer. Stops at the first
    non-``None`` result; when no plugin answers the consent is refused.
    """


# ---------------------------------------------------------------------------------------
# Ledger: checkpoints
# ---------------------------------------------------------------------------------------


@hookspec
def evi_checkpoint_signed(checkpoint: Any, settings: Settings) -> None:
    """A new signed checkpoint exists; hand it to witnesses or write-once storage.

    Called for every plugin after the checkpoint is stored. A plugin that fails raises;
    the checkpoint stays valid and the failure is reported to the caller.
    """


# ---------------------------------------------------------------------------------------
# Sync: after a run
# ---------------------------------------------------------------------------------------


@hookspec
def evi_sync_finished(report: Any, settings: Settings) -> None:
    """A sync run has finished (successfully or not); ``report`` is its per-connector report.

    Called for every plugin; use it to forward statistics or alert. Returns nothing.
    """
