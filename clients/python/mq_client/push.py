"""Push consumption for the asyncio client: subscriptions and monitors (protocol.md 2.4).

Theory of operation. After `sub` or `monitor` the broker also sends frames nobody asked for:
maps with a `push` key and no `rid`. The connection's reader recognises them by that (a reply
always carries `ok`, so a push can never be taken for one) and hands them to the client's
`PushRouter`, which routes them: `msgs` to the `Subscription` of their queue, `event` to the
open `Monitor`, `ended` to the stream it ends (which then raises its error); a frame of any
other kind is logged at debug level and dropped. A stream buffers what it is given in an
asyncio.Queue until the application takes it, with `async for` or `batch()`.

A stream is registered with the router *before* its request is written, so pushes that arrive
ahead of the reply, or in the same read, are not lost. The broker leases at most `prefetch`
messages to a subscription at once, which bounds its buffer; a monitor's events have no such
bound, so a monitor keeps the newest `MONITOR_BUFFER_EVENTS` and counts the ones it dropped.

The router outlives connections: with reconnect, `Link` repeats `sub` and `monitor` for the open
streams on each new connection (messages received before stay in the buffer: with a resumed
session their leases are still good, without one their acks fail with `LeaseLost`). When the
connection ends for good, every stream ends with its error; `close()` of the client ends them
cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from mq_client import ops
from mq_client.errors import ConnectionLost, MQError, ProtocolError, clone_error, error_from_reply
from mq_client.message import Message
from mq_client.request import Request

T = TypeVar("T")
log = logging.getLogger(__name__)

MONITOR_BUFFER_EVENTS = 10_000
"""Events a monitor holds for the application at most; older ones are dropped beyond that."""

Call = Callable[[Request[Any]], Awaitable[Any]]
"""Sends a request on the client's current connection and awaits its parsed reply."""


class _End:
    """The last item of a stream: why it ended (None: closed on purpose)."""

    __slots__ = ("error",)

    def __init__(self, error: MQError | None) -> None:
        self.error = error


class PushStream(Generic[T]):
    """What the broker pushes for one `sub` or `monitor`, as an async iterator."""

    def __init__(self) -> None:
        self._items: asyncio.Queue[T | _End] = asyncio.Queue()
        self._ended = False

    @property
    def closed(self) -> bool:
        """True once the stream has ended: closed, or its connection is gone for good."""
        return self._ended

    def __aiter__(self) -> PushStream[T]:
        return self

    async def __anext__(self) -> T:
        """The next item; StopAsyncIteration once closed, the connection's error once it is lost."""
        item = await self._items.get()
        if isinstance(item, _End):
            self._items.put_nowait(item)  # every later call ends the same way
            if item.error is not None:
                raise clone_error(item.error)
            raise StopAsyncIteration
        return item

    async def batch(self, max_count: int = 1000) -> list[T]:
        """Wait for an item, then take every buffered one too, up to `max_count`, in order.

        Returns [] once the stream is closed; raises the connection's error once it is lost.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, got {max_count}")
        try:
            items = [await self.__anext__()]
        except StopAsyncIteration:
            return []
        queue = self._items
        while len(items) < max_count and not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, _End):
                queue.put_nowait(item)  # for the next call
                break
            items.append(item)
        return items

    def put(self, item: T) -> bool:
        """Buffer `item` for the application; False (and nothing buffered) once ended."""
        if self._ended:
            return False
        self._items.put_nowait(item)
        return True

    def end(self, error: MQError | None = None) -> None:
        """End the stream after what it holds; `error` is raised to the reader, None ends it cleanly."""
        if not self._ended:
            self._ended = True
            self._items.put_nowait(_End(error))

    def _take_buffered(self) -> list[T]:
        """Remove and return what the application has not taken yet."""
        taken: list[T] = []
        while not self._items.empty():
            item = self._items.get_nowait()
            if not isinstance(item, _End):
                taken.append(item)
        return taken


class Subscription(PushStream[Message]):
    """Messages of `queue` the broker pushes, at most `prefetch` unacked at once (None: the
    broker's default).

    Each is a lease like one from `get`: ack, nack or touch it on the same client; acks and
    nacks free credit for more. Iterate with `async for msg in sub`, or take what has arrived
    with `await sub.batch(n)`. `await sub.close()` (or `async with`) unsubscribes.
    """

    def __init__(self, queue: str, prefetch: int | None, lease_s: float | None, router: PushRouter, call: Call) -> None:
        super().__init__()
        self.queue = queue
        self.prefetch = prefetch
        self.lease_s = lease_s
        self._router = router
        self._call = call

    def move(self, router: PushRouter, call: Call) -> None:
        """The subscription now lives on another connection (a cluster's queue moved)."""
        self._router = router
        self._call = call

    def request(self) -> Request[None]:
        """The `sub` request that (re)establishes this subscription."""
        return ops.subscribe(self.queue, self.prefetch, self.lease_s)

    async def close(self) -> None:
        """Unsubscribe, then nack what was received but not taken, so it goes out again at once.

        A reader waiting in `async for` stops. Safe to call twice; a lost connection is not an
        error here (its leases went back with it, or come back when the session ends).
        """
        if self._ended:
            return
        try:
            with contextlib.suppress(ConnectionLost):
                # Pushes sent before the broker saw `unsub` arrive before its reply: still routed here.
                await self._call(ops.unsubscribe(self.queue))
        finally:
            self._router.remove(self)
            leftovers = self._take_buffered()
            self.end()
        if leftovers:
            # Errors are fine to ignore: a lease that is gone needs no giving back.
            await asyncio.gather(*(self._call(ops.nack(m)) for m in leftovers), return_exceptions=True)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Monitor(PushStream[dict[str, Any]]):
    """Events of `queue` (every queue if None) as the broker commits them, as maps.

    Each event has `at` (Unix s), `queue`, `msg_id` and `event` (`published`, `leased`,
    `acked`, `nacked`, ...) with that event's fields (protocol.md 2.3). When the application
    falls behind by more than `MONITOR_BUFFER_EVENTS`, the oldest are dropped and counted in
    `dropped`. The protocol has no way to stop a monitor: after `close()` the broker still sends
    events until the connection closes, and the client discards them.
    """

    def __init__(self, queue: str | None, router: PushRouter) -> None:
        super().__init__()
        self.queue = queue
        self.dropped = 0
        """Events dropped because the application did not keep up."""
        self._router = router

    def request(self) -> Request[None]:
        """The `monitor` request that (re)establishes this monitor."""
        return ops.monitor(self.queue)

    def put(self, item: dict[str, Any]) -> bool:
        if self._items.qsize() >= MONITOR_BUFFER_EVENTS and not self._ended:
            self._items.get_nowait()
            if not self.dropped:
                log.warning("mq monitor is %d events behind; dropping the oldest", MONITOR_BUFFER_EVENTS)
            self.dropped += 1
        return super().put(item)

    async def close(self) -> None:
        """Stop routing events here; a reader waiting in `async for` stops. Safe to call twice."""
        self._router.remove(self)
        self.end()

    async def __aenter__(self) -> Monitor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class PushRouter:
    """The open streams of one client, and where each push frame goes; see the module docstring.

    `reconnect`: whether a lost connection will be replaced (then streams survive it).
    """

    def __init__(self, *, reconnect: bool) -> None:
        self._reconnect = reconnect
        self._subscriptions: dict[str, Subscription] = {}
        self._monitor: Monitor | None = None
        self.on_moved: Callable[[Subscription], None] | None = None
        """A cluster's link: takes a subscription whose queue left this broker (a `moved`
        push, or the broker lost) to follow it to the new one (cluster_link.py)."""

    def add(self, stream: Subscription | Monitor) -> None:
        """Register a stream, before its request goes out. ValueError if its place is taken:
        the broker keeps one subscription per queue and one monitor per connection."""
        if isinstance(stream, Subscription):
            if stream.queue in self._subscriptions:
                raise ValueError(f"this client already has a subscription to {stream.queue!r}; close it first")
            self._subscriptions[stream.queue] = stream
        else:
            if self._monitor is not None:
                raise ValueError("this client already has a monitor; close it first")
            self._monitor = stream

    def remove(self, stream: Subscription | Monitor) -> None:
        """Forget a stream (nothing happens if it is not registered)."""
        if isinstance(stream, Subscription):
            if self._subscriptions.get(stream.queue) is stream:
                del self._subscriptions[stream.queue]
        elif self._monitor is stream:
            self._monitor = None

    def requests(self) -> list[Request[None]]:
        """The `sub` and `monitor` requests that restore every open stream on a new connection."""
        streams: list[Subscription | Monitor] = list(self._subscriptions.values())
        if self._monitor is not None:
            streams.append(self._monitor)
        return [s.request() for s in streams]

    def route(self, frame: dict[str, Any]) -> None:
        """Hand one push frame to its stream; `ProtocolError` if it is malformed."""
        kind = frame.get("push")
        if kind == "msgs":
            self._route_msgs(frame)
        elif kind == "event":
            self._route_event(frame)
        elif kind == "moved" and self.on_moved is not None:
            sub = self._subscriptions.pop(str(frame.get("queue")), None)
            if sub is not None:
                self.on_moved(sub)
        elif kind == "ended":
            self._route_ended(frame)
        else:
            log.debug("mq client ignores a push frame of unknown kind %r", kind)

    def _route_msgs(self, frame: dict[str, Any]) -> None:
        queue, msgs = frame.get("queue"), frame.get("msgs")
        if not isinstance(queue, str) or not isinstance(msgs, list):
            raise ProtocolError(f"push of messages without a queue or a list of msgs: {frame!r:.200}")
        messages = [Message.from_wire(m) for m in msgs]
        sub = self._subscriptions.get(queue)
        delivered = sub is not None and all([sub.put(m) for m in messages])
        if not delivered:
            # Leased to this connection, yet nobody will ack them: they go back when their lease
            # ends or the connection closes. Only a subscription cancelled mid-request gets here.
            log.warning("mq client got %d pushed messages of queue %r without a subscription", len(msgs), queue)

    def _route_ended(self, frame: dict[str, Any]) -> None:
        """The broker ended a stream (its user lost the permission): it raises the error."""
        error = error_from_reply(frame)
        stream: Subscription | Monitor | None
        if frame.get("stream") == "monitor":
            stream, self._monitor = self._monitor, None
        else:
            stream = self._subscriptions.pop(str(frame.get("queue")), None)
        if stream is not None:
            stream.end(error)

    def _route_event(self, frame: dict[str, Any]) -> None:
        monitor = self._monitor
        if monitor is None:
            log.debug("mq client ignores an event: no monitor is open")  # see Monitor's docstring
            return
        monitor.put({k: v for k, v in frame.items() if k != "push"})

    def connection_lost(self, reason: MQError) -> None:
        """The connection ended; without reconnect every stream ends with `reason`, but in a
        cluster each subscription follows its queue to the broker that serves it now."""
        if self.on_moved is not None:
            subs = list(self._subscriptions.values())
            self._subscriptions.clear()
            for sub in subs:
                self.on_moved(sub)
        if not self._reconnect:
            self.end_all(reason)

    def end_all(self, reason: MQError | None) -> None:
        """End every stream (cleanly if `reason` is None) and forget them."""
        streams: list[Subscription | Monitor] = list(self._subscriptions.values())
        if self._monitor is not None:
            streams.append(self._monitor)
        self._subscriptions.clear()
        self._monitor = None
        for stream in streams:
            stream.end(reason)
