"""Handlers of the administration and introspection commands: settings, purge, delete, peek,
redrive, bindings, EXPLAIN, HISTORY, STATS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mq.auth.permissions import Permission
from mq.codec.commands import (
    Bind,
    Bindings,
    Declare,
    DeleteQueue,
    Explain,
    History,
    ListQueues,
    Peek,
    Purge,
    Redrive,
    Stats,
)
from mq.codec.replies import (
    Declared,
    Deleted,
    Explanation,
    LogEvents,
    Peeked,
    Purged,
    QueueNames,
    Rebound,
    Redriven,
    Statistics,
    TopicBindings,
)
from mq.errors import Code, MQError
from mq.server.outcome import Later, Outcome, Peer
from mq.server.state import ServerState
from mq.storage.base import MAX_BODY_READ

Handler = Callable[[Any, Peer], Outcome]
PEEK_READS = 3  # reads of bodies from the log one PEEK may wait for


class AdminHandlers:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.core = state.core
        self.config = state.config

    def admin_table(self) -> dict[type, Handler]:
        return {
            Declare: self.declare, ListQueues: self.list_queues, Stats: self.stats,
            Purge: self.purge, DeleteQueue: self.delete, Peek: self.peek,
            Redrive: self.redrive, Bind: self.bind, Bindings: self.bindings,
            Explain: self.explain, History: self.history,
        }

    def declare(self, cmd: Declare, peer: Peer) -> Declared:
        s = self.core.declare(cmd.queue, **cmd.settings())
        return Declared(cmd.queue, s.retention_s, s.lease_s, s.max_deliveries,
                        s.dead_letter_for(cmd.queue), s.dedup_window_s)

    def list_queues(self, cmd: ListQueues, peer: Peer) -> QueueNames:
        return QueueNames(self.core.queue_names())

    def purge(self, cmd: Purge, peer: Peer) -> Purged:
        return Purged(self.core.purge(cmd.queue))

    def delete(self, cmd: DeleteQueue, peer: Peer) -> Deleted:
        return Deleted(cmd.queue, self.core.delete(cmd.queue))

    def peek(self, cmd: Peek, peer: Peer) -> Peeked | Later:
        msgs, in_log = self._peeked(cmd)
        return Later(self._peek_after_reading(cmd, in_log)) if in_log else Peeked(msgs)

    def _peeked(self, cmd: Peek) -> tuple[list[dict[str, Any]], list[int]]:
        """The messages PEEK shows, and the ids of those whose bodies are in the log only."""
        # Like a get, the reply stops early once the bodies fill a frame (at least one shown).
        msgs: list[dict[str, Any]] = []
        size = 0
        for m in self.core.peek(cmd.queue, cmd.count):
            body = m["body"]
            size += (body if isinstance(body, int) else len(body)) + 256
            if msgs and size > self.config.max_frame_bytes:
                break
            msgs.append(m)
        return msgs, [m["msg_id"] for m in msgs if isinstance(m["body"], int)][:MAX_BODY_READ]

    async def _peek_after_reading(self, cmd: Peek, in_log: list[int]) -> Peeked:
        """PEEK once the bodies it met in the log only are read back (the messages may move
        on meanwhile: then it reads those it meets next)."""
        for _ in range(PEEK_READS):
            await self.state.bodies.fill(cmd.queue, in_log)
            msgs, in_log = self._peeked(cmd)
            if not in_log:
                return Peeked(msgs)
        raise MQError(Code.INTERNAL, "the messages to PEEK kept changing while their bodies "
                      "were read back from the log; PEEK again")

    def redrive(self, cmd: Redrive, peer: Peer) -> Redriven:
        if cmd.to is None:  # back where they came from: the guard saw only the dead queue
            for origin in sorted(self._origins(cmd.queue, cmd.count)):
                self.state.access.check(peer, Permission.ADMIN, origin)
        return Redriven(self.core.redrive(cmd.queue, cmd.count, cmd.to))

    def _origins(self, dead_queue: str, count: int) -> set[str]:
        """The queues the next `count` ready messages of `dead_queue` came from (a redrive
        takes the same messages, in the same order)."""
        return {m["dead_from"] for m in self.core.peek(dead_queue, count) if m.get("dead_from")}

    def bind(self, cmd: Bind, peer: Peer) -> Rebound:
        change = self.core.unbind if cmd.unbind else self.core.bind
        changed = change(cmd.topic, cmd.queue)
        bound = self.core.bindings(cmd.topic).get(cmd.topic, [])
        return Rebound(changed, {cmd.topic: bound})

    def bindings(self, cmd: Bindings, peer: Peer) -> TopicBindings:
        return TopicBindings(self.core.bindings(cmd.topic))

    def explain(self, cmd: Explain, peer: Peer) -> Explanation:
        return Explanation(self.state.explain(cmd.msg_id))

    def history(self, cmd: History, peer: Peer) -> Later:
        # Whether the guard checked a queue is known now, in the round the guard ran: by the
        # time the read starts, a message of that id may have been published to any queue.
        held = self.core.queue_of(cmd.msg_id) is not None
        return Later(self._history(cmd.msg_id, peer, held))

    async def _history(self, msg_id: int, peer: Peer, held: bool) -> LogEvents:
        """The log's events of `msg_id`; `held`: the guard checked the queue it is in."""
        events = await self.state.history(msg_id)
        if not held and events and isinstance(queue := events[0].get("queue"), str):
            self.state.access.check(peer, Permission.INSPECT, queue)
        return LogEvents(msg_id, events)

    def stats(self, cmd: Stats, peer: Peer) -> Statistics:
        queues = self.core.stats(cmd.queue)
        for name, queue_stats in queues.items():
            group = self.core.group_stats(name)
            if group is not None:
                for member in group["members"].values():
                    member["last_heartbeat_s_ago"] = self.state.last_heartbeat_s_ago(
                        member["holder"])
                queue_stats["group"] = group
        return Statistics(self.state.figures(), queues)
