"""Free TCP ports for the dev stack and the tests; nothing here keeps a port reserved."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """Returns a port that was free on `host` a moment ago.

    The kernel picks it by binding port 0; the socket is closed again, so another
    process could take the port before the caller binds it. Callers that start a
    server on it retry with a new port when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
