"""An `AsyncClient` for blocking code: its event loop runs in a daemon thread of its own.

Why: kombu calls its transports from blocking code (a Celery worker's main thread, its timer
thread, the threads of a pool), while push consumption (`sub`), background heartbeats and
reconnects live in the asyncio client. `ClientThread` runs one `AsyncClient` on a loop in its
own thread; `run` hands a coroutine to that loop and blocks the calling thread until it is done,
from any thread. A subscription's messages are handed to a callback on the loop thread as they
arrive (the caller's callback must be thread-safe: put them in a `queue.SimpleQueue`).

Every `run` is bounded: a call that has no answer within `call_timeout_s` (the broker gone and
not back within the client's reconnect timeout) raises `ConnectionLost`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from mq_client.aio import DEFAULT_RECONNECT_TIMEOUT_S, AsyncClient
from mq_client.errors import ConnectionLost, MQError
from mq_client.message import Message
from mq_client.push import Subscription

T = TypeVar("T")
log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
"""How long `close()` waits for the client to say goodbye and the loop to stop, in seconds."""


class ClientThread:
    """One `AsyncClient` (reconnecting) on an event loop in a daemon thread."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float,
        name: str = "mq-client-loop",
        user: str | None = None,
        secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Connect to `url` as `AsyncClient.connect` does (credentials and TLS as it takes them)."""
        self.call_timeout_s = connect_timeout_s + DEFAULT_RECONNECT_TIMEOUT_S
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._pumps: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}

        async def connect() -> AsyncClient:
            return await AsyncClient.connect(
                url,
                connect_timeout_s=connect_timeout_s,
                reconnect=True,
                user=user,
                secret=secret,
                ssl_context=ssl_context,
            )

        try:
            self.client = self.run(connect())
        except BaseException:
            self._stop_loop()
            raise
        # A client left open (kombu keeps pooled connections to the end) still says goodbye,
        # and its loop stops before the interpreter tears down its pending tasks.
        atexit.register(self.close)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the client's loop and return its result; raises what it raises."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("ClientThread.run called from its own loop thread: it would wait for itself")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self.call_timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ConnectionLost(f"no answer from the broker within {self.call_timeout_s} s") from None

    def subscribe(
        self,
        queue: str,
        prefetch: int | None,
        lease_s: float | None,
        deliver: Callable[[Message], None],
        failed: Callable[[MQError], None],
    ) -> None:
        """Subscribe to `queue`; each message pushed is given to `deliver` (on the loop thread).

        If the subscription ends with an error (the connection is gone for good), `failed`
        gets it. One subscription per queue: a second one for the same queue is a ValueError.
        """

        async def start() -> None:
            sub = await self.client.subscribe(queue, prefetch, lease_s)
            self._pumps[queue] = (sub, asyncio.create_task(_pump(sub, deliver, failed), name=f"mq-sub-{queue}"))

        self.run(start())

    def unsubscribe(self, queue: str) -> None:
        """End the subscription to `queue`, if any; what it had not handed on is given back."""

        async def stop() -> None:
            sub, task = self._pumps.pop(queue)
            await sub.close()
            await task

        if queue in self._pumps:
            self.run(stop())

    def close(self) -> None:
        """Close the client (its session's leases go back at once) and stop the loop. Idempotent."""
        atexit.unregister(self.close)
        if not self._loop.is_closed():
            try:
                future = asyncio.run_coroutine_threadsafe(self.client.close(), self._loop)
                future.result(CLOSE_TIMEOUT_S)
            except (concurrent.futures.TimeoutError, MQError, OSError) as exc:
                log.warning("mq client did not close cleanly: %s", exc)
            self._stop_loop()

    def _stop_loop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already stopped
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CLOSE_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()


async def _pump(sub: Subscription, deliver: Callable[[Message], None], failed: Callable[[MQError], None]) -> None:
    try:
        async for msg in sub:
            deliver(msg)
    except MQError as exc:
        failed(exc)
