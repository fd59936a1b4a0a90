"""The broker server: wires the store, group commit, the core, the rounds and the ticker, and
runs them from start to an orderly shutdown. How a request becomes a reply is in rounds.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from mq import __version__
from mq.auth.users import UsersFileError
from mq.cluster.slots import SlotIds
from mq.core.broker import Broker
from mq.core.clock import Clock
from mq.core.model import QueueSettings
from mq.errors import Code, MQError
from mq.http.routes import Routes
from mq.http.server import HttpServer, Limits
from mq.ring import HashRing
from mq.server.access import Access
from mq.server.bodies import BodyReader
from mq.server.config import Config
from mq.server.connection import Connection, Traffic
from mq.server.delivery import Delivery
from mq.server.listener import bind_listener
from mq.server.monitor import Monitors
from mq.server.observe import Observer
from mq.server.outcome import Peer
from mq.server.rounds import Rounds
from mq.server.sessions import Sessions
from mq.server.state import ServerState
from mq.server.tls import TlsListener
from mq.storage.base import Store
from mq.storage.choose import clustered_store, make_store
from mq.storage.group_commit import GroupCommit, StoreFailure
from mq.storage.urls import shown

if TYPE_CHECKING:
    from mq.server.cluster_node import ClusterNode  # imported with etcd's client when clustered

log = logging.getLogger("mq.server")

GC_YOUNG_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)
# A deadline less than this before the planned tick is served by that tick. Wall-clock deadlines
# are turned into monotonic ones afresh each time, from two clock readings, so the same deadline
# comes out a few microseconds earlier or later each time: without the slack, about a third of
# all requests woke the ticker for nothing (an extra loop iteration and round each).
TICK_SLACK_S = 0.001


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
    def __init__(self, config: Config, clock: Clock = time.time,
                 monotonic: Clock = time.monotonic) -> None:
        """`clock` is Unix time, for what the log and clients see (timestamps, delays,
        retention, TTL); `monotonic` runs the deadlines a clock step must not move (leases,
        heartbeats, grace periods, waiting GETs)."""
        self.config = config
        self.monotonic = monotonic
        clustered = config.cluster is not None
        self.ids = SlotIds() if clustered else None  # a clustered broker's ids carry their slot
        body_budget = config.max_body_memory_bytes or None  # Config: never with --cluster
        self.store: Store = (
            clustered_store(config.db_path, config.node or "", config.sync,
                            config.keep_history_s, clock) if clustered
            else make_store(config.db_path, config.sync, config.keep_history_s, clock,
                            max_body_memory_bytes=body_budget))
        self.core = Broker(clock, QueueSettings(config.retention_s, config.lease_s),
                           ring_factory=lambda: HashRing(vnodes=config.ring_vnodes),
                           poison_deaths=config.poison_deaths, monotonic=monotonic,
                           max_body_memory_bytes=body_budget, ids=self.ids,
                           lease_ends=clustered)
        self.sessions: Sessions[Peer] = Sessions(config.heartbeat_misses, config.grace_s,
                                                 adopt=clustered)
        self.delivery: Delivery[Peer] = Delivery(self.core, config.max_frame_bytes,
                                                 config.max_waiting_gets)
        self.access = Access(config, self.core)  # a bad users file stops the start here
        self.group = GroupCommit(self.store, self._on_commit,
                                 max_changes=config.max_commit_changes,
                                 on_failure=self._on_failure,
                                 on_rejected=self._on_rejected)
        self.bodies = BodyReader(self.core, self.store.read_bodies, self.group.wait_committed,
                                 lambda: self.group.last_submitted, self._spawn,
                                 lambda: self.rounds.finish())
        self.state = ServerState(config, self.core, monotonic, self.sessions, self.delivery,
                                 Monitors(), self.store.history, self.figures, self.access,
                                 self.bodies)
        self.rounds = Rounds(self.state, self.group, self._spawn, self._reschedule_tick)
        self.cluster = self._cluster_node() if clustered else None
        self.traffic = Traffic()
        self.http = None if config.http_port is None else self._http_server()
        self._tasks: asyncio.TaskGroup | None = None
        self._tick_wake = asyncio.Event()
        self._planned_tick: float | None = None
        self._stop = asyncio.Event()
        self._started_at = monotonic()
        self._server: asyncio.Server | None = None
        self._listener: asyncio.Task[None] | None = None  # the TLS accept loop
        self.port: int | None = None

    def _cluster_node(self) -> ClusterNode:
        from mq.server.cluster_node import ClusterNode
        from mq.storage.pg_cluster import ClusteredPostgresStore
        assert isinstance(self.store, ClusteredPostgresStore) and self.ids is not None
        node = ClusterNode(self.config, self.store, self.core, self.ids, self.rounds.end_queue,
                           self._after_cluster_change)
        self.state.router = node.router
        self.state.cluster_map = node.cluster_map
        return node

    def _after_cluster_change(self) -> None:
        self.rounds.finish()  # what dropped slots answered goes out; loaded queues are served
        self._reschedule_tick()

    def _http_server(self) -> HttpServer:
        c = self.config
        view = Observer(self.state, self.rounds, self.group, self.store, self.traffic,
                        serving=self._serving)
        return HttpServer(Routes(view), Limits(c.http_max_request_bytes, c.http_max_headers,
                                               c.http_max_connections, c.http_timeout_s))

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self, on_ready: Any = None) -> None:
        """Open the log, serve until `stop()` is called, then shut down in order."""
        listener = bind_listener(self.config.host, self.config.port)  # before the log opens
        gc.disable()  # recovery allocates millions of objects that all live: no point looking
        try:
            recovered = await self.store.open()  # closes itself if it fails
        except BaseException:
            listener.close()
            raise
        loop = asyncio.get_running_loop()
        try:
            self.core.restore(recovered.settings, recovered.messages, recovered.next_id,
                              recovered.bindings, recovered.finished_dedup, recovered.plain)
            tune_gc()
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                commits = tasks.create_task(self.group.run(), name="group-commit")
                ticker = tasks.create_task(self._tick_loop(), name="ticker")
                await self._listen(loop, tasks, listener)
                if self.cluster is not None and self.port is not None:
                    self.cluster.advertise(self.port)
                    tasks.create_task(self.cluster.run(), name="cluster")
                if self.http is not None and self.config.http_port is not None:
                    port = await self.http.start(self.config.http_host, self.config.http_port)
                    log.info("http side port on %s:%d: /metrics /healthz /readyz, the "
                             "dashboard at /", self.config.http_host, port)
                log.info("mq %s listening on %s:%d db=%s messages=%d %s", __version__,
                         self.config.host, self.port, shown(self.config.db_path),
                         len(recovered.messages) + sum(map(len, recovered.plain.values())),
                         self.config.describe())
                if on_ready is not None:
                    on_ready(self)
                await self._stop.wait()
                await self._shutdown(ticker, commits)
        finally:
            if self.http is not None:
                self.http.close()
            listener.close()  # the server closed it already, unless it never started
            await self.store.close()
        log.info("mq stopped")

    async def _listen(self, loop: asyncio.AbstractEventLoop, tasks: asyncio.TaskGroup,
                      sock: socket.socket) -> None:
        def factory() -> Connection:
            return Connection(self.rounds, self.config, self.traffic)

        if self.config.tls:
            listener = TlsListener(self.config, factory, sock)
            self.port = listener.port
            self._listener = tasks.create_task(listener.serve(), name="tls-listener")
        else:
            self._server = await loop.create_server(factory, sock=sock)
            self.port = self._server.sockets[0].getsockname()[1]

    def _serving(self) -> bool:
        """Whether the broker's port takes connections: the plain server, or the TLS accept
        loop (with TLS there is no asyncio.Server)."""
        if self._listener is not None:
            return not self._listener.done()
        return self._server is not None and self._server.is_serving()

    def stop(self) -> None:
        self._stop.set()

    def reload_users(self) -> None:
        """Read the users file again (SIGHUP). Open connections stay; those of a user no longer
        in the file are refused what they send next, and their subscriptions end now; the
        others lose the subscriptions, group memberships and monitor their grants no longer
        cover."""
        if self.config.users_file is None:
            log.warning("SIGHUP: this broker has no users file (--users) to reload")
            return
        try:
            users = self.access.reload()
        except (OSError, UsersFileError) as e:
            log.error("users file not reloaded, the previous one stays in force: %s", e)
            return
        removed = [c for c in self.rounds.connections
                   if c.user is not None and users.get(c.user) is None]
        for conn in removed:
            self.rounds.cut_off(conn)
        narrowed = sum(self.rounds.narrow(c) for c in self.rounds.connections
                       if c.user is not None and c not in removed)
        self.rounds.finish()
        log.info("users file %s reloaded: %d users; %d connections of removed users cut off; "
                 "%d streams and group memberships ended for want of a permission",
                 self.config.users_file, len(users.by_name), len(removed), narrowed)

    async def _shutdown(self, ticker: asyncio.Task[None], commits: asyncio.Task[None]) -> None:
        if self.http is not None:
            self.http.close()
        if self._server is not None:
            self._server.close()  # no new connections
        if self._listener is not None:
            self._listener.cancel()
        self.rounds.refuse_waiting(MQError(Code.SHUTTING_DOWN, "the broker is shutting down; "
                                           "reconnect later"))
        if self.cluster is not None:  # its slots move now, not once its lease runs out
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.shutdown_timeout_s):
                    await self.cluster.leave()
        ticker.cancel()
        self.group.close()
        try:
            await asyncio.wait_for(asyncio.shield(commits), self.config.shutdown_timeout_s)
        except TimeoutError:
            log.error("last commit did not finish within %.1fs", self.config.shutdown_timeout_s)
        for conn in list(self.rounds.connections):
            conn.close()

    def _spawn(self, work: Any) -> None:
        assert self._tasks is not None
        self._tasks.create_task(work)

    def _on_commit(self, number: int) -> None:
        self.rounds.on_commit(number)

    def _on_failure(self, first: int, failure: StoreFailure) -> None:
        if failure.lost and self.cluster is not None:
            for slot in sorted(failure.lost):
                self.cluster.drop(slot)  # fenced out: another broker owns it now
        self.rounds.on_failure(first, failure)
        if failure.lost:
            self.rounds.finish()

    def _on_rejected(self, number: int) -> None:
        self.rounds.on_rejected(number)

    # --- time ---------------------------------------------------------------------------------

    def _next_deadline(self) -> float | None:
        """When the next tick is due, on the monotonic clock; None when nothing waits."""
        mono = self.monotonic()
        waits = [t - mono for t in (self.delivery.next_deadline(), self.sessions.next_deadline())
                 if t is not None]
        core_due_in = self.core.next_due_in()  # the core's deadlines are on two clocks
        if core_due_in is not None:
            waits.append(core_due_in)
        return mono + min(waits) if waits else None

    def _reschedule_tick(self) -> None:
        deadline = self._next_deadline()
        planned = self._planned_tick
        if deadline is not None and (planned is None or deadline < planned - TICK_SLACK_S):
            self._tick_wake.set()

    async def _tick_loop(self) -> None:
        while True:
            # Nothing awaits between the clear and the wait, so no wake-up is lost.
            self._tick_wake.clear()
            deadline = self._next_deadline()
            self._planned_tick = deadline
            timeout = None if deadline is None else max(0.0, deadline - self.monotonic())
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for loses a cancel that comes
            # with the wake-up in the same iteration, and the ticker would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._tick_wake.wait()
            session_due = self.sessions.next_deadline()
            if session_due is not None and session_due <= self.monotonic():
                # After a stall, timers run before sockets are read: let the loop read once,
                # so a heartbeat already waiting in a socket is counted before anyone is buried.
                await asyncio.sleep(0)
            self.rounds.tick()

    # --- statistics ---------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """The server's own figures, as STATS shows them."""
        return {
            "version": __version__,
            "uptime_s": round(self.monotonic() - self._started_at, 3),
            "connections": len(self.rounds.connections),
            "sync": self.config.sync,
            "max_frame_bytes": self.config.max_frame_bytes,
            "commits": self.group.stats.commits,
            "committed_changes": self.group.stats.committed_changes,
            "failed_writes": self.group.stats.failed_writes,
            "waiting_gets": self.delivery.waiters.count,
            "sessions": len(self.sessions),
            "subscriptions": self.delivery.subscriptions,
            "compaction_backlog": self.store.compaction_backlog,
            "monitor_events_dropped": self.rounds.monitor_events_dropped,
            "buffered_input_bytes": self.rounds.buffered_input,
            **self.core.body_memory(),
            "body_reads": self.bodies.reading,
            **self.access.figures(),
            **(self.cluster.figures() if self.cluster is not None else {}),
        }
