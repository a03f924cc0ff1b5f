"""Built-in evidence verifier: a signed paper form, scanned and witnessed.

Accepts ``kind = "paper"`` evidence when it names the caseworker who witnessed the
signature and the SHA-256 of the scanned form. When the consent file also names the
scan (``evidence.scan``), the file is read and must hash to exactly that value, so a
changed or mixed-up scan is refused. The scan itself is not stored by the hub.
"""

from __future__ import annotations

import hashlib

from hub.hookspecs import hookimpl
from hub.model.consent import EvidenceVerdict, PaperEvidence, PluginEvidence, SignatureEvidence
from hub.settings import Settings

NAME = "evidence-paper"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _refuse(detail: str) -> EvidenceVerdict:
    return EvidenceVerdict(accepted=False, verifier=NAME, detail=detail)


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@hookimpl
def evi_verify_consent_evidence(
    evidence: PaperEvidence | SignatureEvidence | PluginEvidence,
    document: bytes,
    settings: Settings,
) -> EvidenceVerdict | None:
    if not isinstance(evidence, PaperEvidence):
        return None
    if evidence.document_sha256 == EMPTY_SHA256:
        return _refuse(
            "evidence.document_sha256 is the SHA-256 of an empty file; scan the signed form "
            "again and give the SHA-256 of the scan"
        )
    if not evidence.witnessed_by.strip():
        return _refuse("evidence.witnessed_by is blank; name the caseworker who witnessed it")
    checked = ""
    if evidence.scan is not None:
        try:
            actual = _file_sha256(str(evidence.scan))
        except OSError as exc:
            return _refuse(f"evidence.scan cannot be read ({exc.strerror or 'unreadable'})")
        if actual != evidence.document_sha256:
            return _refuse(
                "the SHA-256 of evidence.scan does not match evidence.document_sha256 "
                "(the scan was changed after it was recorded, or it is another file)"
            )
        checked = "; scan file checked"
    return EvidenceVerdict(
        accepted=True,
        verifier=NAME,
        detail=f"paper form, scan SHA-256 {evidence.document_sha256[:16]}…, witnessed{checked}",
    )
