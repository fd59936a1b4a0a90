"""One TCP connection to the broker, for asyncio: requests out, replies matched back by `rid`.

Theory of operation: one connection, one background reader task. A request gets the next `rid`,
registers a future under it and writes its frame; the reader decodes replies and resolves the
future whose `rid` the reply echoes. Replies may come back in any order (protocol.md section
2.2), so many requests (from many tasks) can be in flight at once. When the connection ends, for
whatever reason, every pending future fails, so no call is left waiting forever; `lost` is set
at that moment, for whoever reconnects. A call whose frame was handed to the socket when the
connection was lost fails with `OutcomeUnknown` (it may or may not have run: its
`safe_to_retry` says whether sending it again is harmless); one whose frame never left this
process fails with the plain `ConnectionLost`.

A reply that cannot be matched to a request (an error without `rid`) is treated as the end of
the connection: the broker could not read one of our requests, and since we cannot tell which,
the only way to keep the no-hang promise is to fail them all.

Push frames (protocol.md 2.4: a `push` key, no `rid`, no `ok`) are not replies: they go to
`pushes` (the client's `push.PushRouter`), which is also told when the connection ends.

Writes are coalesced: the first frame written in a turn of the event loop goes to the socket at
once (a lone request waits for nothing), the frames that follow it in the same turn are joined
and written together at the start of the next turn (or as soon as they reach
`COALESCE_BYTES`). Many requests made at once, such as a batch of pipelined calls, then cost one
send system call rather than one each, on this side and on the broker's reading side.

A `Connection` is never reused after it ends: `AsyncClient` opens a new one to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from typing import Any, Protocol, TypeVar

from mq_client.codec import FrameDecoder, encode_frame
from mq_client.errors import ConnectionLost, MQError, ProtocolError, clone_error, error_from_reply
from mq_client.request import Request, check_reply, outcome_unknown
from mq_client.url import Address

T = TypeVar("T")
log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 256 * 1024
COALESCE_BYTES = 64 * 1024
"""Frames held back for one joined write are written as soon as they add up to this, in bytes."""


class PushSink(Protocol):
    """Where a connection sends the push frames it reads (`push.PushRouter`)."""

    def route(self, frame: dict[str, Any]) -> None: ...

    def connection_lost(self, reason: MQError) -> None: ...


class Connection:
    """A connected stream pair with its reader task; see the module docstring."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, max_frame_bytes: int) -> None:
        """`max_frame_bytes`: the broker's limit, in bytes; larger requests fail locally."""
        self.max_frame_bytes = max_frame_bytes
        self.lost = asyncio.Event()
        """Set once the connection has ended (closed by either side, or broken)."""
        self.error: MQError | None = None
        """Why the connection ended; None while it is up."""
        self.pushes: PushSink | None = None
        """Receives the push frames; without one they are logged and dropped."""
        self._loop = asyncio.get_running_loop()
        self.last_send_s = self._loop.time()
        """Loop time of the last request written, in seconds: what heartbeats are timed from."""
        self._reader = reader
        self._writer = writer
        self._transport = writer.transport
        self._held: list[bytes] | None = None  # frames for the next joined write; None: none this turn
        self._held_bytes = 0
        self._held_rids: list[int] = []  # whose frames are in `_held`: never sent if the connection ends
        self._rids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._requests: dict[int, Request[Any]] = {}  # of `_pending`, for `OutcomeUnknown`
        self._reader_task = asyncio.create_task(self._read_replies(), name="mq-client-reader")

    @classmethod
    async def open(
        cls,
        address: Address,
        *,
        connect_timeout_s: float,
        max_frame_bytes: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Connection:
        """Connect to `address` (over TLS with `ssl_context`: the handshake verifies the broker's
        certificate as the context says); raises `ConnectionLost` if that fails within
        `connect_timeout_s` seconds."""
        hostname = None if ssl_context is None else address.host  # what the certificate must name
        try:
            async with asyncio.timeout(connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    address.host, address.port, ssl=ssl_context, server_hostname=hostname
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot connect to {address}: {str(exc) or 'timed out'}") from exc
        return cls(reader, writer, max_frame_bytes=max_frame_bytes)

    @property
    def closed(self) -> bool:
        """True once the connection has ended; every request then raises `error`."""
        return self.error is not None

    async def call(self, request: Request[T]) -> T:
        """Send `request`, wait for its reply and return the parsed value (or raise its error)."""
        future = self._write(request)
        if self._transport.get_write_buffer_size():
            await self._drain(future)
        reply = await future
        return request.parse(check_reply(reply))

    async def send(self, request: Request[Any]) -> asyncio.Future[dict[str, Any]]:
        """Write one request; return the future its reply will resolve."""
        future = self._write(request)
        if self._transport.get_write_buffer_size():
            await self._drain(future)
        return future

    def _write(self, request: Request[Any]) -> asyncio.Future[dict[str, Any]]:
        """Register a future for the reply of `request` and hand its frame to the transport."""
        if self.error is not None:
            raise clone_error(self.error)
        rid = next(self._rids)
        frame = encode_frame(request.to_wire(rid), max_frame_bytes=self.max_frame_bytes)
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        # Registered before writing: the reply may be read before drain() returns. It leaves
        # `_pending` when its reply comes (even if its caller gave up by then) or in `shut`.
        self._pending[rid] = future
        self._requests[rid] = request
        try:
            self._send_frame(rid, frame)
        except OSError as exc:
            # Fails this call too: shut sets the error on every pending future, this one included.
            self.shut(ConnectionLost(f"connection lost while sending: {exc}"))
        except BaseException:
            del self._pending[rid]  # nothing went out, so no reply will come to remove it
            del self._requests[rid]
            raise
        self.last_send_s = self._loop.time()
        return future

    def _send_frame(self, rid: int, frame: bytes) -> None:
        # Whole frames only, in order: frames of concurrent calls never interleave.
        held = self._held
        if held is None:
            self._transport.write(frame)
            self._held = []
            self._loop.call_soon(self._write_held)
            return
        held.append(frame)
        self._held_rids.append(rid)
        self._held_bytes += len(frame)
        if self._held_bytes >= COALESCE_BYTES:
            self._flush_held()

    def _flush_held(self) -> None:
        held = self._held
        if held:
            self._held, self._held_bytes = [], 0
            self._held_rids.clear()
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def _write_held(self) -> None:
        """The start of the next loop turn: write what the last one held back."""
        if self.error is None:
            try:
                self._flush_held()
            except OSError as exc:
                self.shut(ConnectionLost(f"connection lost while sending: {exc}"))
        self._held = None

    async def _drain(self, future: asyncio.Future[dict[str, Any]]) -> None:
        """Wait while the transport's buffer is above its high-water mark (flow control).

        Only called when bytes are buffered: a write the socket took whole needs no drain.
        """
        try:
            await self._writer.drain()
        except OSError as exc:
            self.shut(ConnectionLost(f"connection lost while sending: {exc}"))
        except BaseException:
            future.cancel()  # the request went out: its reply removes it from `_pending`
            raise

    async def close(self) -> None:
        """Close the connection; pending requests fail with `ConnectionLost`. Safe to call twice."""
        self.shut(ConnectionLost("the client was closed"))
        if self._reader_task is not asyncio.current_task():
            await asyncio.gather(self._reader_task, return_exceptions=True)
        # The peer may already have reset the connection; it is closed either way.
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def abort(self) -> None:
        """Drop the connection at once (a TCP reset, no goodbye), as a network failure would."""
        self._writer.transport.abort()
        self.shut(ConnectionLost("the connection was aborted"))

    def shut(self, reason: MQError) -> None:
        """Mark the connection dead, fail every pending request with `reason`, stop I/O."""
        if self.error is None:
            self.error = reason
            self._writer.close()
            self.lost.set()
            if self.pushes is not None:
                self.pushes.connection_lost(reason)
        if self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
        unsent = set(self._held_rids)
        for rid, future in list(self._pending.items()):
            if not future.done():
                future.set_exception(self._error_for(rid, reason, unsent))
        self._pending.clear()
        self._requests.clear()
        self._held_rids.clear()

    def _error_for(self, rid: int, reason: MQError, unsent: set[int]) -> MQError:
        """What the call `rid` raises when the connection ends for `reason`."""
        request = self._requests.get(rid)
        if type(reason) is not ConnectionLost or rid in unsent or request is None:
            return clone_error(reason)  # a definite error, or it never went out
        return outcome_unknown([request], str(reason))

    async def _read_replies(self) -> None:
        decoder = FrameDecoder()
        try:
            while self.error is None:
                data = await self._reader.read(READ_CHUNK_BYTES)
                if not data:
                    self.shut(ConnectionLost("the broker closed the connection"))
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
            self.shut(ConnectionLost(f"connection lost: {exc}"))
        except MQError as exc:  # ProtocolError from the decoder or a malformed error reply
            self.shut(exc)
        except Exception as exc:
            log.exception("mq client reader failed")
            self.shut(ConnectionLost(f"reader failed: {exc!r}"))

    def _dispatch(self, reply: dict[str, Any]) -> None:
        rid = reply.get("rid")
        if rid is None:
            if "push" in reply and "ok" not in reply:
                self._push(reply)
                return
            if reply.get("ok") is not False:
                raise ProtocolError(f"reply without rid: {reply!r}")
            raise error_from_reply(reply)  # fails every pending request: see the module docstring
        # A reply whose caller gave up (cancelled) has nobody to go to and is dropped.
        future = None
        if isinstance(rid, int):
            future = self._pending.pop(rid, None)
            self._requests.pop(rid, None)
        if future is not None and not future.done():
            future.set_result(reply)
        if reply.get("fatal") is True:
            # The broker closes after a fatal reply; fail the rest now rather than at EOF.
            self.shut(error_from_reply(reply))

    def _push(self, frame: dict[str, Any]) -> None:
        if self.pushes is None:
            log.debug("mq client ignores a push frame: nothing subscribed on this connection")
            return
        self.pushes.route(frame)  # a malformed push raises ProtocolError: the connection ends
