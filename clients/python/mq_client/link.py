"""The asyncio client's link to the broker: one connection at a time, a session across them.

Theory of operation. A `Link` owns the current `Connection` and, after `hello`, the consumer
session with its group memberships. Two background tasks, both owned here and both cancelled
and awaited by `close()`:

- **heartbeats** (started by the first `hello`): whenever nothing has been written on the
  connection for half the session's `heartbeat_s`, send a `heartbeat`. Any request counts as a
  sign of life (protocol.md section 4.1), so a busy client sends none. Its replies are not
  waited for; a failure just means the connection ended, which the link handles below.
- **the supervisor** (only with reconnect): waits for the connection to end, then dials again
  with jittered exponential backoff (`RECONNECT_BACKOFF`). On the new connection, before any call
  may use it, it says `hello` with the session's token: `resumed: true` means leases and groups
  survived on the broker; `resumed: false` (the session died, or the broker restarted) means a
  new session, so it repeats every `join` request it made. Only then is the connection installed and are the
  calls waiting for it released (`_changed`).

The link also owns the client's `PushRouter` (push.py): every connection it installs routes
its push frames there, and a connection restored after a drop gets `sub` and `monitor` again
for the streams still open, after the session and before any call may use it.

Calls in flight when a connection ends fail with its error (`ConnectionLost`, or the broker's
fatal error); they are never replayed, since they may or may not have run. New calls wait for
the next connection up to `reconnect_timeout_s`. A broker error that retrying cannot fix while
restoring the session (say `NAME_TAKEN` on a re-join) ends the client: it is logged, and every
later call raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from mq_client import ops
from mq_client.connection import Connection
from mq_client.errors import ConnectionLost, MQError, clone_error
from mq_client.push import PushRouter
from mq_client.request import Request
from mq_client.retry import RECONNECT_BACKOFF
from mq_client.session import Session

T = TypeVar("T")
log = logging.getLogger(__name__)

QUIT_TIMEOUT_S = 1.0
"""How long `close()` waits for the broker to acknowledge a session's goodbye, in seconds."""

Dial = Callable[[], Awaitable[Connection]]
"""Opens a new connection to the same broker; raises `ConnectionLost` if it cannot."""


class Link:
    """The current connection, the session and its groups; see the module docstring.

    `dial` None means no reconnect: when the connection ends, the link is closed for good.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        dial: Dial | None = None,
        reconnect_timeout_s: float = 30.0,
        backoff: Callable[[], Iterator[float]] = RECONNECT_BACKOFF.delays,
    ) -> None:
        self.session: Session | None = None
        """The current consumer session, None before `hello`."""
        self.reconnects = 0
        """How many times a lost connection was replaced by a new one."""
        self.pushes = PushRouter(reconnect=dial is not None)
        """The client's subscriptions and monitor, across connections."""
        conn.pushes = self.pushes
        self._conn = conn
        self._dial = dial
        self._reconnect_timeout_s = reconnect_timeout_s
        self._backoff = backoff
        self._closed: MQError | None = None
        self._changed = asyncio.Condition()  # notified when a connection is installed or on close
        self._joins: dict[str, Request[dict[str, Any]]] = {}  # by queue: a session joins one group a queue
        self._rejoin_needed = False  # a new session replaced ours and its joins are not all done
        self._heartbeats: asyncio.Task[None] | None = None
        self._supervisor = None if dial is None else asyncio.create_task(self._supervise(), name="mq-client-reconnect")

    @property
    def closed(self) -> bool:
        """True once every call will raise: closed, or the connection ended and will not come back."""
        return self._closed is not None or (self._dial is None and self._conn.closed)

    @property
    def will_reconnect(self) -> bool:
        """True if a lost connection will be replaced: reconnect is on and the link is not closed."""
        return self._dial is not None and self._closed is None

    @property
    def max_frame_bytes(self) -> int:
        return self._conn.max_frame_bytes

    async def connection(self) -> Connection:
        """The connection to send on, waiting up to `reconnect_timeout_s` while one is being made."""
        if self._closed is not None:
            raise clone_error(self._closed)
        error = self._conn.error
        if error is None:
            return self._conn
        if self._dial is None:
            raise clone_error(error)
        try:
            async with asyncio.timeout(self._reconnect_timeout_s):
                await self._wait_changed()
        except TimeoutError:
            raise ConnectionLost(f"not reconnected within reconnect_timeout_s={self._reconnect_timeout_s}") from None
        if self._closed is not None:
            raise clone_error(self._closed)
        return self._conn

    def call(self, request: Request[T]) -> Awaitable[T]:
        """Send `request` on the current connection; awaiting the result gives its parsed reply."""
        conn = self._conn
        if conn.error is None and self._closed is None:
            return conn.call(request)  # the hot path: no coroutine of our own in between
        return self._call_when_connected(request)

    async def _call_when_connected(self, request: Request[T]) -> T:
        return await (await self.connection()).call(request)

    async def hello(self, consumer: str, heartbeat_s: float | None) -> Session:
        """Start a session (or re-say hello for the current one) and keep it alive with heartbeats."""
        token = self.session.token if self.session is not None and self.session.consumer == consumer else None
        session = await self.call(ops.hello(consumer, heartbeat_s, token))
        if not session.resumed:
            self._joins.clear()  # a new session is in no group yet
            self._rejoin_needed = False
        self.session = session
        if self._heartbeats is None:
            self._heartbeats = asyncio.create_task(self._beat(), name="mq-client-heartbeat")
        return session

    async def join(self, request: Request[dict[str, Any]]) -> dict[str, Any]:
        """Send a `join`; remembered so that a reconnect without resume can send it again."""
        reply = await self.call(request)
        self._joins[request.fields["queue"]] = request
        return reply

    async def leave(self, request: Request[None]) -> None:
        """Send a `leave`; its queue's join is forgotten first, so no reconnect joins it again."""
        self._joins.pop(request.fields["queue"], None)
        await self.call(request)

    def abort(self) -> None:
        """Drop the connection at once, with no goodbye, as a network failure would: calls in
        flight fail (`OutcomeUnknown` once sent), and in a cluster subscriptions go to follow
        their queues (push.py). For a broker that stopped answering."""
        if not self._conn.closed:
            self._conn.abort()

    async def close(self) -> None:
        """Stop the background tasks, say goodbye if there is a session, close the connection."""
        if self._closed is None:
            self._closed = ConnectionLost("the client was closed")
        self.pushes.end_all(None)
        async with self._changed:
            self._changed.notify_all()
        tasks = [t for t in (self._supervisor, self._heartbeats) if t is not None and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn = self._conn
        if self.session is not None and not conn.closed:
            # `quit` ends the session now, so its leases go back at once instead of after grace_s.
            with contextlib.suppress(MQError, TimeoutError):
                async with asyncio.timeout(QUIT_TIMEOUT_S):
                    await conn.call(ops.quit())
        await conn.close()

    # -- background tasks -------------------------------------------------------------------

    async def _wait_changed(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed is not None or not self._conn.closed)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while self._closed is None:
            conn, session = self._conn, self.session
            if conn.closed:
                if self._dial is None:
                    return  # the connection is gone for good, and the session with it
                await self._wait_changed()
                continue
            assert session is not None  # this task is started by hello
            due_s = conn.last_send_s + session.heartbeat_s / 2 - loop.time()
            if due_s > 0:
                await asyncio.sleep(due_s)
                continue
            try:
                reply = await conn.send(ops.heartbeat())
            except MQError:
                continue  # the connection ended: the next turn waits for (or gives up on) another
            reply.add_done_callback(_heartbeat_answered)

    async def _supervise(self) -> None:
        try:
            while True:
                await self._conn.lost.wait()
                if self._closed is not None:
                    return
                log.warning("mq connection lost (%s); reconnecting", self._conn.error)
                # Installed before anything else awaits, so that close() closes it, come what may.
                self._conn = await self._reconnect()
                self.reconnects += 1
                async with self._changed:
                    self._changed.notify_all()
                log.info("mq connection re-established (session: %s)", self.session)
        except MQError as exc:
            log.error("mq client gave up reconnecting: %s", exc)
            await self._give_up(exc)
        except Exception as exc:  # a bug: say so, and end the client rather than hang its calls
            log.exception("mq client reconnect failed")
            await self._give_up(ConnectionLost(f"reconnecting failed: {exc!r}"))

    async def _give_up(self, reason: MQError) -> None:
        if self._closed is None:
            self._closed = reason
        self.pushes.end_all(reason)
        async with self._changed:
            self._changed.notify_all()

    async def _reconnect(self) -> Connection:
        """A new connection with the session restored on it; retries until it works."""
        assert self._dial is not None
        delays = self._backoff()
        while True:
            await asyncio.sleep(next(delays))
            try:
                conn = await self._dial()
            except ConnectionLost as exc:
                log.debug("mq reconnect attempt failed: %s", exc)
                continue
            conn.pushes = self.pushes  # before anything is sent: pushes may follow any reply
            try:
                await self._restore(conn)
            except MQError as exc:
                await conn.close()
                if not exc.fatal:
                    raise  # the broker refused, and would again: retrying cannot help
                log.debug("mq connection lost while restoring the session: %s", exc)
                continue
            except BaseException:
                await conn.close()
                raise
            return conn

    async def _restore(self, conn: Connection) -> None:
        session = self.session
        if session is not None:
            # heartbeat_s again: a resumed session otherwise falls back to the broker's default.
            self.session = await conn.call(ops.hello(session.consumer, session.heartbeat_s, session.token))
            if not self.session.resumed:
                self._rejoin_needed = True
            if self._rejoin_needed:
                for join in list(self._joins.values()):
                    await conn.call(join)
                self._rejoin_needed = False
        for request in self.pushes.requests():  # after hello: the new leases belong to the session
            await conn.call(request)


def _heartbeat_answered(reply: asyncio.Future[dict[str, Any]]) -> None:
    # An error here means the connection ended (the supervisor, if any, deals with it); reading
    # it keeps asyncio from reporting an exception that was never retrieved.
    if reply.cancelled() or reply.exception() is not None:
        return
    if reply.result().get("ok") is not True:
        log.warning("mq heartbeat refused: %r", reply.result())
