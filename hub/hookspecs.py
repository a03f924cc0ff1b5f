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
    from hub.connector.base import Connector
    from hub.ledger.checkpoint import Checkpoint
    from hub.model.consent import (
        EvidenceVerdict,
        PaperEvidence,
        PluginEvidence,
        SignatureEvidence,
    )
    from hub.settings import Settings

hookspec = pluggy.HookspecMarker("evi")
hookimpl = pluggy.HookimplMarker("evi")


# ---------------------------------------------------------------------------------------
# Registration: called once when the plugin manager is built
# ---------------------------------------------------------------------------------------


@hookspec
def evi_register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Register connector classes by calling ``register(ConnectorSubclass)``.

    Called for every plugin, each time the hub lists its connectors (``evi connectors
    list``, a sync run); keep it free of side effects. ``register`` validates the class on
    the spot (a concrete :class:`hub.connector.Connector` subclass, a unique lowercase
    ``name``, ``authority`` and ``version`` strings, an ``Options`` model with
    ``extra="forbid"``) and raises :class:`hub.errors.ConfigError` naming the plugin for a
    bad one. Returns nothing. See docs/connector-authoring.md.
    """


# ---------------------------------------------------------------------------------------
# Consent: evidence verification
# ---------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def evi_verify_consent_evidence(
    evidence: PaperEvidence | SignatureEvidence | PluginEvidence,
    document: bytes,
    settings: Settings,
) -> EvidenceVerdict | None:
    """Verify the evidence attached to a consent before the consent becomes active.

    Called once per registration or amendment, before anything is stored. ``evidence``
    is the consent file's evidence (``evidence.kind`` says which; unknown kinds arrive as
    ``PluginEvidence`` with their fields in ``data``), ``document`` the canonical consent
    document bytes (:mod:`hub.consent.document`) that a signature must cover; it names
    the person (``pnr``) so a verifier can check the signer is them.

    Return ``None`` for evidence kinds this plugin does not handle, otherwise an
    ``EvidenceVerdict``: ``accepted=False`` with a one-line ``detail`` saying what is
    wrong refuses the consent. Never put personal data in ``detail``. Stops at the first
    non-``None`` result; when no plugin answers the consent is refused. Built-ins:
    ``plugins.evidence_paper`` and ``plugins.evidence_signature``.
    """


# ---------------------------------------------------------------------------------------
# Ledger: checkpoints
# ---------------------------------------------------------------------------------------


@hookspec
def evi_checkpoint_signed(checkpoint: Checkpoint, settings: Settings) -> None:
    """A new signed checkpoint exists; hand it to witnesses or write-once storage.

    Called for every plugin once the transaction that stored ``checkpoint`` has committed
    (never for one that rolled back). ``checkpoint.note`` is the exact C2SP signed note;
    ``checkpoint.size`` and ``checkpoint.root`` what it signs. A plugin that fails raises;
    the other plugins are still called, the checkpoint stays valid, and the failure is
    logged and listed in ``checkpoint.witness_failures`` for the caller. Returns nothing.
    """


# ---------------------------------------------------------------------------------------
# Sync: after a run
# ---------------------------------------------------------------------------------------


@hookspec
def evi_sync_finished(report: Any, settings: Settings) -> None:
    """A sync run has finished (successfully or not); ``report`` is its per-connector report.

    Called for every plugin; use it to forward statistics or alert. Returns nothing.
    """
