"""Built-in evidence verifier: a detached electronic signature over the consent document.

Accepts ``kind = "signature"`` evidence when all of these hold:

1. the signer's certificate chains, through the given intermediates, to one of the
   trust anchors configured in ``[consent] trust_anchors`` (a PEM file; relative paths are
   under ``$EVI_HOME``), is valid now, is not a CA, and allows signing (key usage
   digitalSignature or nonRepudiation). Path building and checking is ``cryptography``'s
   RFC 5280 verifier (``cryptography.x509.verification``), not hand-written;
2. the signature verifies over the canonical consent document with the certificate's key
   (RSA PKCS#1 v1.5 with SHA-256, ECDSA with SHA-256, or Ed25519);
3. the certificate is the person's: its subject serialNumber (as in Swedish e-ID
   certificates: ``YYYYMMDDNNNC``, or ``PNOSE-YYYYMMDDNNNC`` per ETSI EN 319 412-1) is the
   number the consent document names.

Refusals say which check failed and never repeat names or numbers from the certificate.
Richer formats (CMS, XAdES, a particular e-ID service) belong in their own plugins.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from hub.consent.document import document_person
from hub.errors import ConfigError
from hub.hookspecs import hookimpl
from hub.model.consent import EvidenceVerdict, PaperEvidence, PluginEvidence, SignatureEvidence
from hub.settings import Settings

NAME = "evidence-signature"


def _refuse(detail: str) -> EvidenceVerdict:
    return EvidenceVerdict(accepted=False, verifier=NAME, detail=detail)


def trust_anchors_path(settings: Settings) -> Path | None:
    configured = settings.consent.trust_anchors
    if configured is None:
        return None
    path = configured.expanduser()
    return path if path.is_absolute() else settings.resolved_home / path


def load_trust_anchors(settings: Settings) -> list[x509.Certificate] | None:
    """The configured anchors; ``None`` when unset. A bad file is a :class:`ConfigError`."""
    path = trust_anchors_path(settings)
    if path is None:
        return None
    try:
        anchors = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError:
        raise ConfigError(
            f"consent.trust_anchors: cannot read {path}; point it at a PEM file of the CA "
            "certificates you trust for consent signatures"
        ) from None
    except ValueError:
        raise ConfigError(
            f"consent.trust_anchors: {path} holds no PEM certificates; it must contain one or "
            "more '-----BEGIN CERTIFICATE-----' blocks"
        ) from None
    return anchors


def _signing_key_usage(_policy: Policy, _cert: x509.Certificate, ku: x509.KeyUsage) -> None:
    if not (ku.digital_signature or ku.content_commitment):
        raise ValueError("the certificate's key usage does not allow signing")


def _not_a_ca(_policy: Policy, _cert: x509.Certificate, bc: x509.BasicConstraints | None) -> None:
    if bc is not None and bc.ca:
        raise ValueError("a CA certificate cannot sign consents")


def _verify_chain(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], anchors: list[x509.Certificate]
) -> str | None:
    """``None`` when the chain is good, else why not (without certificate contents)."""
    ee_policy = (
        ExtensionPolicy.permit_all()
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _signing_key_usage)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _not_a_ca)
    )
    verifier = (
        PolicyBuilder()
        .store(Store(anchors))
        .time(datetime.now(UTC))
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        text = str(exc)
        # cryptography's messages can quote certificate subjects (personal data); keep only
        # the reasons we raised ourselves.
        for ours in ("does not allow signing", "cannot sign consents"):
            if ours in text:
                return f"the signer's certificate is not fit for signing ({ours})"
        if "expired" in text or "not yet valid" in text or "validity" in text:
            return "the signer's certificate or its chain is not valid at this time"
        return "the signer's certificate does not chain to a configured trust anchor"
    return None


def _verify_signature(cert: x509.Certificate, signature: bytes, document: bytes) -> str | None:
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, document, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, document, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, document)
        else:
            return (
                f"the signer's key type ({type(key).__name__}) is not supported; "
                "use RSA, ECDSA or Ed25519"
            )
    except InvalidSignature:
        return (
            "the signature does not match the consent document and the signer's certificate "
            "(the document was changed after signing, or another key signed it)"
        )
    return None


def certificate_person(cert: x509.Certificate) -> str | None:
    """The 12-digit number in the subject serialNumber, or ``None``."""
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if not values:
        return None
    raw = str(values[0].value).strip().upper()
    raw = raw.removeprefix("PNOSE-")
    digits = re.sub(r"[^0-9]", "", raw)
    return digits if len(digits) == 12 else None


@hookimpl
def evi_verify_consent_evidence(
    evidence: PaperEvidence | SignatureEvidence | PluginEvidence,
    document: bytes,
    settings: Settings,
) -> EvidenceVerdict | None:
    if not isinstance(evidence, SignatureEvidence):
        return None
    anchors = load_trust_anchors(settings)
    if not anchors:
        return _refuse(
            "no trust anchors are configured for consent signatures; set [consent] "
            "trust_anchors (or EVI_CONSENT__TRUST_ANCHORS) to a PEM file of the CAs you trust"
        )
    chain: list[x509.Certificate] = []
    for index, pem in enumerate(evidence.certificates):
        try:
            chain.append(x509.load_pem_x509_certificate(pem.encode()))
        except ValueError:
            return _refuse(f"evidence.certificates[{index}] is not a PEM certificate")
    leaf, intermediates = chain[0], chain[1:]
    problem = _verify_chain(leaf, intermediates, anchors)
    if problem is None:
        problem = _verify_signature(leaf, base64.b64decode(evidence.signature), document)
    if problem is None:
        person = document_person(document)
        signer = certificate_person(leaf)
        if signer is None:
            problem = "the signer's certificate names no person (no subject serialNumber)"
        elif person is None or signer != person:
            problem = (
                "the signer is not the person the consent is about (the certificate's "
                "subject serialNumber differs from the consent's pnr)"
            )
    if problem is not None:
        return _refuse(problem)
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
    return EvidenceVerdict(
        accepted=True,
        verifier=NAME,
        detail=f"signature verified; signer certificate SHA-256 {fingerprint[:16]}…, "
        "chain to a configured trust anchor",
    )
