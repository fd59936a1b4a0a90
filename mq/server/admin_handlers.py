"""Handlers of the administration and introspection commands: settings, purge, delete, peek,
redrive, bindings, EXPLAIN, HISTORY, STATS."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from mq.core import admin

if TYPE_CHECKING:
    from mq.server.app import BrokerServer
    from mq.server.connection import Connection

Result = dict[str, Any]
PARKED: Result = {}  # identity marks "no reply yet": the server answers later


class AdminHandlers:
    def __init__(self, server: BrokerServer) -> None:
        self.server = server
        self.core = server.core
        self.config = server.config

    def admin_table(self) -> dict[type, Callable[[Any, Connection], Result]]:
        return {
            Declare: self.declare, ListQueues: self.list_queues, Stats: self.stats,
            Purge: self.purge, DeleteQueue: self.delete, Peek: self.peek,
            Redrive: self.redrive, Bind: self.bind, Bindings: self.bindings,
            Explain: self.explain, History: self.history,
        }

    def declare(self, cmd: Declare, conn: Connection) -> Result:
        s = admin.declare(self.core, cmd.queue, **cmd.settings())
        return {"queue": cmd.queue, "retention_s": s.retention_s, "lease_s": s.lease_s,
                "max_deliveries": s.max_deliveries, "dead_letter": s.dead_letter_for(cmd.queue),
                "dedup_window_s": s.dedup_window_s}

    def list_queues(self, cmd: ListQueues, conn: Connection) -> Result:
        return {"queues": self.core.queue_names()}

    def purge(self, cmd: Purge, conn: Connection) -> Result:
        return {"purged": admin.purge(self.core, cmd.queue)}

    def delete(self, cmd: DeleteQueue, conn: Connection) -> Result:
        return {"queue": cmd.queue, "deleted": admin.delete(self.core, cmd.queue)}

    def peek(self, cmd: Peek, conn: Connection) -> Result:
        # Like a get, the reply stops early once the bodies fill a frame (at least one shown).
        msgs: list[dict[str, Any]] = []
        size = 0
        for m in admin.peek(self.core, cmd.queue, cmd.count):
            size += len(m["body"]) + 256
            if msgs and size > self.config.max_frame_bytes:
                break
            msgs.append(m)
        return {"msgs": msgs}

    def redrive(self, cmd: Redrive, conn: Connection) -> Result:
        return {"redriven": admin.redrive(self.core, cmd.queue, cmd.count, cmd.to)}

    def bind(self, cmd: Bind, conn: Connection) -> Result:
        change = admin.unbind if cmd.unbind else admin.bind
        changed = change(self.core, cmd.topic, cmd.queue)
        return {"changed": changed, "bindings": {cmd.topic: self.core.topics.queues_of(cmd.topic)}}

    def bindings(self, cmd: Bindings, conn: Connection) -> Result:
        return {"bindings": self.core.topics.bindings(cmd.topic)}

    def explain(self, cmd: Explain, conn: Connection) -> Result:
        out = admin.explain(self.core, cmd.msg_id)
        holder = out.get("holder")
        session = self.server.sessions.by_holder(holder) if holder else None
        if session is not None:
            beat = self.server.sessions.last_beat(session)
            if beat is not None:
                ago = round(self.core.clock() - beat, 3)
                out["holder_last_heartbeat_s_ago"] = ago
                out["why"] += f"; its consumer's last heartbeat was {ago:.1f} s ago"
        return out

    def history(self, cmd: History, conn: Connection) -> Result:
        self.server.answer_later(conn, cmd, self._history(cmd.msg_id))
        return PARKED

    async def _history(self, msg_id: int) -> Result:
        return {"msg_id": msg_id, "events": await self.server.store.history(msg_id)}

    def stats(self, cmd: Stats, conn: Connection) -> Result:
        queues = admin.stats(self.core, cmd.queue)
        sessions = self.server.sessions
        now = self.core.clock()
        for name, queue_stats in queues.items():
            group = admin.group_stats(self.core, name)
            if group is not None:
                for member in group["members"].values():
                    session = sessions.by_holder(member["holder"])
                    beat = sessions.last_beat(session) if session is not None else None
                    member["last_heartbeat_s_ago"] = None if beat is None else round(now - beat, 3)
                queue_stats["group"] = group
        return {"server": self.server.server_stats(), "queues": queues}
