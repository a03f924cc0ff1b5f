"""Test certificates for the mTLS sandboxes (fk, region) served over real HTTPS.

Creates, once per directory, a throw-away CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate the connector presents. They are test material for the
authority's side of a sandbox, valid for a year, and never used for anything else. Keys
are written with mode 0600.

Both mTLS sandboxes of one ``$EVI_HOME`` share the directory and are often started at the
same moment, so the set is written to a private directory beside it and renamed into place
in one step: whoever renames first wins, the other discards its set and uses the winner's.
Without that, the second writer could replace the CA after the first had loaded a server
certificate signed by the old one, and every client handshake with it would fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import ConfigError


@dataclass(frozen=True)
class TestPki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EVI hub sandbox (test only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer_name: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _files(directory: Path) -> TestPki:
    return TestPki(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )


def _complete(pki: TestPki) -> bool:
    return all(p.is_file() for p in vars(pki).values())


def _write_set(pki: TestPki) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("EVI sandbox test CA", ca_key, _name("EVI sandbox test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue("127.0.0.1", server_key, ca_cert.subject, ca_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _issue("evi-hub sandbox client", client_key, ca_cert.subject, ca_key)
    pem = serialization.Encoding.PEM
    pki.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    pki.server_cert.write_bytes(server_cert.public_bytes(pem))
    pki.client_cert.write_bytes(client_cert.public_bytes(pem))
    _write_key(pki.server_key, server_key)
    _write_key(pki.client_key, client_key)


def ensure_test_pki(directory: Path) -> TestPki:
    """The test CA, server and client certificates in ``directory``, created if missing.

    Safe when several processes call it at once: they all end up with the same set."""
    pki = _files(directory)
    if _complete(pki):
        return pki
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        _write_set(_files(staging))
        os.rename(staging, directory)  # atomic; refused if another set is already there
    except OSError:
        if not _complete(pki):
            raise ConfigError(
                f"{directory} holds an incomplete set of sandbox test certificates; "
                "remove that directory and start the sandbox again"
            ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return pki
