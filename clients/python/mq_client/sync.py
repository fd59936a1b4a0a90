"""The blocking client, for scripts: a plain socket, no event loop.

`Client` is the public face: each method builds its requests with ops.py, hands them to its
`BlockingLink` and parses the replies. The link (blocking_link.py, whose docstring has the
theory of operation) owns the socket, the send-and-read loop, reply matching, timeouts and the
heartbeat thread that keeps a session alive while the caller's thread is busy.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from mq_client import ops
from mq_client.admin import SyncAdmin
from mq_client.blocking_link import BlockingLink
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES
from mq_client.errors import ConnectionLost, MQError
from mq_client.message import AckResult, Message, PublishResult
from mq_client.ops import PublishOptions
from mq_client.request import Body, ReceiptLike, Request, check_reply
from mq_client.session import Session
from mq_client.url import DEFAULT_URL, parse_url

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
QUIT_TIMEOUT_S = 1.0
"""How long `close()` waits for the broker to acknowledge a session's goodbye, in seconds."""


class Client(SyncAdmin):
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
    ) -> Client:
        """Connect to the broker at `url` (`mq://host:port`).

        Raises ValueError for a bad URL and `ConnectionLost` if the connection cannot be made
        within `connect_timeout_s` seconds.
        """
        address = parse_url(url)
        try:
            sock = socket.create_connection((address.host, address.port), timeout=connect_timeout_s)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {address}: {exc}") from exc
        # Small request frames must not wait for Nagle's algorithm.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, timeout_s=timeout_s, max_frame_bytes=max_frame_bytes)

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

    # -- operations (protocol.md section 2.3) -----------------------------------------------

    def ping(self) -> None:
        """Round trip to the broker."""
        self._call(ops.ping())

    def publish(
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

        `priority` 0..9 (higher first); `delay_s` seconds, or `not_before` a Unix time, before
        it can be delivered; `ttl_s`: never delivered once that old; `dedup_id`: see
        `publish_dedup` (a duplicate returns the first message's id).
        """
        options = PublishOptions(priority, delay_s, not_before, ttl_s, dedup_id)
        return self._call(ops.publish(queue, body, key, options))

    def publish_dedup(
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

        Returns its msg_id and `duplicate` (True: nothing stored, msg_id is the first one's).
        """
        options = PublishOptions(priority, delay_s, not_before, ttl_s, dedup_id)
        return self._call(ops.publish_result(queue, body, key, options))

    def publish_many(
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
        without waiting for replies, all with the options given. If any batch fails, its error
        is raised after every batch has answered; the other batches may have been stored (the
        broker commits each `mpub` on its own).
        """
        options = PublishOptions(priority, delay_s, not_before, ttl_s)
        requests = ops.publish_batches(queue, bodies, batch_size, self.max_frame_bytes, options)
        replies = self._exchange(requests)
        ids: list[int] = []
        for request, reply in zip(requests, replies, strict=True):
            ids.extend(request.parse(check_reply(reply)))
        return ids

    def fanout(
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
        """Publish one copy to every queue bound to `topic`; returns queue -> msg_id ({} if none)."""
        options = PublishOptions(priority, delay_s, not_before, ttl_s, dedup_id)
        return self._call(ops.fanout(topic, body, key, options))

    def get(self, queue: str, lease_s: float | None = None, wait_s: float | None = None, max: int = 1) -> list[Message]:
        """Lease up to `max` ready messages (1..1,000) for `lease_s` seconds (queue default if None).

        With `wait_s`, waits up to that many seconds for a message; returns [] if none came.
        """
        return self._call(ops.get(queue, lease_s, wait_s, max))

    def lease(self, queue: str, lease_s: float | None = None, wait_s: float | None = None) -> Message | None:
        """Lease one message, or return None if none is ready (within `wait_s` seconds)."""
        msgs = self.get(queue, lease_s, wait_s, 1)
        return msgs[0] if msgs else None

    def ack(self, receipt: ReceiptLike) -> None:
        """Acknowledge a delivery: the message is gone for good once this returns."""
        self._call(ops.ack(receipt))

    def ack_many(self, receipts: Iterable[ReceiptLike]) -> AckResult:
        """Acknowledge many deliveries at once: receipts, or the `Message`s themselves.

        Sent as batch `ack` requests of at most 10,000 receipts, pipelined; each is one commit on
        the broker. A receipt that cannot be acked (`LEASE_LOST`, `NOT_YOUR_LEASE`, ...) does not
        fail the call: it is listed in the result's `failed`, and the others are acked. If a
        whole request fails, its error is raised once every request has answered; the other
        requests' acks may have been committed. No receipts, no request.
        """
        requests = ops.ack_batches(receipts, self.max_frame_bytes)
        replies = self._exchange(requests)
        return AckResult.combine(
            request.parse(check_reply(reply)) for request, reply in zip(requests, replies, strict=True)
        )

    def nack(self, receipt: ReceiptLike, delay_s: float | None = None, error: str | None = None) -> None:
        """Give a delivery back: ready again now, or after `delay_s` seconds; `error` says why."""
        self._call(ops.nack(receipt, delay_s, error))

    def touch(self, receipt: ReceiptLike, lease_s: float | None = None) -> float:
        """Extend a lease to `lease_s` seconds from now (queue default if None); returns that length."""
        return self._call(ops.touch(receipt, lease_s))

    def queues(self) -> list[str]:
        """The names of all queues, sorted."""
        return self._call(ops.queues())

    def stats(self, queue: str | None = None) -> dict[str, Any]:
        """Broker statistics: `{"server": {...}, "queues": {name: {...}}}` (protocol.md section 6)."""
        return self._call(ops.stats(queue))

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
        self.session = self._call(ops.hello(consumer, heartbeat_s, token))
        self._link.start_heartbeats(lambda: self.session)
        return self.session

    def heartbeat(self) -> None:
        """A sign of life for the session; the heartbeat thread already sends these."""
        self._call(ops.heartbeat())

    def join(self, queue: str, group: str, prefetch: int | None = None) -> dict[str, Any]:
        """Join the consumer group `group` of `queue`, holding at most `prefetch` leases (1..10,000).

        Returns `queue`, `group`, `consumer`, `prefetch`, `members`. Needs `hello` first
        (`NoSession`); `NameTaken` if a live member of the group already uses this name.
        """
        return self._call(ops.join(queue, group, prefetch))

    def leave(self, queue: str) -> None:
        """Leave the group of `queue` (nothing happens if not a member); needs `hello` first."""
        self._call(ops.leave(queue))

    # -- machinery --------------------------------------------------------------------------

    def _call(self, request: Request[T]) -> T:
        (reply,) = self._exchange([request])
        return request.parse(check_reply(reply))

    def _exchange(self, requests: Sequence[Request[Any]], timeout_s: float | None = None) -> list[dict[str, Any]]:
        """Send every request and return their replies, in request order.

        `timeout_s` overrides `self.timeout_s` (plus the longest `wait_s`) for this exchange.
        """
        if timeout_s is None and self.timeout_s is not None:
            timeout_s = self.timeout_s + max((r.wait_s for r in requests), default=0.0)
        return self._link.exchange(requests, timeout_s, self.max_frame_bytes)

    # The link's socket and pending heartbeat rids, under the names they had before the link
    # was split out (tests tune the socket's buffers and count the pending heartbeats).

    @property
    def _sock(self) -> socket.socket:
        return self._link.sock

    @property
    def _heartbeat_rids(self) -> set[int]:
        return self._link.heartbeat_rids
