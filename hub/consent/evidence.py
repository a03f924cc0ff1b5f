"""Verify a consent's evidence through the ``evi_verify_consent_evidence`` hook.

The first plugin that recognises the evidence kind answers (firstresult). No answer at
all is a refusal: a consent whose evidence nobody could check never becomes active.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.consent.errors import EvidenceRefusedError
from hub.model.consent import EvidenceVerdict, PaperEvidence, PluginEvidence, SignatureEvidence
from hub.settings import Settings

if TYPE_CHECKING:
    import pluggy


def verify_evidence(
    plugins: pluggy.PluginManager,
    evidence: PaperEvidence | SignatureEvidence | PluginEvidence,
    document: bytes,
    settings: Settings,
) -> EvidenceVerdict:
    """The accepting verdict, or :class:`EvidenceRefusedError` saying why not."""
    verdict = plugins.hook.evi_verify_consent_evidence(
        evidence=evidence, document=document, settings=settings
    )
    if verdict is None:
        raise EvidenceRefusedError(
            f"consent refused: no evidence verifier handles evidence of kind '{evidence.kind}'; "
            "use kind 'paper' or 'signature', or install and allow (EVI_PLUGINS) the plugin "
            "that verifies it. Nothing was stored"
        )
    if not isinstance(verdict, EvidenceVerdict):
        raise EvidenceRefusedError(
            f"consent refused: the evidence verifier for kind '{evidence.kind}' returned "
            f"{type(verdict).__name__}, not an EvidenceVerdict; report it to the plugin's "
            "author. Nothing was stored"
        )
    if not verdict.accepted:
        raise EvidenceRefusedError(
            f"consent refused: {verdict.verifier}: {verdict.detail}. Nothing was stored"
        )
    return verdict
