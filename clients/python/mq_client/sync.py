"""The blocking client, for scripts: a plain socket, no event loop.

`Client` is the public face: its operations are defined once, in ops.py and admin_ops.py, and
made into methods here (methods.py) that hand the requests to the `BlockingLink` and parse the
replies. The link (blocking_link.py, whose docstring has the
theory of operation) owns the socket, the send-and-read loop, reply matching, timeouts and the
heartbeat thread that keeps a session alive while the caller's thread is busy.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

from mq_client import admin_ops, ops
from mq_client.blocking_link import BlockingLink
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES
from mq_client.errors import ConnectionLost, MQError
from mq_client.methods import blocking
from mq_client.request import Operation, Request, check_reply
from mq_client.security import client_context, credentials
from mq_client.session import Session
from mq_client.url import DEFAULT_URL, parse_seeds, parse_url

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
QUIT_TIMEOUT_S = 1.0
"""How long `close()` waits for the broker to acknowledge a session's goodbye, in seconds."""


class Client:
    """A blocking connection to an mq broker: `with Client.connect(url) as c: ...`.

    Same methods and semantics as `AsyncClient`, without `await`, without reconnecting and
    without push consumption (`subscribe`, `monitor`).
    Not thread-safe: use one client per thread (its own heartbeat thread aside). `timeout_s`
    bounds how long, in seconds, a call may go without progress (bytes of its requests sent, or
    one of its replies received); a `get` with `wait_s` adds that wait. On timeout a call raises
    TimeoutError; None waits forever.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        """Wrap a connected socket; most code should use `Client.connect` instead.

        `max_frame_bytes`: the broker's limit, in bytes; larger requests are refused locally
        with `FrameTooLarge` instead of having the broker close the connection.
        """
        self.timeout_s = timeout_s
        self.max_frame_bytes = max_frame_bytes
        self._link = BlockingLink(sock)
        self.session: Session | None = None
        """The consumer session, after `hello`."""

    @classmethod
    def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        user: str | None = None,
        secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
    ) -> Client:
        """Connect to the broker at `url` (`mq://host:port`, `mqs://` for TLS).

        Raises ValueError for a bad URL and `ConnectionLost` if the connection cannot be made
        within `connect_timeout_s` seconds (a broker certificate that does not verify included).
        TLS and credentials work as for `AsyncClient.connect`: with credentials (in the URL or
        as `user` and `secret`) the client says `auth` first, and a wrong secret raises
        `Unauthenticated`.

        One broker only: for a cluster's seed list (`mq://h1:p1,h2:p2`) use `AsyncClient` (or
        `ClientThread` from blocking code), which routes each queue to its broker.
        """
        if len(parse_seeds(url)) > 1:
            raise ValueError(f"{url!r} is a list of brokers (a cluster): the blocking Client speaks to one "
                             "broker; use AsyncClient.connect, or mq_client.client_thread.ClientThread")
        address = parse_url(url)
        login = credentials(address, user, secret)
        context = client_context(address, ssl_context, ca_file)
        try:
            sock = socket.create_connection((address.host, address.port), timeout=connect_timeout_s)
            # Small request frames must not wait for Nagle's algorithm.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=address.host)  # handshakes now
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {address}: {exc}") from exc
        client = cls(sock, timeout_s=timeout_s, max_frame_bytes=max_frame_bytes)
        if login is not None:
            try:
                client._run(ops.auth(*login))
            except BaseException:
                client.close()
                raise
        return client

    @property
    def closed(self) -> bool:
        """True once the connection is closed or lost; every call then raises."""
        return self._link.closed

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and stop heartbeats. Safe to call twice.

        With a session, says `quit` first (waiting up to 1 s), so the broker gives its leases
        back at once rather than after `grace_s`.
        """
        self._link.stop_heartbeats()
        if self.session is not None and not self._link.closed:
            with contextlib.suppress(MQError, OSError):
                self._exchange([ops.quit()], timeout_s=QUIT_TIMEOUT_S)
        self._link.shut(ConnectionLost("the client was closed"))

    # -- operations (protocol.md section 2.3; defined in ops.py and admin_ops.py) -----------

    ping = blocking(ops.ping)
    publish = blocking(ops.publish)
    publish_dedup = blocking(ops.publish_dedup)
    publish_many = blocking(ops.publish_many)
    fanout = blocking(ops.fanout)
    get = blocking(ops.get)
    lease = blocking(ops.lease)
    ack = blocking(ops.ack)
    ack_many = blocking(ops.ack_many)
    nack = blocking(ops.nack)
    touch = blocking(ops.touch)
    queues = blocking(ops.queues)
    stats = blocking(ops.stats)

    declare = blocking(admin_ops.declare)
    purge = blocking(admin_ops.purge)
    delete = blocking(admin_ops.delete)
    peek = blocking(admin_ops.peek)
    redrive = blocking(admin_ops.redrive)
    bind = blocking(admin_ops.bind)
    unbind = blocking(admin_ops.unbind)
    bindings = blocking(admin_ops.bindings)
    explain = blocking(admin_ops.explain)
    history = blocking(admin_ops.history)

    # -- consumer sessions and groups (protocol.md sections 4.1, 4.2) ------------------------

    def hello(self, consumer: str, heartbeat_s: float | None = None) -> Session:
        """Start a consumer session named `consumer`; leases taken from now on belong to it.

        `heartbeat_s` is the heartbeat interval asked for, in seconds (0.05..300; the broker's
        default if None). A daemon thread then sends a `heartbeat` whenever nothing else went
        out for `heartbeat_s / 2`, even while this thread is busy; `close()` stops it. Saying
        hello again with the same name keeps the session (and can change `heartbeat_s`).
        """
        current = self.session
        token = current.token if current is not None and current.consumer == consumer else None
        self.session = self._run(ops.hello(consumer, heartbeat_s, token))
        self._link.start_heartbeats(lambda: self.session)
        return self.session

    heartbeat = blocking(ops.heartbeat)
    join = blocking(ops.join)
    leave = blocking(ops.leave)

    # -- machinery --------------------------------------------------------------------------

    def _run(self, operation: Operation[T]) -> T:
        if isinstance(operation, Request):
            (reply,) = self._exchange([operation])
            return operation.parse(check_reply(reply))
        requests = operation.split(self.max_frame_bytes)
        replies = self._exchange(requests)
        return operation.combine(
            [request.parse(check_reply(reply)) for request, reply in zip(requests, replies, strict=True)]
        )

    def _exchange(self, requests: Sequence[Request[Any]], timeout_s: float | None = None) -> list[dict[str, Any]]:
        """Send every request and return their replies, in request order.

        `timeout_s` overrides `self.timeout_s` (plus the longest `wait_s`) for this exchange.
        """
        if timeout_s is None and self.timeout_s is not None:
            timeout_s = self.timeout_s + max((r.wait_s for r in requests), default=0.0)
        return self._link.exchange(requests, timeout_s, self.max_frame_bytes)
