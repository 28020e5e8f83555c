"""TLS of the gRPC port: certificate files checked at start and re-read when they change.

Plaintext stays the default. GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE make the port speak
only TLS; GRPC_TLS_CLIENT_CA_FILE adds mTLS (a client certificate signed by that CA is
required). Kubernetes rewrites a mounted Secret in place when cert-manager renews it, so
before each new connection's handshake the files are looked at again and, when they changed
and still make a valid pair, used from then on. Who may call what is auth.py's business.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import threading
from dataclasses import dataclass, field

import grpc

from notifier.common.config import ConfigError, Env

log = logging.getLogger(__name__)

CERT_VAR = "GRPC_TLS_CERT_FILE"
KEY_VAR = "GRPC_TLS_KEY_FILE"
CLIENT_CA_VAR = "GRPC_TLS_CLIENT_CA_FILE"
# What OpenSSL errors end with: "(_ssl.c:4020)" says nothing to an operator.
_SOURCE_LINE = re.compile(r"\s*\(_ssl\.c:\d+\)$")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the server's certificate chain and key, and of the CA of client certificates."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    @property
    def mode(self) -> str:
        """`mtls` when client certificates are required, else `tls`."""
        return "mtls" if self.client_ca_file is not None else "tls"

    @classmethod
    def from_env(cls, env: Env) -> TlsFiles | None:
        """None (plaintext) unless the certificate and key are set; reads and checks the
        files, adding a problem that names the variable for each one that is unusable."""
        cert, key = env.optional(CERT_VAR), env.optional(KEY_VAR)
        client_ca = env.optional(CLIENT_CA_VAR)
        if cert is None and key is None:
            if client_ca is not None:
                env.problems.append(
                    f"{CLIENT_CA_VAR} needs {CERT_VAR} and {KEY_VAR}: mTLS is TLS plus "
                    "client certificates"
                )
            return None
        if cert is None or key is None:
            given, missing = (KEY_VAR, CERT_VAR) if cert is None else (CERT_VAR, KEY_VAR)
            env.problems.append(f"{missing} is required when {given} is set (TLS needs both)")
            return None
        files = cls(cert, key, client_ca)
        try:
            load_material(files)
        except ConfigError as exc:
            env.problems.extend(exc.problems)
        return files


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """The PEM bytes grpc is given; the key never shows in a repr."""

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None


def load_material(files: TlsFiles) -> TlsMaterial:
    """Reads the files and checks them with OpenSSL; raises ConfigError naming each bad
    variable (unreadable, not PEM, a key that does not match the certificate)."""
    problems: list[str] = []
    cert = _read(CERT_VAR, files.cert_file, problems)
    key = _read(KEY_VAR, files.key_file, problems)
    client_ca = None
    if files.client_ca_file is not None:
        client_ca = _read(CLIENT_CA_VAR, files.client_ca_file, problems)
        if client_ca is not None:
            _check_certificates(CLIENT_CA_VAR, files.client_ca_file, client_ca, problems)
    cert_ok = cert is not None and _check_certificates(CERT_VAR, files.cert_file, cert, problems)
    if cert_ok and key is not None:
        _check_key(files, problems)
    if problems:
        raise ConfigError(problems)
    assert cert is not None and key is not None
    return TlsMaterial(cert, key, client_ca)


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Credentials that require TLS (and a client certificate with a client CA) and pick up
    renewed files on the next handshake."""
    material = load_material(files)
    return grpc.dynamic_ssl_server_credentials(
        _configuration(material),
        CertificateReloader(files),
        require_client_authentication=material.client_ca is not None,
    )


class CertificateReloader:
    """grpc calls this before every TLS handshake: a new configuration when the files
    changed and are valid, else None (keep the current one)."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._stamp = _stamp(files)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            return self._reload_if_changed()
        except Exception:  # an exception here would fail the handshake, not just the reload
            log.exception("checking the TLS files failed; keeping the current certificate")
            return None

    def _reload_if_changed(self) -> grpc.ServerCertificateConfiguration | None:
        stamp = _stamp(self._files)
        if stamp == self._stamp:
            return None
        with self._lock:
            if stamp == self._stamp:
                return None
            # Remembered even when unusable, so a broken update is reported once, not on
            # every handshake; the next change of the files is looked at again.
            self._stamp = stamp
            try:
                material = load_material(self._files)
            except ConfigError as exc:
                log.warning(
                    "TLS files changed but cannot be used; keeping the current certificate",
                    extra={"problems": exc.problems},
                )
                return None
        log.info("TLS certificate reloaded", extra={"cert_file": self._files.cert_file})
        return _configuration(material)


def _configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.cert_chain)], root_certificates=material.client_ca
    )


def _stamp(files: TlsFiles) -> tuple[tuple[int, int, int] | None, ...]:
    """What tells a rewritten file apart: inode, modification time and size of each (os.stat
    follows the ..data symlink a Secret volume swaps on update)."""
    paths = (files.cert_file, files.key_file, files.client_ca_file)
    stamps: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path) if path is not None else None
        except OSError:
            info = None
        stamps.append(None if info is None else (info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def _read(variable: str, path: str, problems: list[str]) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        problems.append(f"{variable}={path!r} cannot be read: {exc.strerror or exc}")
        return None


def _check_certificates(variable: str, path: str, data: bytes, problems: list[str]) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cadata=data.decode("ascii"))
    except (ValueError, ssl.SSLError) as exc:  # UnicodeDecodeError is a ValueError
        problems.append(f"{variable}={path!r} holds no valid PEM certificate ({_reason(exc)})")
        return False
    return True


def _check_key(files: TlsFiles, problems: list[str]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An empty password: an encrypted key fails here instead of OpenSSL asking on a tty.
        context.load_cert_chain(files.cert_file, files.key_file, password=lambda: b"")
    except OSError as exc:  # ssl.SSLError is one, and so is a file gone since it was read
        if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
            problems.append(
                f"{KEY_VAR}={files.key_file!r} is not the key of the certificate in {CERT_VAR}"
            )
        else:
            problems.append(
                f"{KEY_VAR}={files.key_file!r} holds no unencrypted PEM private key "
                f"({_reason(exc)})"
            )


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not text"
    if not str(exc) or "Empty" in str(exc):
        return "the file is empty"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")  # e.g. KEY_VALUES_MISMATCH
    return _SOURCE_LINE.sub("", str(exc.args[-1] if exc.args else exc))
