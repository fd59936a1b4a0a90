"""Rounds: how requests become replies that never confirm what is not yet on disk.

Theory of operation. Work happens in rounds, each on the event loop without awaiting: the bytes
of one `data_received`, one tick of the timer, or the end of a slow command. A round executes
its commands (each handler returns an outcome), serves waiting GETs and subscriptions on queues
that gained messages, submits all the core's changes to group commit as one batch, and queues
every reply, push and event of the round behind that batch. When the batch commits, they go
out. So a thousand pipelined publishes cost one transaction, and a reply is sent only after the
commit of the changes it reports.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from mq.auth.permissions import Permission
from mq.codec.commands import (
    Auth,
    Bindings,
    Command,
    Explain,
    Heartbeat,
    Hello,
    Help,
    History,
    ListQueues,
    Monitor,
    Peek,
    Ping,
    Quit,
    Rejected,
    Stats,
    Unmonitor,
)
from mq.codec.replies import Messages, Reply
from mq.errors import Code, MQError
from mq.server.connection import NOT_A_REPLY, Connection, Item, Out
from mq.server.delivery import Answer
from mq.server.handlers import Handlers
from mq.server.outcome import Goodbye, Later, Outcome, Peer, Wait
from mq.server.sessions import Session
from mq.server.state import ServerState
from mq.storage.base import StoreUnavailable
from mq.storage.group_commit import GroupCommit, StoreFailure

log = logging.getLogger("mq.server")

INTERNAL = MQError(Code.INTERNAL, "internal error; see the broker log")
# What may run while the log cannot be written: commands that change nothing in it.
READ_ONLY = frozenset({Ping, Help, Heartbeat, ListQueues, Stats, Peek, Explain, History,
                       Bindings, Monitor, Unmonitor, Hello, Quit, Auth})


def store_error(failure: StoreFailure) -> MQError:
    if failure.lost:
        return MQError(Code.TRYAGAIN, f"this broker lost slots {sorted(failure.lost)[:8]} to "
                       "another broker before it could commit this; read the map again "
                       "(CLUSTER) and retry")
    if failure.full:
        return MQError(Code.STORE_FULL, f"the broker's disk is full ({failure.reason}): "
                       "nothing is stored until space is freed; retry later")
    return MQError(Code.STORE_UNAVAILABLE, f"the broker cannot write its log "
                   f"({failure.reason}); retry later")


class Rounds:
    def __init__(self, state: ServerState, group: GroupCommit,
                 spawn: Callable[[Coroutine[Any, Any, None]], object],
                 after_round: Callable[[], None]) -> None:
        self.state = state
        self.core = state.core
        self.handlers = Handlers(state)
        self.group = group
        self._spawn = spawn  # runs a task owned by the server's task group
        self._after_round = after_round  # the ticker looks at its next deadline
        self.connections: set[Connection] = set()
        self._held: set[Connection] = set()  # connections with replies waiting for a commit
        self._out: dict[Connection, list[Out]] = {}  # this round's replies, in order per conn
        self._woken_while_failing: set[str] = set()
        self.buffered_input = 0  # bytes of unfinished requests, all connections together
        self.monitor_events_dropped = 0
        self.errors: Counter[str] = Counter()  # error replies sent since start, by code
        # Consumer sessions that died, by cause (both shown from the start, at 0).
        self.deaths: Counter[str] = Counter({"missed_heartbeats": 0, "grace_expired": 0})

    @property
    def committed(self) -> int:
        return self.group.committed

    # --- what connections hand over -----------------------------------------------------------

    def opened(self, conn: Connection) -> None:
        self.connections.add(conn)

    def received(self, conn: Connection, items: list[Item]) -> None:
        # A sign of life, unless all it may send is refused: a connection whose user was
        # removed, or whose new AUTH failed, cannot keep its session (and ring share) alive.
        if conn.session is not None and self.state.access.acts_as_user(conn):
            self.state.sessions.beat(conn.session, self.state.monotonic())
        self._count_input(conn)
        conn.backlog.extend(items)
        self._drain_backlog(conn)
        self.finish()

    def writable(self, conn: Connection) -> None:
        self._drain_backlog(conn)
        self.state.delivery.resume(conn)
        self.finish()

    def sent_all(self, conn: Connection) -> None:
        for answer in self.state.delivery.end_waits(conn):
            self._answer(answer)
        self._drain_backlog(conn)
        self.finish()
        conn.close_if_done()

    def _count_input(self, conn: Connection) -> None:
        """Unfinished frames of all clients together are bounded: the client whose frame
        would take them above `max_buffered_input_bytes` is refused and closed."""
        now = conn.decoder_buffered_bytes
        self.buffered_input += now - conn.buffered_input
        conn.buffered_input = now
        limit = self.state.config.max_buffered_input_bytes
        if self.buffered_input > limit and now > 0:
            self._fail(conn, None, MQError(Code.OVERLOADED, f"the broker holds {limit} bytes "
                                           "of unfinished requests (max_buffered_input_bytes); "
                                           "retry later"))

    def closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._held.discard(conn)
        self.buffered_input -= conn.buffered_input
        conn.buffered_input = 0
        self.state.delivery.forget(conn)
        self.state.monitors.forget(conn)
        session = conn.session
        if session is not None and session.conn is conn:  # it may have moved on already
            self.state.sessions.detach(session, self.state.monotonic())
        # Without a session, a closed connection is a client that went away, which is no sign
        # that its messages kill consumers: they go back without counting a death.
        self.core.release_holder(conn.anonymous_holder, died=False)
        self.finish()

    # --- executing ----------------------------------------------------------------------------

    def _may_run(self, conn: Connection) -> bool:
        """Whether the next command of `conn`'s backlog may be executed now."""
        if conn.closing:
            return False
        if (conn.awaiting and conn.speaker.in_order) or conn.authenticating:
            return False  # replies must come in order, or who it is is not known yet
        # Resumed when a read ends, when replies are committed, or when the client reads them.
        return conn.log_reads < self.state.config.max_log_reads and not conn.over_output()

    def _drain_backlog(self, conn: Connection) -> None:
        backlog = conn.backlog
        while backlog and self._may_run(conn):
            self._execute(conn, backlog.popleft())
        if len(backlog) >= self.state.config.max_backlog_commands:
            conn.hold_reading("backlog")
        else:
            conn.release_reading("backlog")

    def _execute(self, conn: Connection, item: Item) -> None:
        if isinstance(item, Rejected):
            self._fail(conn, item.rid, item.error)
            return
        router = self.state.router
        refusal = (self.state.access.refusal(conn, item)
                   or (router.refusal(item) if router is not None else None)
                   or self.refused_while_failing(item))
        if refusal is not None:
            self._fail(conn, item.rid, refusal)
            return
        try:
            outcome = self.handlers.handle(item, conn)
            if isinstance(outcome, Wait):
                if conn.eof:
                    outcome = Messages([])  # it can send nothing more: no point in waiting
                else:
                    self.state.delivery.wait(conn, outcome.get, self.state.monotonic(),
                                             outcome.min_wait_s)
        except MQError as e:
            self._fail(conn, item.rid, e)
            return
        except Exception:
            log.exception("internal error handling %r from %s", type(item).__name__, conn.holder)
            self._fail(conn, item.rid, INTERNAL)
            return
        self._apply(conn, item, outcome)

    def _apply(self, conn: Connection, command: Command, outcome: Outcome) -> None:
        if isinstance(outcome, Reply):
            self._reply(conn, command, outcome)
        elif isinstance(outcome, Goodbye):
            self._reply(conn, command, outcome.reply)
            conn.closing = True
        else:
            conn.awaiting += 1
            if isinstance(outcome, Later):
                conn.log_reads += 1
                self._spawn(self._answer_later(conn, command, outcome.work))

    async def _answer_later(self, conn: Connection, command: Command,
                            work: Coroutine[Any, Any, Reply]) -> None:
        try:
            self._reply(conn, command, await work)
        except MQError as e:
            self._fail(conn, command.rid, e)
        except StoreUnavailable as e:  # a log read while the database is away
            self._fail(conn, command.rid, store_error(StoreFailure.of(e)))
        except Exception:
            log.exception("internal error answering %s", type(command).__name__)
            self._fail(conn, command.rid, INTERNAL)
        conn.log_reads -= 1
        self._answered(conn)
        self.finish()

    def _answer(self, answer: Answer[Peer]) -> None:
        conn = answer.conn
        assert isinstance(conn, Connection)
        self._reply(conn, answer.get, Messages(answer.msgs))
        self._answered(conn)

    def _answered(self, conn: Connection) -> None:
        conn.awaiting -= 1
        if conn.backlog:
            self._drain_backlog(conn)

    def _reply(self, conn: Connection, command: Command, reply: Reply) -> None:
        self._queue(conn, conn.speaker.reply(command, reply), command.rid)

    def _fail(self, conn: Connection, rid: int | None, error: MQError) -> None:
        self.errors[error.code.value] += 1
        self._queue(conn, conn.speaker.error(rid, error), rid)
        if error.fatal:
            conn.closing = True

    def _queue(self, conn: Connection, data: bytes, rid: int | None) -> None:
        conn.queue_reply(data)
        out = self._out.get(conn)
        if out is None:
            self._out[conn] = [(data, rid)]
        else:
            out.append((data, rid))

    # --- the end of a round -------------------------------------------------------------------

    def finish(self) -> None:
        """Serve what woke, commit the round's changes as one batch, queue its replies behind.

        A connection that stopped because its replies were too big for the buffer may go on
        once they are handed to its socket: if the socket took them all, no `resume_writing`
        would come to say so, so it goes on here."""
        sent = self._finish_once()
        while resumable := [conn for conn in sent if conn.backlog and self._may_run(conn)]:
            for conn in resumable:
                self._drain_backlog(conn)
            sent = self._finish_once()

    def _finish_once(self) -> set[Connection]:
        effects = self.core.take_effects()
        changes = effects.changes
        if effects.woken and self.group.failing is not None:
            # A delivery is only made once its lease is on disk: none while it cannot be.
            self._woken_while_failing.update(effects.woken)
        while effects.woken and self.group.failing is None:
            answers, pushes = self.state.delivery.serve(effects.woken)
            for answer in answers:
                self._answer(answer)
            for push in pushes:
                conn = push.conn
                assert isinstance(conn, Connection)
                self._queue(conn, conn.speaker.messages(push.queue, push.msgs), NOT_A_REPLY)
            effects = self.core.take_effects()  # the leases just made, and what they woke
            changes += effects.changes
        self._send_events(changes)
        # A round without changes confirms nothing: its replies wait only for the earlier
        # replies of their own connection, never for another client's commit.
        number = self.group.submit(changes) if changes else 0
        self.state.bodies.request(self.core.take_wanted())  # after the submit: see bodies.py
        by_conn, self._out = self._out, {}
        for conn, replies in by_conn.items():  # in order per connection: one write each
            if conn.send(number, replies):
                self._held.add(conn)
        sent = set(by_conn)
        for conn in sent:
            if conn.done:
                conn.close_if_done()
        self._after_round()
        return sent

    def _send_events(self, changes: list[Any]) -> None:
        for watcher, event in self.state.monitors.events(changes):
            assert isinstance(watcher, Connection)
            if watcher.over_output():
                # A monitor that does not read loses events rather than growing the broker.
                self.monitor_events_dropped += 1
            else:
                self._queue(watcher, watcher.speaker.event(event), NOT_A_REPLY)

    def on_failure(self, first: int, failure: StoreFailure) -> None:
        """Batches from `first` on could not be written: what waits for them is answered with
        an error now (they are retried, so each request may still take effect, as when a
        connection drops before its reply)."""
        error = store_error(failure)
        conns, self._held = list(self._held), set()
        for conn in conns:
            self.errors[error.code.value] += conn.refuse(first, error)

    def end_queue(self, queue: str, error: MQError) -> None:
        """`queue` is no longer served here (clustered: its slot moved): its waiting GETs are
        answered empty, its subscribers get a `moved` push saying where it went."""
        answers, subscribed = self.state.delivery.drop_queue(queue)
        for answer in answers:
            self._answer(answer)
        for conn in subscribed:
            assert isinstance(conn, Connection)
            self._queue(conn, conn.speaker.moved(queue, error), NOT_A_REPLY)

    def on_rejected(self, number: int) -> None:
        """Batch `number` will never be written (the database refused what it holds, see the
        broker log): what waits for it is answered INTERNAL; later batches go on."""
        for conn in list(self._held):
            self.errors[INTERNAL.code.value] += conn.refuse(number, INTERNAL, last=number)
        self.on_commit(number)  # what waited behind it may go on, as after a commit

    def refused_while_failing(self, command: Command) -> MQError | None:
        """The error for `command` while the log cannot be written, None if it may run."""
        failure = self.group.failing
        if failure is None or type(command) in READ_ONLY:
            return None
        return store_error(failure)

    def on_commit(self, number: int) -> None:
        if self._woken_while_failing:  # a commit means the log is writable again
            for queue in self._woken_while_failing:
                self.core.wake(queue)
            self._woken_while_failing.clear()
        conns = list(self._held)
        self._held = {conn for conn in conns if conn.release(number)}
        more = False
        for conn in conns:  # their replies went out: they may do more
            if conn.backlog and self._may_run(conn):
                self._drain_backlog(conn)
                more = True
            more = self.state.delivery.resume(conn) or more
        if more:
            self.finish()

    # --- time and shutdown --------------------------------------------------------------------

    def tick(self) -> None:
        """Apply what is due now: the core's deadlines, dead sessions, GETs that waited out."""
        now = self.state.monotonic()
        self.core.tick()
        for session in self.state.sessions.dead(now):
            self._bury(session)
        for answer in self.state.delivery.expired(now):
            self._answer(answer)
        self.finish()

    def _bury(self, session: Session[Peer]) -> None:
        """A session missed its heartbeats or its grace ran out: all its leases go back now."""
        conn = session.conn
        state = "disconnected" if conn is None else "silent (missed heartbeats)"
        self.deaths["grace_expired" if conn is None else "missed_heartbeats"] += 1
        released, poisoned = self.state.end_session(session, died=True)
        log.warning("consumer %s died, %s: %d leases requeued, %d messages poisoned",
                    session.holder, state, released, poisoned)
        if conn is not None:
            conn.abort()

    def cut_off(self, conn: Connection) -> None:
        """`conn`'s user was removed: its waiting GETs answer now, empty, its subscriptions and
        monitor end, and its session ends (its leases go back, it leaves its groups); what it
        sends next is refused (access.py)."""
        session = conn.session
        if session is not None:
            released, _ = self.state.end_session(session, died=False)
            log.info("consumer %s left, its user was removed: %d leases requeued",
                     session.holder, released)
        for answer in self.state.delivery.end_waits(conn):
            self._answer(answer)
        self.state.delivery.forget(conn)
        self.state.monitors.forget(conn)

    def narrow(self, conn: Connection) -> int:
        """`conn`'s user may do less since a reload: each subscription, group membership and
        monitor it no longer has the permission for ends now, the streams with an `ended`
        push saying why. Returns how many ended."""
        access, ended = self.state.access, 0
        for queue in self.state.delivery.subscribed_to(conn):
            if not access.may(conn, Permission.CONSUME, queue):
                self.state.delivery.unsubscribe(conn, queue)
                self._queue(conn, conn.speaker.ended("sub", queue, _revoked(
                    conn, Permission.CONSUME, queue)), NOT_A_REPLY)
                ended += 1
        session = conn.session
        if session is not None:
            for queue in self.core.groups_of(session.holder):
                if not access.may(conn, Permission.CONSUME, queue):
                    self.core.leave(queue, session.consumer)  # its keys go to the others
                    ended += 1
        watching, queue_watched = self.state.monitors.watched_by(conn)
        if watching and not access.may(conn, Permission.INSPECT, queue_watched):
            self.state.monitors.forget(conn)
            self._queue(conn, conn.speaker.ended("monitor", queue_watched, _revoked(
                conn, Permission.INSPECT, queue_watched)), NOT_A_REPLY)
            ended += 1
        return ended

    def refuse_waiting(self, error: MQError) -> None:
        """Answer every waiting GET with `error` and read no more (the broker shuts down)."""
        for answer in self.state.delivery.cancel_all():
            conn = answer.conn
            assert isinstance(conn, Connection)
            self._fail(conn, answer.get.rid, error)
        for conn in self.connections:
            conn.closing = True
        self.finish()


def _revoked(conn: Connection, permission: Permission, queue: str | None) -> MQError:
    return MQError(Code.FORBIDDEN, f"user {conn.user!r} no longer has the {permission} "
                   f"permission on {'queue ' + repr(queue) if queue else 'every queue'} (the "
                   "users file was reloaded); this stream ended")
