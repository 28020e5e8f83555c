"""Throwaway certificates for the TLS tests, made with the `openssl` CLI (the lock has no
`cryptography`): a CA, a server certificate for localhost signed by it, a client
certificate signed by it, and a client certificate nobody trusts."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# EC keys: made in milliseconds, where RSA takes a noticeable fraction of a second.
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True, slots=True)
class Pair:
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes]:
        """(private key, certificate chain), the order grpc's credentials take them in."""
        return self.key.read_bytes(), self.cert.read_bytes()


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Pair
    server: Pair
    client: Pair
    # Self-signed: a client presenting it is no client of our CA.
    stranger: Pair


def make_pki(directory: Path, name: str = "test") -> Pki:
    """A CA and the certificates signed by it, written under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _pair(directory, f"{name}-ca")
    _openssl(
        "req", "-x509", *_KEY, "-days", "2", "-subj", f"/CN={name} test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(ca.key), "-out", str(ca.cert),
    )  # fmt: skip
    server = _signed(directory, f"{name}-server", ca, "serverAuth",
                     "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1")  # fmt: skip
    client = _signed(directory, f"{name}-client", ca, "clientAuth")
    stranger = _pair(directory, f"{name}-stranger")
    _openssl(
        "req", "-x509", *_KEY, "-days", "2", "-subj", "/CN=stranger",
        "-addext", "extendedKeyUsage=clientAuth",
        "-keyout", str(stranger.key), "-out", str(stranger.cert),
    )  # fmt: skip
    return Pki(ca, server, client, stranger)


def _pair(directory: Path, name: str) -> Pair:
    return Pair(directory / f"{name}.crt", directory / f"{name}.key")


def _signed(directory: Path, name: str, ca: Pair, usage: str, *extensions: str) -> Pair:
    pair = _pair(directory, name)
    added = [arg for ext in extensions for arg in ("-addext", ext)]
    _openssl(
        "req", "-x509", *_KEY, "-days", "2", "-subj", f"/CN={name}",
        "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", f"extendedKeyUsage={usage}", *added,
        "-keyout", str(pair.key), "-out", str(pair.cert),
    )  # fmt: skip
    return pair


def _openssl(*args: str) -> None:
    executable = shutil.which("openssl")
    if executable is None:
        pytest.skip("the openssl CLI is needed to make test certificates")
    done = subprocess.run(
        [executable, *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"
