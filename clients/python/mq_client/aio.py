"""The asyncio client: the operations of protocol.md, as coroutines.

The wire work is elsewhere: `connection.Connection` matches replies to requests on one TCP
connection, and `link.Link` keeps the current connection, the consumer session (heartbeats)
and, with `reconnect=True`, replaces a lost connection and restores the session on it.
Push consumption (`subscribe`, `monitor`) is in `push`, the administration methods in `admin`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from mq_client import ops
from mq_client.admin import AsyncAdmin
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES
from mq_client.connect import Connecting
from mq_client.link import Link
from mq_client.message import AckResult, Message, PublishResult
from mq_client.ops import PublishOptions
from mq_client.push import Monitor, Subscription
from mq_client.request import Body, ReceiptLike, Request, check_reply
from mq_client.session import Session
from mq_client.url import DEFAULT_URL

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_RECONNECT_TIMEOUT_S = 30.0


class AsyncClient(AsyncAdmin):
    """A connection to an mq broker for asyncio code.

    Create it with `await AsyncClient.connect(url)` or `async with AsyncClient.connect(url) as c`.
    Methods may be called concurrently from many tasks; each awaits its own reply. Leases
    belong to the connection, or to the consumer session after `hello` (protocol.md section 4):
    ack what you got on the same client. To bound a call's time, wrap it in
    `asyncio.timeout(...)`; a call cancelled that way still gets its reply from the broker, which
    the client discards (a message leased by a cancelled `get` comes back when its lease expires).
    """

    def __init__(self, link: Link) -> None:
        """Wrap a `Link`; code should use `AsyncClient.connect` instead."""
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
        flight when the connection drops still fail with `ConnectionLost`; calls made while it
        is down wait up to `reconnect_timeout_s` seconds for the new one, then raise
        `ConnectionLost`.
        """
        return Connecting(
            cls,
            url,
            connect_timeout_s=connect_timeout_s,
            max_frame_bytes=max_frame_bytes,
            reconnect=reconnect,
            reconnect_timeout_s=reconnect_timeout_s,
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

    # -- operations (protocol.md section 2.3) -----------------------------------------------

    async def ping(self) -> None:
        """Round trip to the broker."""
        await self._call(ops.ping())

    async def publish(
        self,
        queue: str,
        body: Body,
        key: str | None = None,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        not_before: float | None = None,
        ttl_s: float | None = None,
        dedup_id: str | None = None,
    ) -> int:
        """Publish one message; returns its msg_id once the broker has committed it.

        `priority` 0..9 (higher first, default 0); `delay_s` seconds, or `not_before` a Unix
        time, before it can be delivered; `ttl_s`: never delivered once that many seconds old;
        `dedup_id`: a publish the queue saw with that id within its dedup window stores nothing
        and returns the first message's id (see `publish_dedup` to know whether it did).
        """
        options = PublishOptions(priority, delay_s, not_before, ttl_s, dedup_id)
        return await self._call(ops.publish(queue, body, key, options))

    async def publish_dedup(
        self,
        queue: str,
        body: Body,
        dedup_id: str,
        key: str | None = None,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        not_before: float | None = None,
        ttl_s: float | None = None,
    ) -> PublishResult:
        """Publish one message at most once per `dedup_id` within the queue's dedup window.

        Returns its msg_id and `duplicate`: True when the queue had already seen `dedup_id`,
        in which case nothing was stored and msg_id is the first message's. Safe to retry after
        a lost confirmation (protocol.md 4.4). The options are those of `publish`.
        """
        options = PublishOptions(priority, delay_s, not_before, ttl_s, dedup_id)
        return await self._call(ops.publish_result(queue, body, key, options))

    async def publish_many(
        self,
        queue: str,
        bodies: Iterable[Body],
        batch_size: int = 1000,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        not_before: float | None = None,
        ttl_s: float | None = None,
    ) -> list[int]:
        """Publish many messages, pipelined; returns their msg_ids in the order of `bodies`.

        Bodies go out as `mpub` frames of at most `batch_size` bodies (1..10,000), all sent
        without waiting for replies, every message with the options given (those of `publish`
        but `dedup_id`). If any batch fails, its error is raised after every batch has answered;
        the other batches may have been stored (the broker commits each `mpub` on its own).
        """
        options = PublishOptions(priority, delay_s, not_before, ttl_s)
        requests = ops.publish_batches(queue, bodies, batch_size, self.max_frame_bytes, options)
        ids: list[int] = []
        for batch_ids in await self._call_all(requests):
            ids.extend(batch_ids)
        return ids

    async def fanout(
        self,
        topic: str,
        body: Body,
        key: str | None = None,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        not_before: float | None = None,
        ttl_s: float | None = None,
        dedup_id: str | None = None,
    ) -> dict[str, int]:
        """Publish one copy to every queue bound to `topic` (`bind`); returns queue -> msg_id.

        Each copy is consumed and acked on its own; a topic with no bound queue stores nothing
        and returns {}. The options are those of `publish`.
        """
        options = PublishOptions(priority, delay_s, not_before, ttl_s, dedup_id)
        return await self._call(ops.fanout(topic, body, key, options))

    async def get(
        self, queue: str, lease_s: float | None = None, wait_s: float | None = None, max: int = 1
    ) -> list[Message]:
        """Lease up to `max` ready messages (1..1,000) for `lease_s` seconds (queue default if None).

        With `wait_s`, waits up to that many seconds for a message; returns [] if none came.
        """
        return await self._call(ops.get(queue, lease_s, wait_s, max))

    async def lease(self, queue: str, lease_s: float | None = None, wait_s: float | None = None) -> Message | None:
        """Lease one message, or return None if none is ready (within `wait_s` seconds)."""
        msgs = await self.get(queue, lease_s, wait_s, 1)
        return msgs[0] if msgs else None

    async def ack(self, receipt: ReceiptLike) -> None:
        """Acknowledge a delivery: the message is gone for good once this returns."""
        await self._call(ops.ack(receipt))

    async def ack_many(self, receipts: Iterable[ReceiptLike]) -> AckResult:
        """Acknowledge many deliveries at once: receipts, or the `Message`s themselves.

        Sent as batch `ack` requests of at most 10,000 receipts, pipelined; each is one commit on
        the broker. A receipt that cannot be acked (`LEASE_LOST`, `NOT_YOUR_LEASE`, ...) does not
        fail the call: it is listed in the result's `failed`, and the others are acked. If a
        whole request fails (say `ConnectionLost`), its error is raised after every request has
        answered; the other requests' acks may have been committed. No receipts, no request.
        """
        requests = ops.ack_batches(receipts, self.max_frame_bytes)
        return AckResult.combine(await self._call_all(requests))

    async def nack(self, receipt: ReceiptLike, delay_s: float | None = None, error: str | None = None) -> None:
        """Give a delivery back: ready again now, or after `delay_s` seconds.

        `error` says why; the broker keeps it with the message (`peek`, `explain`, `history`).
        """
        await self._call(ops.nack(receipt, delay_s, error))

    async def touch(self, receipt: ReceiptLike, lease_s: float | None = None) -> float:
        """Extend a lease to `lease_s` seconds from now (queue default if None); returns that length."""
        return await self._call(ops.touch(receipt, lease_s))

    async def queues(self) -> list[str]:
        """The names of all queues, sorted."""
        return await self._call(ops.queues())

    async def stats(self, queue: str | None = None) -> dict[str, Any]:
        """Broker statistics: `{"server": {...}, "queues": {name: {...}}}` (protocol.md section 6)."""
        return await self._call(ops.stats(queue))

    # -- push consumption (protocol.md section 2.4) ------------------------------------------

    async def subscribe(self, queue: str, prefetch: int = 100, lease_s: float | None = None) -> Subscription:
        """Have the broker push messages of `queue`: at most `prefetch` (1..10,000) unacked at once.

        Returns a `Subscription`, an async iterator of `Message`s, each leased for `lease_s`
        seconds (the queue's default if None) like a `get`: ack or nack it on this client to
        make room for more. One subscription per queue per client (ValueError otherwise).
        `await sub.close()` unsubscribes and gives back what arrived but was not taken. With
        `reconnect=True` the subscription is restored on each new connection.
        """
        pushes = self._link.pushes
        sub = Subscription(queue, prefetch, lease_s, pushes, self._link.call)
        pushes.add(sub)  # before the request: pushes may come with, or ahead of, the reply
        try:
            await self._call(sub.request())
        except BaseException:
            pushes.remove(sub)
            raise
        return sub

    async def monitor(self, queue: str | None = None) -> Monitor:
        """Tail the events of `queue` (of every queue if None) as the broker commits them.

        Returns a `Monitor`, an async iterator of event maps (`at`, `queue`, `msg_id`, `event`,
        ...). One monitor per client (ValueError otherwise); close it with `await m.close()`.
        """
        pushes = self._link.pushes
        stream = Monitor(queue, pushes)
        pushes.add(stream)
        try:
            await self._call(stream.request())
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

    async def heartbeat(self) -> None:
        """A sign of life for the session; the client already sends these when idle."""
        await self._call(ops.heartbeat())

    async def join(self, queue: str, group: str, prefetch: int | None = None) -> dict[str, Any]:
        """Join the consumer group `group` of `queue`, holding at most `prefetch` leases (1..10,000).

        Returns the broker's answer: `queue`, `group`, `consumer`, `prefetch`, `members`.
        Needs `hello` first (`NoSession`); `NameTaken` if a live member of the group already
        uses this consumer name. Members then `get` (or `consume`) as usual; keyed messages go
        only to the member that owns the key.
        """
        return await self._link.join(queue, group, prefetch)

    async def leave(self, queue: str) -> None:
        """Leave the group of `queue` (nothing happens if not a member); needs `hello` first."""
        await self._link.leave(queue)

    # -- machinery --------------------------------------------------------------------------

    def _call(self, request: Request[T]) -> Awaitable[T]:
        return self._link.call(request)  # not a coroutine itself: one frame less per call

    async def _call_all(self, requests: Sequence[Request[T]]) -> list[T]:
        """Send every request without waiting, all on one connection; their values, in order.

        If any fails, the first error is raised, but only once every request sent has answered,
        so none is left unobserved.
        """
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
