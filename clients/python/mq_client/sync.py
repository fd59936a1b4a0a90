"""The blocking client, for scripts: a plain socket, no event loop.

`Client` is the public face: its operations are defined once, in ops.py and admin_ops.py, and
made into methods here (methods.py) that hand the requests to the `BlockingLink` and parse the
replies. The link (blocking_link.py, whose docstring has the
theory of operation) owns the socket, the send-and-read loop, reply matching, timeouts and the
heartbeat thread that keeps a session alive while the caller's thread is busy.

Threads. One call at a time goes through the link (`_calls`, held for a whole exchange), so
threads may share a client: `consume_blocking` extends leases from a second thread while the
handler may call the same client. A call waits while another thread's call is in flight.

Reconnecting (`reconnect=True`, blocking_dial.py). The client reconnects when a call finds its
connection gone: at the start of the next call, in the calling thread (there is no background
task to do it). On the new connection it says `auth`, then `hello` with the session's token
(resumed within the broker's `grace_s`: leases and groups survived; else a new session, and it
joins its groups again), then sends the call. A call whose bytes had gone out when the
connection dropped is not sent again: it raises `OutcomeUnknown` (it may or may not have run),
and the next call reconnects.

A cluster's seed list (`mq://h1:p1,h2:p2`): the link is a `BlockingClusterLink`
(blocking_cluster.py), one `BlockingLink` per broker routed by slot, with the asyncio client's
routing rules (cluster_routing.py).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar

from mq_client import admin_ops, ops
from mq_client.blocking_cluster import BlockingClusterLink
from mq_client.blocking_dial import Dialer, redial
from mq_client.blocking_link import BlockingLink
from mq_client.cluster_routing import DEFAULT_OWNER_CHECK_S, DEFAULT_TAKEOVER_TIMEOUT_S, per_slot
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES
from mq_client.errors import ConnectionLost, MQError, OutcomeUnknown, clone_error
from mq_client.methods import blocking, blocking_via
from mq_client.request import Operation, Request, check_reply
from mq_client.retry import RECONNECT_BACKOFF, Retry
from mq_client.security import client_context, credentials
from mq_client.session import Session
from mq_client.url import DEFAULT_URL, Address, parse_seeds, parse_url

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_RECONNECT_TIMEOUT_S = 30.0
QUIT_TIMEOUT_S = 1.0
"""How long `close()` waits for the broker to acknowledge a session's goodbye, in seconds."""


class Client:
    """A blocking connection to an mq broker: `with Client.connect(url) as c: ...`.

    Same methods and semantics as `AsyncClient`, without `await` and without push consumption
    (`subscribe`, `monitor`). Threads may share it: calls take turns (see the module
    docstring). `timeout_s` bounds how long, in seconds, a call may go without progress (bytes
    of its requests sent, or one of its replies received); a `get` with `wait_s` adds that wait.
    On timeout a call raises TimeoutError; None waits forever.
    """

    def __init__(
        self,
        sock: socket.socket | BlockingLink | BlockingClusterLink,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        """Wrap a connected socket (or a link, or a cluster's links); most code should use
        `Client.connect` instead.

        `max_frame_bytes`: the broker's limit, in bytes; larger requests are refused locally
        with `FrameTooLarge` instead of having the broker close the connection.
        """
        self.timeout_s = timeout_s
        self.max_frame_bytes = max_frame_bytes
        self._link = sock if isinstance(sock, BlockingLink | BlockingClusterLink) else BlockingLink(sock)
        self.session: Session | None = None
        """The consumer session, after `hello`; it changes when a reconnect starts a new one."""
        self.reconnects = 0
        """How many times a lost connection was replaced."""
        self._calls = threading.RLock()  # one exchange at a time; reentrant for hello and join
        self._redial: _Redial | None = None
        self._closed = False  # by close()
        self._gave_up: MQError | None = None  # reconnecting failed: every call raises this
        self._joins: dict[str, Request[dict[str, Any]]] = {}  # by queue: what a new session joins again
        self._rejoin_needed = False  # a new session replaced ours and its joins are not all done

    @classmethod
    def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        reconnect: bool = False,
        reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
        reconnect_backoff: Retry = RECONNECT_BACKOFF,
        user: str | None = None,
        secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
        cluster: bool = False,
        takeover_timeout_s: float = DEFAULT_TAKEOVER_TIMEOUT_S,
        owner_check_s: float = DEFAULT_OWNER_CHECK_S,
    ) -> Client:
        """Connect to the broker at `url` (`mq://host:port`, `mqs://` for TLS).

        Raises ValueError for a bad URL and `ConnectionLost` if the connection cannot be made
        within `connect_timeout_s` seconds (a broker certificate that does not verify included).
        TLS and credentials work as for `AsyncClient.connect`: with credentials (in the URL or
        as `user` and `secret`) the client says `auth` first, and a wrong secret raises
        `Unauthenticated`.

        With `reconnect=True`, a call that finds the connection lost first makes a new one:
        attempts spaced by `reconnect_backoff` (full jitter, 0.05 s doubling to 2 s), for up to
        `reconnect_timeout_s` seconds, then it raises `ConnectionLost`. Each new connection says
        `auth` and resumes the consumer session (or starts a new one and joins its groups again)
        before the call goes out. A call that was already sent when the connection dropped
        raises `OutcomeUnknown`: it may or may not have run (its `safe_to_retry` says whether
        sending it again is harmless; a publish is, with a `dedup_id`).

        A cluster (protocol.md 11): give a seed list, `mq://h1:p1,h2:p2,h3:p3` (or one address
        with `cluster=True`). The client reads the slot map, sends each queue's requests to its
        broker (one connection per broker), follows MOVED and retries TRYAGAIN, an unavailable
        store and a lost broker, for up to `takeover_timeout_s` seconds per request, by the
        rules the asyncio client follows (blocking_cluster.py). `reconnect` does not apply: a
        lost broker's queues are found again through the map. A broker that has not
        answered a request for `owner_check_s` seconds (beyond a `get`'s `wait_s`) and that the
        map, read from another broker, no longer names for its slot is left as the asyncio
        client leaves it (`AsyncClient.connect`).
        """
        seeds = parse_seeds(url)
        address = seeds[0] if len(seeds) > 1 else parse_url(url)
        dialer = Dialer(address, credentials(address, user, secret), client_context(address, ssl_context, ca_file),
                        connect_timeout_s, max_frame_bytes)
        if cluster or len(seeds) > 1:
            return cls._of_cluster(seeds, dialer, timeout_s, max_frame_bytes,
                                   takeover_timeout_s=takeover_timeout_s, owner_check_s=owner_check_s)
        link = BlockingLink(dialer.socket())
        dialer.authenticate(link)
        client = cls(link, timeout_s=timeout_s, max_frame_bytes=max_frame_bytes)
        if reconnect:
            client._redial = _Redial(dialer, reconnect_timeout_s, reconnect_backoff)
        return client

    @classmethod
    def _of_cluster(cls, seeds: list[Address], dialer: Dialer, timeout_s: float | None, max_frame_bytes: int,
                    *, takeover_timeout_s: float, owner_check_s: float) -> Client:
        links = BlockingClusterLink(seeds, lambda addr, within_s: replace(dialer, address=addr).dial(within_s),
                                    takeover_timeout_s, owner_check_s=owner_check_s)
        try:
            links.start(max_frame_bytes)
        except BaseException:
            links.shut(ConnectionLost("the client could not start"))
            raise
        return cls(links, timeout_s=timeout_s, max_frame_bytes=max_frame_bytes)

    @property
    def closed(self) -> bool:
        """True once every call will raise: closed, or lost without `reconnect`."""
        return self._closed or self._gave_up is not None or (self._redial is None and self._link.closed)

    @property
    def will_reconnect(self) -> bool:
        """True if a lost connection will be replaced: `reconnect=True` and not closed."""
        return self._redial is not None and not self._closed and self._gave_up is None

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
        with self._calls:
            self._closed = True
            self._link.stop_heartbeats()
            if self.session is not None and not self._link.closed:
                with contextlib.suppress(MQError, OSError):
                    self._link.exchange([ops.quit()], QUIT_TIMEOUT_S, self.max_frame_bytes)
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
    cluster = blocking(admin_ops.cluster)

    # -- consumer sessions and groups (protocol.md sections 4.1, 4.2) ------------------------

    def hello(self, consumer: str, heartbeat_s: float | None = None) -> Session:
        """Start a consumer session named `consumer`; leases taken from now on belong to it.

        `heartbeat_s` is the heartbeat interval asked for, in seconds (0.05..300; the broker's
        default if None). A daemon thread then sends a `heartbeat` whenever nothing else went
        out for `heartbeat_s / 2`, even while this thread is busy; `close()` stops it. Saying
        hello again with the same name keeps the session (and can change `heartbeat_s`).
        """
        with self._calls:
            current = self.session
            token = current.token if current is not None and current.consumer == consumer else None
            session = self._run(ops.hello(consumer, heartbeat_s, token))
            if not session.resumed:
                self._joins.clear()  # a new session is in no group yet
                self._rejoin_needed = False
            self.session = session
            self._link.start_heartbeats(lambda: self.session)
            return session

    def _join(self, request: Request[dict[str, Any]]) -> dict[str, Any]:
        # Remembered, so that a reconnect that starts a new session can join again.
        with self._calls:
            reply = self._run(request)
            self._joins[request.fields["queue"]] = request
            return reply

    def _leave(self, request: Request[None]) -> None:
        with self._calls:
            self._joins.pop(request.fields["queue"], None)  # first: no reconnect joins it again
            self._run(request)

    heartbeat = blocking(ops.heartbeat)
    join = blocking_via(ops.join, _join)
    leave = blocking_via(ops.leave, _leave)

    # -- machinery --------------------------------------------------------------------------

    def _run(self, operation: Operation[T]) -> T:
        if isinstance(operation, Request):
            (reply,) = self._exchange([operation])
            return operation.parse(check_reply(reply))
        requests = operation.split(self.max_frame_bytes)
        if isinstance(self._link, BlockingClusterLink):
            requests = [part for request in requests for part in per_slot(request)]  # acks by slot
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
        with self._calls:
            link = self._usable_link()
            try:
                return link.exchange(requests, timeout_s, self.max_frame_bytes)
            except OutcomeUnknown:
                raise
            except ConnectionLost:
                if not self.will_reconnect:
                    raise
            # Lost before any byte of it went out: it is safe to send on a new connection.
            return self._usable_link().exchange(requests, timeout_s, self.max_frame_bytes)

    def _usable_link(self) -> BlockingLink | BlockingClusterLink:
        """The link to send on: with reconnect, a new one if the current one is found lost."""
        if self._gave_up is not None:
            raise clone_error(self._gave_up)
        if self._redial is None or self._closed:
            return self._link
        self._link.check_alive()
        if self._link.closed:
            log.warning("mq connection lost (%s); reconnecting", self._link.error)
            self._link.stop_heartbeats()
            how = self._redial
            try:
                self._link = redial(how.dialer, self._restore, timeout_s=how.timeout_s, backoff=how.backoff)
            except MQError as exc:
                # Bounded: the client gives up for good, so a worker loop stops instead of spinning.
                log.error("mq client gave up reconnecting: %s", exc)
                self._gave_up = exc
                raise
            self.reconnects += 1
            log.info("mq connection re-established (session: %s)", self.session)
        return self._link

    def _restore(self, link: BlockingLink) -> None:
        """Resume the session on a new `link` (or start one and join its groups again)."""
        session = self.session
        if session is None:
            return
        # heartbeat_s again: a resumed session otherwise falls back to the broker's default.
        self.session = self._call_on(link, ops.hello(session.consumer, session.heartbeat_s, session.token))
        if not self.session.resumed:
            log.warning("mq session of %r could not be resumed: its leases are gone; a new one starts",
                        session.consumer)
            self._rejoin_needed = True
        if self._rejoin_needed:
            for join in list(self._joins.values()):
                self._call_on(link, join)
            self._rejoin_needed = False
        link.start_heartbeats(lambda: self.session)

    def _call_on(self, link: BlockingLink, request: Request[T]) -> T:
        timeout_s = None if self.timeout_s is None else self.timeout_s + request.wait_s
        (reply,) = link.exchange([request], timeout_s, self.max_frame_bytes)
        return request.parse(check_reply(reply))


@dataclass(frozen=True, slots=True)
class _Redial:
    """How a client with `reconnect=True` makes its new connections."""

    dialer: Dialer
    timeout_s: float
    backoff: Retry
