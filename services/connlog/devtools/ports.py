"""Free loopback ports: the one helper the tests and the benchmark harness
take their ports from."""

from __future__ import annotations

import socket


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 now (bound all at once, so
    distinct, then released for the caller to bind)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    """One free port (``free_ports(1)``)."""
    return free_ports(1)[0]
