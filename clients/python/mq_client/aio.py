"""The asyncio client.

Theory of operation: one connection, one background reader task. A call assigns the next
`rid`, registers a future under it, writes its frame and awaits the future; the reader decodes
replies and resolves the future whose `rid` the reply echoes. Replies may come back in any
order (protocol.md section 2.2), so many calls (from many tasks, or `publish_many`) can be in
flight at once. When the connection ends, for whatever reason, every pending future fails with
the same kind of error, so no call is left waiting forever.

A reply that cannot be matched to a call (an error without `rid`) is treated as the end of the
connection: the broker could not read one of our requests, and since we cannot tell which, the
only way to keep the no-hang promise is to fail them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Generator, Iterable
from types import TracebackType
from typing import Any, TypeVar

from mq_client import ops
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES, FrameDecoder, encode_frame
from mq_client.errors import ConnectionLost, MQError, ProtocolError, clone_error, error_from_reply
from mq_client.message import Message
from mq_client.ops import Body, ReceiptLike, Request
from mq_client.url import DEFAULT_URL, parse_url

T = TypeVar("T")
log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 256 * 1024
DEFAULT_CONNECT_TIMEOUT_S = 10.0


class AsyncClient:
    """A connection to an mq broker for asyncio code.

    Create it with `await AsyncClient.connect(url)` or `async with AsyncClient.connect(url) as c`.
    Methods may be called concurrently from many tasks; each awaits its own reply. Leases
    belong to the connection (protocol.md section 4): ack what you got on the same client.
    To bound a call's time, wrap it in `asyncio.timeout(...)`; a call cancelled that way still
    gets its reply from the broker, which the client discards (a message leased by a cancelled
    `get` comes back when its lease expires).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        """Wrap an open stream pair; most code should use `AsyncClient.connect` instead.

        `max_frame_bytes`: the broker's limit, in bytes; larger requests are refused locally
        with `FrameTooLarge` instead of having the broker close the connection.
        """
        self.max_frame_bytes = max_frame_bytes
        self._reader = reader
        self._writer = writer
        self._rids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._closed: MQError | None = None
        self._reader_task = asyncio.create_task(self._read_replies(), name="mq-client-reader")

    @classmethod
    def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> _Connect:
        """Connect to the broker at `url` (`mq://host:port`).

        The result can be awaited (`c = await AsyncClient.connect(url)`, then `await c.close()`)
        or used as `async with AsyncClient.connect(url) as c:`, which closes on exit.
        Raises ValueError for a bad URL and `ConnectionLost` if the connection cannot be made
        within `connect_timeout_s` seconds.
        """
        return _Connect(cls, url, connect_timeout_s, max_frame_bytes)

    @property
    def closed(self) -> bool:
        """True once the connection is closed or lost; every call then raises."""
        return self._closed is not None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; pending calls fail with `ConnectionLost`. Safe to call twice."""
        self._shut(ConnectionLost("the client was closed"))
        if self._reader_task is not asyncio.current_task():
            await asyncio.gather(self._reader_task, return_exceptions=True)
        # The peer may already have reset the connection; it is closed either way.
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    # -- operations (protocol.md section 2.3) -----------------------------------------------

    async def ping(self) -> None:
        """Round trip to the broker."""
        await self._call(ops.ping())

    async def publish(self, queue: str, body: Body, key: str | None = None) -> int:
        """Publish one message; returns its msg_id once the broker has committed it."""
        return await self._call(ops.publish(queue, body, key))

    async def publish_many(self, queue: str, bodies: Iterable[Body], batch_size: int = 1000) -> list[int]:
        """Publish many messages, pipelined; returns their msg_ids in the order of `bodies`.

        Bodies go out as `mpub` frames of at most `batch_size` bodies (1..10,000), all sent
        without waiting for replies. If any batch fails, its error is raised after every batch
        has answered; the other batches may have been stored (the broker commits each `mpub`
        on its own).
        """
        requests = ops.publish_batches(queue, bodies, batch_size, self.max_frame_bytes)
        pending: list[tuple[Request[list[int]], asyncio.Future[dict[str, Any]]]] = []
        try:
            for request in requests:
                pending.append((request, await self._send(request)))
        finally:
            # Wait for every sent batch even if a later send failed: none is left unobserved.
            replies = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        ids: list[int] = []
        for (request, _), reply in zip(pending, replies, strict=True):
            if isinstance(reply, BaseException):
                raise reply
            ids.extend(request.parse(ops.check_reply(reply)))
        return ids

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

    async def nack(self, receipt: ReceiptLike, delay_s: float | None = None) -> None:
        """Give a delivery back: ready again now, or after `delay_s` seconds."""
        await self._call(ops.nack(receipt, delay_s))

    async def touch(self, receipt: ReceiptLike, lease_s: float | None = None) -> float:
        """Extend a lease to `lease_s` seconds from now (queue default if None); returns that length."""
        return await self._call(ops.touch(receipt, lease_s))

    async def declare(
        self, queue: str, retention_s: float | None = None, lease_s: float | None = None
    ) -> dict[str, Any]:
        """Set a queue's retention and default lease, in seconds; returns the queue's settings."""
        return await self._call(ops.declare(queue, retention_s, lease_s))

    async def queues(self) -> list[str]:
        """The names of all queues, sorted."""
        return await self._call(ops.queues())

    async def stats(self, queue: str | None = None) -> dict[str, Any]:
        """Broker statistics: `{"server": {...}, "queues": {name: {...}}}` (protocol.md section 6)."""
        return await self._call(ops.stats(queue))

    # -- machinery --------------------------------------------------------------------------

    async def _call(self, request: Request[T]) -> T:
        reply = await (await self._send(request))
        return request.parse(ops.check_reply(reply))

    async def _send(self, request: Request[Any]) -> asyncio.Future[dict[str, Any]]:
        """Write one request; return the future its reply will resolve."""
        if self._closed is not None:
            raise clone_error(self._closed)
        rid = next(self._rids)
        frame = encode_frame(request.to_wire(rid), max_frame_bytes=self.max_frame_bytes)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # Registered before writing: the reply may be read before drain() returns.
        self._pending[rid] = future
        future.add_done_callback(lambda _: self._pending.pop(rid, None))
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except OSError as exc:
            # Fails this call too: _shut sets the error on every pending future, this one included.
            self._shut(ConnectionLost(f"connection lost while sending: {exc}"))
        except BaseException:
            future.cancel()
            raise
        return future

    def _shut(self, reason: MQError) -> None:
        """Mark the connection dead, fail every pending call with `reason`, stop I/O."""
        if self._closed is None:
            self._closed = reason
            self._writer.close()
        if self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(clone_error(reason))
        self._pending.clear()

    async def _read_replies(self) -> None:
        decoder = FrameDecoder()
        try:
            while self._closed is None:
                data = await self._reader.read(READ_CHUNK_BYTES)
                if not data:
                    self._shut(ConnectionLost("the broker closed the connection"))
                    return
                # feed(b"") again until it returns nothing: a bad frame behind good ones is only
                # reported by the next feed, and no more bytes may ever come to trigger it.
                replies = decoder.feed(data)
                while replies:
                    for reply in replies:
                        self._dispatch(reply)
                    replies = decoder.feed(b"")
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            self._shut(ConnectionLost(f"connection lost: {exc}"))
        except MQError as exc:  # ProtocolError from the decoder or a malformed error reply
            self._shut(exc)
        except Exception as exc:
            log.exception("mq client reader failed")
            self._shut(ConnectionLost(f"reader failed: {exc!r}"))

    def _dispatch(self, reply: dict[str, Any]) -> None:
        rid = reply.get("rid")
        if rid is None:
            if reply.get("ok") is not False:
                raise ProtocolError(f"reply without rid: {reply!r}")
            raise error_from_reply(reply)  # fails every pending call: see the module docstring
        # A reply whose caller gave up (cancelled) has nobody to go to and is dropped.
        future = self._pending.get(rid) if isinstance(rid, int) else None
        if future is not None and not future.done():
            future.set_result(reply)
        if reply.get("fatal") is True:
            # The broker closes after a fatal reply; fail the rest now rather than at EOF.
            self._shut(error_from_reply(reply))


class _Connect:
    """What `AsyncClient.connect` returns: awaitable, and an async context manager."""

    __slots__ = ("_address", "_client", "_cls", "_connect_timeout_s", "_max_frame_bytes")

    def __init__(self, cls: type[AsyncClient], url: str, connect_timeout_s: float, max_frame_bytes: int) -> None:
        self._address = parse_url(url)  # a bad URL fails at the call site, not at the first await
        self._cls = cls
        self._connect_timeout_s = connect_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._client: AsyncClient | None = None

    async def _open(self) -> AsyncClient:
        address = self._address
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(address.host, address.port)
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to {address}: {str(exc) or 'timed out'}") from exc
        return self._cls(reader, writer, max_frame_bytes=self._max_frame_bytes)

    def __await__(self) -> Generator[Any, None, AsyncClient]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncClient:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()
