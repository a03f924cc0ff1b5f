"""What the mTLS sandboxes (fk, region) share: server and client TLS settings.

Over real HTTP, ``evi sandbox serve`` runs uvicorn with the server certificate and
``CERT_REQUIRED`` against the test CA, so a client without the test client certificate
fails the TLS handshake. In-process (``InProcessTransport``) there is no TLS layer at
all: the connector still loads and checks its certificate when it is built, but nothing
verifies it; see docs/connectors.md.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from connectors.sandbox_kit.tls import ensure_test_pki


def pki_dir(home: Path) -> Path:
    return home / "sandbox" / "tls"


def server_options(home: Path) -> dict[str, Any]:
    """uvicorn settings for HTTPS that requires a client certificate from the test CA."""
    pki = ensure_test_pki(pki_dir(home))
    return {
        "ssl_certfile": str(pki.server_cert),
        "ssl_keyfile": str(pki.server_key),
        "ssl_ca_certs": str(pki.ca_cert),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }


def client_options(base_url: str, home: Path) -> dict[str, Any]:
    """Connector options that present the test client certificate and trust the test CA."""
    pki = ensure_test_pki(pki_dir(home))
    return {
        "base_url": base_url,
        "client_cert": str(pki.client_cert),
        "client_key": str(pki.client_key),
        "ca_bundle": str(pki.ca_cert),
    }
