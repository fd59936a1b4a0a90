"""The broker's listening socket, bound before anything else starts.

Binding first means a port that is taken (or an address this machine does not have) is said in
one line before the log is opened or recovered, which on a big log takes a while. The socket is
bound but not listening until the log is ready: a client that comes early is refused and may
retry, rather than waiting on a broker that cannot answer yet.
"""

from __future__ import annotations

import errno
import socket


class StartupError(Exception):
    """The broker cannot start; the message says why and what to do, in one line."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: a free port), not yet listening."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise StartupError(f"cannot listen on {host}: {e.strerror}. Give --host an address "
                           "of this machine (127.0.0.1, 0.0.0.0, ::)") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise StartupError(_bind_problem(host, port, e)) from None
    return sock


def _bind_problem(host: str, port: int, e: OSError) -> str:
    where = f"cannot listen on {host}:{port}: {e.strerror}"
    if e.errno == errno.EADDRINUSE:
        return (f"{where}. Another process has that port (`ss -ltnp 'sport = :{port}'` shows "
                "which): stop it or choose another --port")
    if e.errno == errno.EACCES:
        return f"{where}. Ports below 1024 need privileges: choose --port 1024 or above"
    return f"{where}. Give --host an address of this machine and --port a free port"
