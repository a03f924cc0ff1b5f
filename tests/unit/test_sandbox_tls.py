"""The mTLS sandboxes' test certificates: one consistent set, even when fk and region start
at the same moment and both create it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from cryptography import x509

from connectors.sandbox_kit.tls import ensure_test_pki
from hub.errors import ConfigError

RACERS = 6


def _race(directory: str, start: object) -> bytes:
    start.wait()  # type: ignore[attr-defined]
    pki = ensure_test_pki(Path(directory))
    return pki.server_cert.read_bytes() + pki.ca_cert.read_bytes()  # what a server would load


def test_processes_creating_the_set_at_once_all_load_the_same_chain(tmp_path: Path) -> None:
    directory = tmp_path / "sandbox" / "tls"
    context = multiprocessing.get_context("fork")
    start = context.Manager().Barrier(RACERS)
    with context.Pool(RACERS) as pool:
        loaded = pool.starmap(_race, [(str(directory), start)] * RACERS)

    assert len(set(loaded)) == 1, "the sandboxes loaded different certificates"
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    for name in ("server.pem", "client.pem"):
        x509.load_pem_x509_certificate((directory / name).read_bytes()).verify_directly_issued_by(
            ca
        )
    assert sorted(p.name for p in directory.parent.iterdir()) == ["tls"], "staging left behind"
    assert (directory / "server-key.pem").stat().st_mode & 0o077 == 0


def test_an_existing_set_is_kept(tmp_path: Path) -> None:
    first = ensure_test_pki(tmp_path / "tls")
    before = first.ca_cert.read_bytes()
    assert ensure_test_pki(tmp_path / "tls").ca_cert.read_bytes() == before


def test_an_incomplete_set_is_refused_with_what_to_do(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / "ca.pem").write_text("left over\n")
    with pytest.raises(ConfigError, match="remove that directory"):  # exit 2, said as is
        ensure_test_pki(directory)
    assert (directory / "ca.pem").read_text() == "left over\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tls"]
