"""Idle connections beside a run: what silent clients cost the broker.

`IdleConnections` opens N plain TCP connections to the broker from the harness process. Each
speaks binary mode and sends one `ping` (so the broker has sniffed its mode and built its
decoder, as for any real client) and waits for the answer, then stays silent until `close()`.
They are blocking sockets, opened one after the other outside the measured window: simple, and
every one is known to be served before the run starts. N is bounded by the options
(`MAX_IDLE_CONNECTIONS`) and the broker must be on the loopback interface.
"""

from __future__ import annotations

import socket
import time
from types import TracebackType

from mq_client.codec import FrameDecoder, encode_frame
from mq_client.url import parse_url

PING = encode_frame({"op": "ping", "rid": 1})
READ_BYTES = 4096


class IdleConnections:
    """N idle connections to the broker at `url`, open between `open()` and `close()`."""

    def __init__(self, url: str, count: int, timeout_s: float = 10.0) -> None:
        self.url = url
        self.count = count
        self.timeout_s = timeout_s
        self.open_s = 0.0
        """How long opening them took, in seconds."""
        self._socks: list[socket.socket] = []

    def __enter__(self) -> IdleConnections:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Open the connections, one ping each; raises OSError or RuntimeError if one fails."""
        address = parse_url(self.url)
        started = time.perf_counter()
        for _ in range(self.count):
            sock = socket.create_connection((address.host, address.port), timeout=self.timeout_s)
            self._socks.append(sock)
            sock.sendall(PING)
            _read_ok(sock)
        self.open_s = time.perf_counter() - started

    def close(self) -> None:
        """Close every connection (safe to call twice)."""
        socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()


def _read_ok(sock: socket.socket) -> None:
    decoder = FrameDecoder()
    while True:
        data = sock.recv(READ_BYTES)
        if not data:
            raise RuntimeError("the broker closed an idle connection before answering its ping")
        replies = decoder.feed(data)
        if replies:
            if replies[0].get("ok") is not True:
                raise RuntimeError(f"the broker refused an idle connection's ping: {replies[0]!r}")
            return
