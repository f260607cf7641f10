"""Port choice: keep the documented default when it is free, otherwise take any free port.

A bind test is racy by nature (another process can take the port before our server binds it), but it turns the
common case, a default already used by something else on the laptop, into a working start instead of a crash.
"""

from __future__ import annotations

import socket
import threading
import time

LOCALHOST = "127.0.0.1"

# Free ports handed out by this process; bind(0) may return the same port twice while nothing listens on it yet.
_handed_out: set[int] = set()
_lock = threading.Lock()


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True if ``host:port`` can be bound right now by a server.

    SO_REUSEADDR like the servers themselves, so connections of a just-stopped server lingering in TIME_WAIT do
    not count as "taken" (Linux still refuses while anything listens). No SO_REUSEPORT on purpose: gRPC servers
    set it, and a probe with it would happily share the port with a leftover service.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOCALHOST) -> int:
    """A port nothing listens on now and that this process has not handed out before."""
    with _lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def hold_port(port: int, host: str = LOCALHOST) -> socket.socket | None:
    """A bound, not listening socket on ``host:port``, to keep until our own server has bound the port.

    Default ports such as 50051-50056 and the ones :func:`free_port` hands out lie in the kernel's ephemeral range:
    between our choice and our server's bind, any outgoing connection (a service's database pool, NATS, the
    tests' clients) may be given the port as its local port, and the server then fails with "address in use".
    Linux never hands out an explicitly bound port as an ephemeral one, and our servers still bind it: both
    sockets have SO_REUSEADDR and this one never listens. None if the port cannot be held (the caller goes on).
    """
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind((host, port))
    except OSError:
        holder.close()
        return None
    return holder


def pick_port(preferred: int, host: str = LOCALHOST) -> int:
    """``preferred`` if it is free, else a free port. ``preferred=0`` means any free port."""
    if preferred and port_is_free(preferred, host):
        return preferred
    return free_port(host)


def wait_for_tcp(host: str, port: int, timeout: float) -> bool:
    """Wait until something accepts TCP connections on ``host:port``; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
