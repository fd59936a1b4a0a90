"""TLS on the broker's one port: the listener that tells a TLS client from a plain one.

Theory of operation. With `--tls-cert`, the port speaks TLS only, but it still looks at the
first byte a connection sends before it starts a handshake, as protocol.md section 1 does for
the two modes: a TLS ClientHello starts with 0x16 (a handshake record), which is neither
printable text nor the 0x00-0x03 of a binary frame's length. So a plain client (telnet, an SDK
given `mq://` instead of `mqs://`) is told in its own mode why it is refused (TLS_REQUIRED)
and closed, rather than left to time out on a handshake it never started. The byte is peeked
(MSG_PEEK), not read, so the TLS layer sees the whole ClientHello.

Each accepted socket is sniffed in a task of its own: a client that connects and sends nothing
delays no one else, and is closed, silently, after `tls_handshake_timeout_s` (as is one whose
handshake takes longer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from mq.codec.sniff import sniff_mode
from mq.errors import Code, MQError
from mq.server.config import Config
from mq.server.speaker import for_mode

log = logging.getLogger("mq.server")

TLS_HANDSHAKE = 0x16  # the content type of a TLS handshake record: a ClientHello's first byte
REFUSAL_DRAIN_BYTES = 64 * 1024  # read (and drop) this much of a plain client before closing
REFUSAL_LINGER_S = 1.0
PLAIN_REFUSED = MQError(Code.TLS_REQUIRED, "this port speaks TLS only: connect with mqs:// (the "
                        "SDK) or `openssl s_client -connect HOST:PORT -quiet` (text mode)")


def server_context(config: Config) -> ssl.SSLContext:
    """The TLS settings of the broker: its certificate, and the client CA if it asks for one."""
    assert config.tls_cert is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_ca is not None:
        context.load_verify_locations(config.tls_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class TlsListener:
    """Accepts connections on `host:port` and hands TLS ones to `factory`'s protocols."""

    def __init__(self, config: Config, factory: Callable[[], asyncio.Protocol],
                 sock: socket.socket) -> None:
        """`sock`: bound (listener.bind_listener), not yet listening."""
        self.context = server_context(config)
        self.config = config
        self.factory = factory
        self.sock = sock
        self.sock.listen(1024)
        self.sock.setblocking(False)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def serve(self) -> None:
        """Accept until cancelled; each connection is sniffed in a task of its own."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    client, _ = await loop.sock_accept(self.sock)
                except OSError as e:  # out of file descriptors, say: go on with the others
                    log.warning("accept failed: %s", e)
                    await asyncio.sleep(0.1)
                    continue
                client.setblocking(False)
                task = asyncio.create_task(self._start(client))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.sock.close()

    async def _start(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        timeout_s = self.config.tls_handshake_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                first = await _peek(loop, client)
        except TimeoutError:
            client.close()  # connected and said nothing: it holds no fd and no task for long
            return
        try:
            if not first:
                client.close()  # closed before it said anything
                return
            if first[0] != TLS_HANDSHAKE:
                await _refuse(loop, client, first[0])
                return
            await loop.connect_accepted_socket(self.factory, client, ssl=self.context,
                                               ssl_handshake_timeout=timeout_s)
        except (OSError, TimeoutError) as e:  # ssl.SSLError is an OSError
            peer = _peer(client)
            log.info("TLS handshake with %s failed: %s", peer, e)
            client.close()


async def _peek(loop: asyncio.AbstractEventLoop, client: socket.socket) -> bytes:
    """The first byte the client sent, left in the socket for whoever reads it next."""
    readable: asyncio.Future[None] = loop.create_future()
    fd = client.fileno()

    def woken() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, woken)
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    try:
        return client.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return await _peek(loop, client)  # woken for nothing: wait again


async def _refuse(loop: asyncio.AbstractEventLoop, client: socket.socket, first: int) -> None:
    """Tell a plain client, in its own mode, that this port speaks TLS, then close."""
    _, speaker = for_mode(sniff_mode(first), 1024, 1024)
    log.info("plain connection from %s refused: the port speaks TLS only", _peer(client))
    with contextlib.suppress(OSError, TimeoutError):
        await loop.sock_sendall(client, speaker.error(None, PLAIN_REFUSED))
        client.shutdown(socket.SHUT_WR)
        # Read what it sent before closing: closing a socket with unread input sends a reset,
        # which could destroy the refusal before the client reads it.
        async with asyncio.timeout(REFUSAL_LINGER_S):
            drained = 0
            while drained < REFUSAL_DRAIN_BYTES:
                data = await loop.sock_recv(client, 4096)
                if not data:
                    break
                drained += len(data)
    client.close()


def _peer(client: socket.socket) -> str:
    try:
        host, port = client.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
