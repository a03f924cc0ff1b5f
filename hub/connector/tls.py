"""Client certificates (mTLS) for connectors whose authority authenticates that way.

The SSL context is built when the connector is built, so a missing, mismatched or
expired certificate is a :class:`ConnectorConfigError` before any request leaves, with
the option to fix in the message. The key password is a secret and never appears in it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from hub.connector.errors import ConnectorConfigError
from hub.connector.options import ClientCertificateOptions


def _readable(connector: str, option: str, path: Path) -> Path:
    resolved = path.expanduser()
    if not resolved.is_file():
        raise ConnectorConfigError(
            connector,
            f"{option} file {resolved} does not exist; set it with "
            f"`evi connectors configure {connector} --set {option}=PATH`",
        )
    return resolved


def certificate_expiry(path: Path) -> datetime:
    """When the first certificate in a PEM file stops being valid (UTC)."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.not_valid_after_utc


def client_ssl_context(
    connector: str,
    options: ClientCertificateOptions,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ssl.SSLContext:
    """An SSL context that verifies the authority and presents our client certificate."""
    cert = _readable(connector, "client_cert", options.client_cert)
    key = _readable(connector, "client_key", options.client_key)
    ca = _readable(connector, "ca_bundle", options.ca_bundle) if options.ca_bundle else None
    try:
        expires = certificate_expiry(cert)
    except ValueError:
        raise ConnectorConfigError(
            connector, f"client_cert {cert} is not a PEM certificate; point it at the PEM file"
        ) from None
    if expires <= now():
        raise ConnectorConfigError(
            connector,
            f"client certificate {cert} expired on {expires:%Y-%m-%d}; install a renewed "
            f"certificate and set it with `evi connectors configure {connector} "
            "--set client_cert=PATH --set client_key=PATH`",
        )
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    password = options.client_key_password

    def key_password() -> str:
        # Asked for only when the key is encrypted. Without a password configured, OpenSSL
        # would prompt on the terminal (a nightly job would hang there) or fail obscurely.
        if password is None:
            raise _EncryptedKeyError
        return password.get_secret_value()

    try:
        context.load_cert_chain(str(cert), str(key), key_password)
    except _EncryptedKeyError:
        raise ConnectorConfigError(
            connector,
            f"client_key {key} is encrypted and no client_key_password is set; set it with "
            f"`evi connectors configure {connector} --secret-from-env "
            "client_key_password=ENV_VAR`",
        ) from None
    except ssl.SSLError:
        raise ConnectorConfigError(
            connector,
            "client_cert and client_key do not belong together, or client_key_password is "
            f"wrong; set them with `evi connectors configure {connector} --set client_cert=PATH "
            "--set client_key=PATH`, the password with `--secret-from-env "
            "client_key_password=ENV_VAR`",
        ) from None
    return context


class _EncryptedKeyError(Exception):
    """The client key needs a password and none is configured."""
