"""The asyncio client: the operations of protocol.md, as coroutines.

The wire work is elsewhere: `connection.Connection` matches replies to requests on one TCP
connection, and `link.Link` keeps the current connection, the consumer session (heartbeats)
and, with `reconnect=True`, replaces a lost connection and restores the session on it.
Push consumption (`subscribe`, `monitor`) is in `push`. The operations themselves are defined
once, in `ops` and `admin_ops`; this class makes each a coroutine method (methods.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from mq_client import admin_ops, ops
from mq_client.cluster_link import ClusterLink
from mq_client.cluster_routing import DEFAULT_OWNER_CHECK_S, DEFAULT_TAKEOVER_TIMEOUT_S
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES
from mq_client.connect import Connecting
from mq_client.link import Link
from mq_client.methods import awaiting, awaiting_on_link
from mq_client.push import Monitor, Subscription
from mq_client.request import Batch, Operation, Request, check_reply
from mq_client.session import Session
from mq_client.url import DEFAULT_URL

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_RECONNECT_TIMEOUT_S = 30.0


class AsyncClient:
    """A connection to an mq broker for asyncio code.

    Create it with `await AsyncClient.connect(url)` or `async with AsyncClient.connect(url) as c`.
    Methods may be called concurrently from many tasks; each awaits its own reply. Leases
    belong to the connection, or to the consumer session after `hello` (protocol.md section 4):
    ack what you got on the same client. To bound a call's time, wrap it in
    `asyncio.timeout(...)`; a call cancelled that way still gets its reply from the broker, which
    the client discards (a message leased by a cancelled `get` comes back when its lease expires).
    """

    def __init__(self, link: Link | ClusterLink) -> None:
        """Wrap a `Link` (or a cluster's links); code should use `AsyncClient.connect` instead."""
        self._link = link

    @classmethod
    def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        reconnect: bool = False,
        reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
        user: str | None = None,
        secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
        cluster: bool = False,
        takeover_timeout_s: float = DEFAULT_TAKEOVER_TIMEOUT_S,
        owner_check_s: float = DEFAULT_OWNER_CHECK_S,
    ) -> Connecting:
        """Connect to the broker at `url` (`mq://host:port`).

        The result can be awaited (`c = await AsyncClient.connect(url)`, then `await c.close()`)
        or used as `async with AsyncClient.connect(url) as c:`, which closes on exit.
        Raises ValueError for a bad URL and `ConnectionLost` if the connection cannot be made
        within `connect_timeout_s` seconds. `max_frame_bytes` is the broker's limit, in bytes:
        larger requests are refused locally with `FrameTooLarge`.

        With `reconnect=True`, a lost connection is replaced in the background (jittered
        exponential backoff, 0.05 s to 2 s) until `close()`, and the consumer session is
        resumed on it, or its groups joined again if the broker started a new one. Calls in
        flight when the connection drops still fail: with `OutcomeUnknown` (a `ConnectionLost`
        whose `safe_to_retry` says whether sending the call again is harmless) once their
        request went out; calls made while it is down wait up to `reconnect_timeout_s` seconds
        for the new one, then raise `ConnectionLost`.

        Security (protocol.md section 9): `mqs://` connects over TLS and verifies the broker's
        certificate and host name (against the system's CAs, or `ca_file`; or pass your own
        `ssl_context`); a certificate that does not verify fails the connection with
        `ConnectionLost`. Credentials come from the URL (`mq://user:secret@host:port`, percent-
        encoded) or from `user` and `secret`; every new connection, reconnects included, says
        `auth` before anything else. A wrong secret raises `Unauthenticated`.

        A cluster (protocol.md 11): give a seed list, `mq://h1:p1,h2:p2,h3:p3` (or one address
        with `cluster=True`). The client reads the slot map, sends each queue's requests to its
        broker (one connection per broker), follows MOVED, retries TRYAGAIN and lost brokers
        with backoff for up to `takeover_timeout_s` seconds, gives each `publish` an automatic
        `dedup_id` so a retry is stored once, and says `hello` with the session's token on each
        broker it uses (cluster_link.py). `reconnect` does not apply: a lost broker's queues
        are sought at their new broker. A request its broker has not
        answered for `owner_check_s` seconds (beyond a `get`'s `wait_s`) makes the client read
        the map from another broker: if the slot has a new owner (its broker was paused past
        its lease, say), the link to the old one is dropped and what was in flight there is
        sent to the new one, when that is safe (else it raises `OutcomeUnknown`); if not, the
        request keeps waiting, and the map is looked at again every `owner_check_s`.
        """
        return Connecting(
            cls,
            url,
            connect_timeout_s=connect_timeout_s,
            max_frame_bytes=max_frame_bytes,
            reconnect=reconnect,
            reconnect_timeout_s=reconnect_timeout_s,
            user=user,
            secret=secret,
            ssl_context=ssl_context,
            ca_file=ca_file,
            cluster=cluster,
            takeover_timeout_s=takeover_timeout_s,
            owner_check_s=owner_check_s,
        )

    @property
    def closed(self) -> bool:
        """True once every call will raise: closed, or lost without `reconnect`."""
        return self._link.closed

    @property
    def will_reconnect(self) -> bool:
        """True if a lost connection will be replaced: `reconnect=True` and not closed."""
        return self._link.will_reconnect

    @property
    def session(self) -> Session | None:
        """The consumer session, after `hello`; it changes when a reconnect starts a new one."""
        return self._link.session

    @property
    def reconnects(self) -> int:
        """How many times a lost connection was replaced."""
        return self._link.reconnects

    @property
    def max_frame_bytes(self) -> int:
        """The broker's frame limit the client checks requests against, in bytes."""
        return self._link.max_frame_bytes

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client; calls still pending then fail with `ConnectionLost`. Safe to call twice.

        Stops heartbeats and reconnecting. With a session, says `quit` first (waiting up to
        1 s), so the broker gives its leases back at once rather than after `grace_s`.
        """
        await self._link.close()

    # -- operations (protocol.md section 2.3; defined in ops.py and admin_ops.py) -----------

    ping = awaiting(ops.ping)
    publish = awaiting(ops.publish)
    publish_dedup = awaiting(ops.publish_dedup)
    publish_many = awaiting(ops.publish_many)
    fanout = awaiting(ops.fanout)
    get = awaiting(ops.get)
    lease = awaiting(ops.lease)
    ack = awaiting(ops.ack)
    ack_many = awaiting(ops.ack_many)
    nack = awaiting(ops.nack)
    touch = awaiting(ops.touch)
    queues = awaiting(ops.queues)
    stats = awaiting(ops.stats)

    declare = awaiting(admin_ops.declare)
    purge = awaiting(admin_ops.purge)
    delete = awaiting(admin_ops.delete)
    peek = awaiting(admin_ops.peek)
    redrive = awaiting(admin_ops.redrive)
    bind = awaiting(admin_ops.bind)
    unbind = awaiting(admin_ops.unbind)
    bindings = awaiting(admin_ops.bindings)
    explain = awaiting(admin_ops.explain)
    history = awaiting(admin_ops.history)
    cluster = awaiting(admin_ops.cluster)

    # -- push consumption (protocol.md section 2.4) ------------------------------------------

    async def subscribe(self, queue: str, prefetch: int | None = None, lease_s: float | None = None) -> Subscription:
        """Have the broker push messages of `queue`: at most `prefetch` (1..10,000; broker default
        100) unacked at once.

        Returns a `Subscription`, an async iterator of `Message`s, each leased for `lease_s`
        seconds (the queue's default if None) like a `get`: ack or nack it on this client to
        make room for more. One subscription per queue per client (ValueError otherwise).
        `await sub.close()` unsubscribes and gives back what arrived but was not taken. With
        `reconnect=True` the subscription is restored on each new connection.
        """
        if isinstance(self._link, ClusterLink):
            return await self._link.subscribe(queue, prefetch, lease_s)  # it follows the queue
        link = self._link
        pushes = link.pushes
        sub = Subscription(queue, prefetch, lease_s, pushes, link.call)
        pushes.add(sub)  # before the request: pushes may come with, or ahead of, the reply
        try:
            await link.call(sub.request())
        except BaseException:
            pushes.remove(sub)
            raise
        return sub

    async def monitor(self, queue: str | None = None) -> Monitor:
        """Tail the events of `queue` (of every queue if None) as the broker commits them.

        Returns a `Monitor`, an async iterator of event maps (`at`, `queue`, `msg_id`, `event`,
        ...). One monitor per client (ValueError otherwise); close it with `await m.close()`.
        """
        link = await self._link.owner_link(queue) if isinstance(self._link, ClusterLink) else self._link
        pushes = link.pushes
        stream = Monitor(queue, pushes)
        pushes.add(stream)
        try:
            await link.call(stream.request())
        except BaseException:
            pushes.remove(stream)
            raise
        return stream

    # -- consumer sessions and groups (protocol.md sections 4.1, 4.2) ------------------------

    async def hello(self, consumer: str, heartbeat_s: float | None = None) -> Session:
        """Start a consumer session named `consumer`; leases taken from now on belong to it.

        `heartbeat_s` is the heartbeat interval asked for, in seconds (0.05..300; the broker's
        default if None). From then on the client sends a `heartbeat` whenever nothing else
        went out for `heartbeat_s / 2`, so the session stays alive while the client idles.
        Saying hello again with the same name keeps the session (and can change `heartbeat_s`).
        """
        return await self._link.hello(consumer, heartbeat_s)

    heartbeat = awaiting(ops.heartbeat)
    join = awaiting_on_link(ops.join, Link.join)
    leave = awaiting_on_link(ops.leave, Link.leave)

    # -- machinery --------------------------------------------------------------------------

    def _run(self, operation: Operation[T]) -> Awaitable[T]:
        if isinstance(operation, Request):
            return self._link.call(operation)  # not a coroutine itself: one frame less per call
        return self._run_batch(operation)

    async def _run_batch(self, batch: Batch[T]) -> T:
        requests = batch.split(self.max_frame_bytes)
        if isinstance(self._link, ClusterLink):
            return batch.combine(await self._link.call_all(requests))
        return batch.combine(await self._call_all(requests))

    async def _call_all(self, requests: Sequence[Request[T]]) -> list[T]:
        """Send every request without waiting, all on one connection; their values, in order.

        If any fails, the first error is raised, but only once every request sent has answered,
        so none is left unobserved.
        """
        assert isinstance(self._link, Link)
        conn = await self._link.connection()  # every request on one connection, even if it drops
        pending: list[asyncio.Future[dict[str, Any]]] = []
        try:
            for request in requests:
                pending.append(await conn.send(request))
        finally:
            # Wait for every sent request even if a later send failed.
            replies = await asyncio.gather(*pending, return_exceptions=True)
        values: list[T] = []
        for request, reply in zip(requests, replies, strict=True):
            if isinstance(reply, BaseException):
                raise reply
            values.append(request.parse(check_reply(reply)))
        return values
