"""The blocking client, for scripts: a plain socket, no event loop.

Theory of operation: a call encodes its frames, then runs one loop over a selector that writes
whatever is left to send and reads whatever has arrived, until every reply it waits for is in.
Sending and reading together (rather than "send all, then read all") matters for
`publish_many`: a broker that pauses reading while its replies pile up would otherwise deadlock
against a client that is still sending. Replies are matched by `rid`; a reply nobody waits for
(left over from a call that timed out) is dropped.

The socket stays usable after a timeout only if every byte of the request went out; after a
timeout or interrupt mid-send the broker holds half a frame, so the connection is closed.

Heartbeats. After `hello`, a daemon thread keeps the session alive while the caller's thread is
busy elsewhere (a handler that runs for minutes) or waits in a long `get`. It shares the socket
under `_lock`: a call holds the lock while it sends (so a heartbeat frame never lands inside
one of its frames) and while it reads, but not while it waits; the thread takes it to send a
`heartbeat` when nothing went out for half of `heartbeat_s`. Heartbeat replies are discarded by
whichever thread reads them (their rids are kept in `_heartbeat_rids`): the calling thread
during a call, the heartbeat thread between calls, so they never pile up unread.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from mq_client import ops
from mq_client.admin import SyncAdmin
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, encode_frame
from mq_client.errors import ConnectionLost, MQError, ProtocolError, clone_error, error_from_reply
from mq_client.message import AckResult, Message, PublishResult
from mq_client.ops import PublishOptions
from mq_client.request import Body, ReceiptLike, Request, check_reply
from mq_client.session import Session
from mq_client.url import DEFAULT_URL, parse_url

T = TypeVar("T")
log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 256 * 1024
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
        sock.setblocking(False)
        self._sock = sock
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._events = selectors.EVENT_READ
        self._decoder = FrameDecoder()
        self._rids = itertools.count(1)
        self._closed: MQError | None = None
        self.session: Session | None = None
        """The consumer session, after `hello`."""
        self._lock = threading.Lock()  # socket I/O, the decoder and the fields below
        self._in_call = False  # a call is running: its thread reads the replies
        self._last_send_s = time.monotonic()
        self._heartbeat_rids: set[int] = set()
        self._stop = threading.Event()
        self._heartbeats: threading.Thread | None = None

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
        return self._closed is not None

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
        self._stop.set()
        if self._heartbeats is not None and self._heartbeats is not threading.current_thread():
            self._heartbeats.join()
        if self.session is not None and self._closed is None:
            with contextlib.suppress(MQError, OSError):
                self._exchange([ops.quit()], timeout_s=QUIT_TIMEOUT_S)
        self._shut(ConnectionLost("the client was closed"))

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
        if self._heartbeats is None:
            self._heartbeats = threading.Thread(target=self._beat, name="mq-client-heartbeat", daemon=True)
            self._heartbeats.start()
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
        if self._closed is not None:
            raise clone_error(self._closed)
        rids: list[int] = []
        outgoing: deque[memoryview] = deque()
        # Encode everything first: a frame that cannot be encoded fails before any byte is sent.
        for request in requests:
            rid = next(self._rids)
            frame = encode_frame(request.to_wire(rid), max_frame_bytes=self.max_frame_bytes)
            rids.append(rid)
            outgoing.append(memoryview(frame))
        if timeout_s is None and self.timeout_s is not None:
            timeout_s = self.timeout_s + max((r.wait_s for r in requests), default=0.0)
        replies: dict[int, dict[str, Any]] = {}
        try:
            self._pump(outgoing, set(rids), replies, timeout_s)
        except _RepliesLate:
            # Every byte went out, so the stream is intact: later calls drop the late replies.
            raise TimeoutError(f"no reply from the broker within {timeout_s} s") from None
        except MQError as exc:
            self._shut(exc)
            raise
        except OSError as exc:
            if isinstance(exc, TimeoutError):  # mid-send: the broker holds half a frame
                self._shut(ConnectionLost("timed out in the middle of sending a request"))
                raise
            lost = ConnectionLost(f"connection lost: {exc}")
            self._shut(lost)
            raise lost from exc
        except BaseException:
            # An interrupt mid-send, or between a read and its decoding, leaves the stream out of
            # step: the connection cannot be used again.
            self._shut(ConnectionLost("the connection was abandoned in the middle of a call"))
            raise
        return [replies[rid] for rid in rids]

    def _pump(
        self,
        outgoing: deque[memoryview],
        wanted: set[int],
        replies: dict[int, dict[str, Any]],
        timeout_s: float | None,
    ) -> None:
        # The lock is held from the first byte to the last one sent (no heartbeat frame may land
        # in the middle of ours), then only around each read, never while waiting for replies.
        self._lock.acquire()
        locked = True
        self._in_call = True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while outgoing or len(replies) < len(wanted):
                if locked and not outgoing:
                    self._lock.release()
                    locked = False
                self._want_write(bool(outgoing))
                ready = self._selector.select(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if not ready:
                    if outgoing:
                        raise TimeoutError(f"could not send to the broker within {timeout_s} s")
                    raise _RepliesLate
                mask = ready[0][1]
                progress = False
                if mask & selectors.EVENT_WRITE and outgoing:
                    progress = self._send_some(outgoing)
                if mask & selectors.EVENT_READ:
                    with contextlib.nullcontext() if locked else self._lock:
                        progress = self._receive_some(wanted, replies) or progress
                if progress and timeout_s is not None:
                    deadline = time.monotonic() + timeout_s
        finally:
            if not locked:
                self._lock.acquire()
            self._in_call = False
            self._lock.release()

    def _want_write(self, write: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        if events != self._events:
            self._selector.modify(self._sock, events)
            self._events = events

    def _send_some(self, outgoing: deque[memoryview]) -> bool:
        """Send what the socket takes now; returns whether any byte went out."""
        try:
            sent = self._sock.send(outgoing[0])
        except BlockingIOError:
            return False
        self._last_send_s = time.monotonic()
        outgoing[0] = outgoing[0][sent:]
        if not outgoing[0]:
            outgoing.popleft()
        return sent > 0

    def _receive_some(self, wanted: set[int], replies: dict[int, dict[str, Any]]) -> bool:
        """Read what has arrived; returns whether a wanted reply came. Call with `_lock` held."""
        try:
            data = self._sock.recv(READ_CHUNK_BYTES)
        except BlockingIOError:
            return False
        if not data:
            raise ConnectionLost("the broker closed the connection")
        before = len(replies)
        # feed(b"") again until it returns nothing: a bad frame behind good ones is only reported
        # by the next feed, and the reply we wait for may be that bad frame.
        frames = self._decoder.feed(data)
        while frames:
            for reply in frames:
                self._dispatch(reply, wanted, replies)
            frames = self._decoder.feed(b"")
        return len(replies) > before

    def _dispatch(self, reply: dict[str, Any], wanted: set[int], replies: dict[int, dict[str, Any]]) -> None:
        rid = reply.get("rid")
        if rid is None:
            if "push" in reply and "ok" not in reply:
                log.debug("mq client ignores a push frame: the blocking client does not subscribe")
                return
            # The broker could not read one of our requests and cannot say which: no reply we
            # wait for can be trusted to come, so the connection ends here.
            if reply.get("ok") is not False:
                raise ProtocolError(f"reply without rid: {reply!r}")
            raise error_from_reply(reply)
        if rid in wanted:
            replies[rid] = reply
        elif rid in self._heartbeat_rids:
            self._heartbeat_rids.discard(rid)
            if reply.get("ok") is not True:
                log.warning("mq heartbeat refused: %r", reply)
        if reply.get("fatal") is True:
            raise error_from_reply(reply)  # the broker closes after a fatal reply

    def _shut(self, reason: MQError) -> None:
        self._stop.set()
        with self._lock:  # not while the heartbeat thread is using the socket
            if self._closed is not None:
                return
            self._closed = reason
            self._selector.close()
            self._sock.close()

    # -- the heartbeat thread ---------------------------------------------------------------

    def _beat(self) -> None:
        """Body of the heartbeat thread: a heartbeat when due, and drain replies between calls."""
        with selectors.DefaultSelector() as selector:  # its own: the caller's is not thread-safe
            with self._lock:
                if self._closed is not None:
                    return
                selector.register(self._sock, selectors.EVENT_READ)
            wait_s = 0.0
            while not self._stop.wait(wait_s):
                with self._lock:
                    session = self.session
                    if self._closed is not None or session is None:
                        return
                    interval_s = session.heartbeat_s / 2
                    wait_s = self._last_send_s + interval_s - time.monotonic()
                    if wait_s > 0:
                        continue
                    wait_s = interval_s
                    try:
                        self._send_heartbeat(selector, session.dead_after_s)
                        if not self._in_call:  # nobody else reads now: take the replies out
                            while selector.select(0):
                                self._receive_some(set(), {})
                    except (OSError, MQError) as exc:
                        # The connection is broken. Shutting the socket down (not closing it: the
                        # caller's thread may be in select on it) makes its next call fail.
                        log.warning("mq heartbeat failed, the connection is lost: %s", exc)
                        with contextlib.suppress(OSError):
                            self._sock.shutdown(socket.SHUT_RDWR)
                        return

    def _send_heartbeat(self, selector: selectors.BaseSelector, timeout_s: float) -> None:
        """Send one whole `heartbeat` frame within `timeout_s` seconds. Call with `_lock` held."""
        rid = next(self._rids)
        frame = memoryview(encode_frame(ops.heartbeat().to_wire(rid)))
        self._heartbeat_rids.add(rid)
        deadline = time.monotonic() + timeout_s
        while frame:
            try:
                frame = frame[self._sock.send(frame) :]
            except BlockingIOError:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    raise TimeoutError("could not send a heartbeat") from None
                selector.modify(self._sock, selectors.EVENT_WRITE)
                try:
                    selector.select(remaining_s)
                finally:
                    selector.modify(self._sock, selectors.EVENT_READ)
        self._last_send_s = time.monotonic()


class _RepliesLate(Exception):
    """Internal: the timeout passed after the whole request was sent."""
