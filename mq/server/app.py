"""The broker server: wires sockets, the core, group commit, long-poll waiters and the ticker.

Theory of operation. Work happens in rounds, each on the event loop without awaiting: the bytes
of one `data_received`, or one tick of the timer. A round executes its commands against the core,
serves waiting GETs on queues that gained messages, submits all the core's changes to group commit
as part of one batch, and queues every reply of the round behind that batch. When the batch
commits, the replies go out. So a reply never confirms what is not yet on disk, and a thousand
pipelined publishes cost one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Coroutine
from typing import Any

from mq import __version__
from mq.codec.commands import Command, Get, Rejected
from mq.codec.sniff import Mode
from mq.core.broker import Broker
from mq.core.clock import Clock
from mq.core.model import Message, QueueSettings
from mq.errors import Code, MQError
from mq.ring import HashRing
from mq.server.config import Config
from mq.server.connection import Connection
from mq.server.handlers import PARKED, Handlers
from mq.server.pushes import Pushes
from mq.server.sessions import Session, Sessions
from mq.server.waiters import Waiter, Waiters
from mq.storage.group_commit import GroupCommit
from mq.storage.sqlite import SQLiteStore

log = logging.getLogger("mq.server")

GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """The broker keeps many long-lived objects (messages, connections). The cyclic collector
    would walk them all again and again, pausing the loop for tens of milliseconds with a big
    backlog: move what exists now out of its sight, and collect the young generation less
    often (each message allocates several objects)."""
    gc.freeze()  # no collect first: a full pass over a big backlog costs a second at start
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    gc.enable()


class BrokerServer:
    def __init__(self, config: Config, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.store = SQLiteStore(config.db_path, config.sync, config.keep_history_s)
        self.core = Broker(clock, QueueSettings(config.retention_s, config.lease_s),
                           ring_factory=lambda: HashRing(vnodes=config.ring_vnodes),
                           poison_deaths=config.poison_deaths)
        self.group = GroupCommit(self.store, self._on_commit)
        self.waiters: Waiters[Connection] = Waiters()
        self.sessions: Sessions[Connection] = Sessions(config.heartbeat_misses, config.grace_s)
        self.pushes = Pushes(self.core, config.max_frame_bytes)
        self.handlers = Handlers(self)
        self._tasks: asyncio.TaskGroup | None = None
        self.connections: set[Connection] = set()
        self._held: set[Connection] = set()  # connections with replies waiting for a commit
        self._round: list[tuple[Connection, bytes]] = []
        self._tick_wake = asyncio.Event()
        self._planned_tick: float | None = None
        self._stop = asyncio.Event()
        self._started_at = clock()
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    @property
    def committed(self) -> int:
        return self.group.committed

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self, on_ready: Any = None) -> None:
        """Open the log, serve until `stop()` is called, then shut down in order."""
        gc.disable()  # recovery allocates millions of objects that all live: no point looking
        recovered = await self.store.open()  # closes itself if it fails
        loop = asyncio.get_running_loop()
        try:
            self.core.restore(recovered.settings, recovered.messages, recovered.next_id,
                              recovered.bindings, recovered.finished_dedup)
            tune_gc()
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                commits = tasks.create_task(self.group.run(), name="group-commit")
                ticker = tasks.create_task(self._tick_loop(), name="ticker")
                self._server = await loop.create_server(
                    lambda: Connection(self), self.config.host, self.config.port)
                self.port = self._server.sockets[0].getsockname()[1]
                log.info("mq %s listening on %s:%d db=%s messages=%d %s", __version__,
                         self.config.host, self.port, self.config.db_path,
                         len(recovered.messages), self.config.describe())
                if on_ready is not None:
                    on_ready(self)
                await self._stop.wait()
                await self._shutdown(ticker, commits)
        finally:
            await self.store.close()
        log.info("mq stopped")

    def stop(self) -> None:
        self._stop.set()

    async def _shutdown(self, ticker: asyncio.Task[None], commits: asyncio.Task[None]) -> None:
        assert self._server is not None
        self._server.close()  # no new connections
        ticker.cancel()
        bye = MQError(Code.SHUTTING_DOWN, "the broker is shutting down; reconnect later")
        for conn in list(self.connections):
            for waiter in conn.waiters:
                if not waiter.done:
                    self.waiters.finish(waiter)
                    self._reply_error(conn, waiter.command.rid, bye)
            conn.closing = True
        self._finish_round()
        self.group.close()
        try:
            await asyncio.wait_for(asyncio.shield(commits), self.config.shutdown_timeout_s)
        except TimeoutError:
            log.error("last commit did not finish within %.1fs", self.config.shutdown_timeout_s)
        for conn in list(self.connections):
            conn.close()

    # --- connections --------------------------------------------------------------------------

    def connection_opened(self, conn: Connection) -> None:
        self.connections.add(conn)

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._held.discard(conn)
        for waiter in conn.waiters:
            self.waiters.finish(waiter)
        self.pushes.forget(conn)
        session = conn.session
        if session is not None and session.conn is conn:  # it may have moved on already
            self.sessions.detach(session, self.clock())
        # Without a session, a closed connection is a client that went away, which is no sign
        # that its messages kill consumers: they go back without counting a death.
        self.core.release_holder(conn.anonymous_holder, died=False)
        self._finish_round()

    # --- rounds -------------------------------------------------------------------------------

    def run_round(self, conn: Connection, items: list[Command | Rejected]) -> None:
        if conn.session is not None:
            self.sessions.beat(conn.session, self.clock())  # any request is a sign of life
        if conn.mode is Mode.TEXT:
            conn.backlog.extend(items)
            self._drain_backlog(conn)
        else:
            for item in items:
                if conn.closing:
                    break
                self._execute(conn, item)
        self._finish_round()

    def _drain_backlog(self, conn: Connection) -> None:
        while conn.backlog and not conn.blocked and not conn.closing:
            self._execute(conn, conn.backlog.popleft())
        # Lines typed behind a waiting GET are parsed but held: bound them.
        if len(conn.backlog) >= self.config.max_text_backlog_lines:
            conn.hold_reading("backlog")
        else:
            conn.release_reading("backlog")

    def _execute(self, conn: Connection, item: Command | Rejected) -> None:
        if isinstance(item, Rejected):
            self._reply_error(conn, item.rid, item.error)
            return
        try:
            result = self.handlers.handle(item, conn)
        except MQError as e:
            self._reply_error(conn, item.rid, e)
            return
        except Exception:
            log.exception("internal error handling %r from %s", type(item).__name__, conn.holder)
            self._reply_error(conn, item.rid, MQError(Code.INTERNAL, "internal error; see the "
                                                      "broker log"))
            return
        if result is not PARKED:
            self._round.append((conn, conn.encode_result(item, result)))
            conn.quit_after(item)

    def _emit(self, conn: Connection, data: bytes) -> None:
        self._round.append((conn, data))

    def answer_later(self, conn: Connection, command: Command,
                     work: Coroutine[Any, Any, dict[str, Any]]) -> None:
        """Answer `command` when `work` (say, a read of the log) is done; a text connection
        holds the lines typed after it until then."""
        assert self._tasks is not None
        if conn.mode is Mode.TEXT:
            conn.blocked = True
        self._tasks.create_task(self._answer(conn, command, work))

    async def _answer(self, conn: Connection, command: Command,
                      work: Coroutine[Any, Any, dict[str, Any]]) -> None:
        try:
            self._round.append((conn, conn.encode_result(command, await work)))
        except MQError as e:
            self._reply_error(conn, command.rid, e)
        except Exception:
            log.exception("internal error answering %s", type(command).__name__)
            self._reply_error(conn, command.rid, MQError(Code.INTERNAL, "internal error; see "
                                                         "the broker log"))
        if conn.blocked:
            conn.blocked = False
            self._drain_backlog(conn)
        self._finish_round()

    def _reply_error(self, conn: Connection, rid: int | None, error: MQError) -> None:
        self._round.append((conn, conn.encode_failure(rid, error)))

    def _finish_round(self) -> None:
        woken = self.core.take_woken()
        while woken:
            self._serve_waiters(woken)
            self.pushes.fill(woken, self._emit)
            woken = self.core.take_woken()
        changes = self.core.take_changes()
        self.pushes.events(changes, self._emit)
        number = self.group.submit(changes)
        replies, self._round = self._round, []
        for conn, data in replies:
            if conn.send(number, data):
                self._held.add(conn)
        for conn in {conn for conn, _ in replies if conn.closing}:
            conn.close_if_done()
        self._reschedule_tick()

    def _on_commit(self, number: int) -> None:
        self._held = {conn for conn in self._held if conn.release(number)}

    # --- long-poll GET ------------------------------------------------------------------------

    def park(self, conn: Connection, command: Get) -> None:
        live = [w for w in conn.waiters if not w.done]
        limit = self.config.max_waiting_gets
        if len(live) >= limit:
            raise MQError(Code.BAD_REQUEST, f"{len(live)} GETs of this connection are waiting "
                          f"already (max_waiting_gets={limit}); wait for their replies first")
        waiter = Waiter(conn, command, self.clock() + command.wait_s)
        self.waiters.park(waiter)
        conn.waiters = [*live, waiter]
        if conn.mode is Mode.TEXT:
            conn.blocked = True

    def _serve_waiters(self, queues: set[str]) -> None:
        # Longest waiting first; with a consumer group a waiter may be unable to take what
        # another can, so each one is asked in turn.
        for queue in queues:
            for waiter in self.waiters.live(queue):
                q = self.core.queues.get(queue)
                if q is None or q.ready == 0:
                    break
                cmd = waiter.command
                msgs = self.core.lease(queue, waiter.conn.holder, cmd.lease_s, cmd.max,
                                       self.config.max_frame_bytes)
                if msgs:
                    self._answer_waiter(waiter, msgs)

    def _answer_waiter(self, waiter: Waiter[Connection], msgs: list[Message]) -> None:
        self.waiters.finish(waiter)
        conn = waiter.conn
        self._round.append((conn, conn.encode_result(waiter.command,
                                                     {"msgs": [m.to_wire() for m in msgs]})))
        if conn.blocked:
            conn.blocked = False
            self._drain_backlog(conn)

    # --- time ---------------------------------------------------------------------------------

    def _next_deadline(self) -> float | None:
        times = [t for t in (self.core.next_deadline(), self.waiters.next_deadline(),
                             self.sessions.next_deadline()) if t is not None]
        return min(times, default=None)

    def _reschedule_tick(self) -> None:
        deadline = self._next_deadline()
        if deadline is not None and (self._planned_tick is None or deadline < self._planned_tick):
            self._tick_wake.set()

    async def _tick_loop(self) -> None:
        while True:
            # Nothing awaits between the clear and the wait, so no wake-up is lost.
            self._tick_wake.clear()
            deadline = self._next_deadline()
            self._planned_tick = deadline
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tick_wake.wait(), timeout)
            session_due = self.sessions.next_deadline()
            if session_due is not None and session_due <= self.clock():
                # After a stall, timers run before sockets are read: let the loop read once,
                # so a heartbeat already waiting in a socket is counted before anyone is buried.
                await asyncio.sleep(0)
            now = self.clock()
            self.core.tick()
            for session in self.sessions.dead(now):
                self._bury(session)
            for waiter in self.waiters.expired(now):
                self._answer_waiter(waiter, [])
            self._finish_round()

    def _bury(self, session: Session[Connection]) -> None:
        """A session missed its heartbeats or its grace ran out: all its leases go back now."""
        released, poisoned = self.core.release_holder(session.holder)
        state = "disconnected" if session.conn is None else "silent (missed heartbeats)"
        log.warning("consumer %s died, %s: %d leases requeued, %d messages poisoned",
                    session.holder, state, released, poisoned)
        if session.conn is not None:
            session.conn.session = None
            session.conn.abort()

    # --- statistics ---------------------------------------------------------------------------

    def server_stats(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "uptime_s": round(self.clock() - self._started_at, 3),
            "connections": len(self.connections),
            "sync": self.config.sync,
            "max_frame_bytes": self.config.max_frame_bytes,
            "commits": self.group.stats.commits,
            "committed_changes": self.group.stats.committed_changes,
            "waiting_gets": self.waiters.count,
            "sessions": len(self.sessions),
            "subscriptions": self.pushes.subscriptions,
            "compaction_backlog": self.store.compaction_backlog,
        }
