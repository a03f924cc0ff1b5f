"""Helpers shared by the consent tests (this module holds no tests of its own).

* official Skatteverket test numbers (never invented ones);
* a settable clock for the consent service;
* consent submissions with paper evidence;
* a throwaway PKI (root, intermediate, signers) made with ``cryptography``;
* the ledger entries as decoded documents.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from hub.consent.document import submission_document
from hub.model.consent import ConsentSubmission
from hub.store.db import Database
from hub.store.tables.ledger import LedgerEntryRow

DATA = Path(__file__).parents[1] / "data"
CONSENT_DATA = DATA / "consent"
EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
JAN = datetime(2025, 1, 1, tzinfo=UTC)


def skatteverket_numbers(count: int, kind: str = "personnummer") -> list[str]:
    """The first ``count`` numbers of Skatteverket's official test list."""
    with (DATA / f"skatteverket_test{kind}.csv").open() as fh:
        rows = list(csv.reader(fh))[1 : count + 1]
    return [row[0] for row in rows]


@dataclass
class Clock:
    """A clock the test moves by hand: ``clock()`` returns ``now``."""

    now: datetime = field(default_factory=lambda: JAN + timedelta(days=1))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def paper_fields(pnr: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "pnr": pnr,
        "parties": ["kommun", "af", "team"],
        "categories": ["referral", "assessment", "plan"],
        "purposes": ["coordination"],
        "valid_from": "2025-01-01T00:00:00Z",
        "valid_until": "2026-01-01T00:00:00Z",
        "informed_by": "handlaggare-17",
        "informed_at": "2024-12-20T09:30:00Z",
        "evidence": {
            "kind": "paper",
            "document_sha256": hashlib.sha256(b"scanned form").hexdigest(),
            "witnessed_by": "handlaggare-17",
        },
    }
    data.update(overrides)
    return data


def paper_submission(pnr: str, **overrides: Any) -> ConsentSubmission:
    return ConsentSubmission.model_validate(paper_fields(pnr, **overrides))


def ledger(database: Database) -> list[dict[str, Any]]:
    """Every ledger entry as its canonical document, in sequence order."""
    with database.session() as session:
        rows = session.scalars(select(LedgerEntryRow.canonical).order_by(LedgerEntryRow.seq))
        return [json.loads(row) for row in rows if row is not None]


def ledger_bytes(database: Database) -> bytes:
    with database.session() as session:
        rows = session.scalars(select(LedgerEntryRow.canonical))
        return b"\n".join(row for row in rows if row is not None)


# -- a throwaway PKI ------------------------------------------------------------------------


def _name(common_name: str, serial: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if serial is not None:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attrs)


def _certificate(
    subject: x509.Name,
    key: Any,
    issuer: x509.Name,
    issuer_key: Any,
    *,
    ca: bool,
    days: int = 365,
) -> x509.Certificate:
    now = datetime.now(UTC)
    usage = x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Signer:
    key: Any
    certificate: x509.Certificate
    chain: list[x509.Certificate]

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            from cryptography.hazmat.primitives.asymmetric import padding

            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def evidence(self, document: bytes, *, signature: bytes | None = None) -> dict[str, Any]:
        return {
            "kind": "signature",
            "signature": base64.b64encode(signature or self.sign(document)).decode(),
            "certificates": [pem(c) for c in [self.certificate, *self.chain]],
        }


@dataclass
class Pki:
    """A root CA and an intermediate; ``signer(pnr)`` issues an e-ID-like certificate."""

    root_key: Any
    root: x509.Certificate
    intermediate_key: Any
    intermediate: x509.Certificate

    @classmethod
    def create(cls, name: str = "Test e-ID") -> Pki:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _certificate(
            _name(f"{name} Root"), root_key, _name(f"{name} Root"), root_key, ca=True
        )
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = _certificate(
            _name(f"{name} Issuing CA"), inter_key, _name(f"{name} Root"), root_key, ca=True
        )
        return cls(root_key, root, inter_key, inter)

    def signer(self, pnr: str, *, rsa_key: bool = False, serial: str | None = None) -> Signer:
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        subject = _name("Test Testsson", serial if serial is not None else pnr)
        cert = _certificate(
            subject, key, self.intermediate.subject, self.intermediate_key, ca=False
        )
        return Signer(key, cert, [self.intermediate])

    def anchors_file(self, path: Path) -> Path:
        path.write_text(pem(self.root))
        return path


def signed_fields(signer: Signer, pnr: str, **overrides: Any) -> dict[str, Any]:
    """Consent fields with a valid signature by ``signer`` over their canonical document."""
    fields = paper_fields(pnr, **overrides)
    document = submission_document(ConsentSubmission.model_validate(fields))
    fields["evidence"] = signer.evidence(document)
    return fields
