"""What the broker sends without being asked: messages for SUB subscriptions and event lines
for MONITOR streams.

A subscription is a standing GET with credit: the broker leases up to `prefetch` messages to the
connection and leases more as its acks free credit. Pushed messages and events travel like
replies: behind the commit of the changes they report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mq.core.broker import Broker
from mq.core.model import (
    Acked,
    Appended,
    Change,
    Dropped,
    Expired,
    Leased,
    Moved,
    Nacked,
    Released,
)

if TYPE_CHECKING:
    from mq.server.connection import Connection

Emit = Callable[["Connection", bytes], None]


@dataclass(slots=True, eq=False)
class Subscription:
    conn: Connection
    queue: str
    prefetch: int
    lease_s: float | None


class Pushes:
    def __init__(self, core: Broker, max_reply_bytes: int) -> None:
        self.core = core
        self.max_reply_bytes = max_reply_bytes
        self._subs: dict[str, list[Subscription]] = {}
        self._monitors: dict[Connection, str | None] = {}

    # --- who listens --------------------------------------------------------------------------

    def subscribe(self, conn: Connection, queue: str, prefetch: int, lease_s: float | None
                  ) -> None:
        self.unsubscribe(conn, queue)
        self._subs.setdefault(queue, []).append(Subscription(conn, queue, prefetch, lease_s))
        self.core.woken.add(queue)

    def unsubscribe(self, conn: Connection, queue: str) -> None:
        subs = [s for s in self._subs.get(queue, []) if s.conn is not conn]
        if subs:
            self._subs[queue] = subs
        else:
            self._subs.pop(queue, None)

    def monitor(self, conn: Connection, queue: str | None) -> None:
        self._monitors[conn] = queue

    def unmonitor(self, conn: Connection) -> None:
        self._monitors.pop(conn, None)

    def forget(self, conn: Connection) -> None:
        for queue in [q for q, subs in self._subs.items() if any(s.conn is conn for s in subs)]:
            self.unsubscribe(conn, queue)
        self._monitors.pop(conn, None)

    @property
    def subscriptions(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    # --- sending ------------------------------------------------------------------------------

    def fill(self, queues: Iterable[str], emit: Emit) -> None:
        """Lease what the subscriptions on `queues` have credit for, and push it."""
        for queue in queues:
            subs = self._subs.get(queue)
            if not subs:
                continue
            q = self.core.queues.get(queue)
            if q is None:
                continue
            for sub in list(subs):  # in turn, so subscribers share a busy queue
                held = len(q.held_by.get(sub.conn.holder, ()))
                credit = sub.prefetch - held
                if credit <= 0:
                    continue
                msgs = self.core.lease(queue, sub.conn.holder, sub.lease_s, credit,
                                       self.max_reply_bytes)
                if msgs:
                    emit(sub.conn, sub.conn.encode_push_msgs(queue, [m.to_wire() for m in msgs]))
            subs.append(subs.pop(0))

    def events(self, changes: list[Change], emit: Emit) -> None:
        if not self._monitors:
            return
        for change in changes:
            event = self._event(change)
            if event is None:
                continue
            for conn, queue in self._monitors.items():
                if queue is None or queue in (event.get("queue"), event.get("from")):
                    emit(conn, conn.encode_push_event(event))

    def _event(self, c: Change) -> dict[str, Any] | None:
        if isinstance(c, Appended):
            m = c.message
            return {"at": m.published_at, "queue": m.queue, "msg_id": m.id, "event": "published",
                    "key": m.key, "size": len(m.body), "priority": m.priority or None}
        if isinstance(c, (Acked, Dropped)):
            event = "acked" if isinstance(c, Acked) else f"removed ({c.reason})"
            return {"at": c.at, "queue": c.queue, "msg_id": c.msg_id, "event": event}
        if isinstance(c, Moved):
            return {"at": c.at, "queue": c.queue, "msg_id": c.msg_id,
                    "event": "redriven" if c.redrive else "dead-lettered", "reason": c.reason,
                    "from": c.source}
        if not isinstance(c, (Leased, Nacked, Expired, Released)):
            return None
        queue = c.queue or None
        if isinstance(c, Leased):
            return {"at": c.at, "queue": queue, "msg_id": c.msg_id, "event": "leased",
                    "holder": c.holder, "delivery": c.delivery}
        if isinstance(c, Nacked):
            return {"at": c.at, "queue": queue, "msg_id": c.msg_id, "event": "nacked",
                    "error": c.error, "delay_s": round(c.ready_at - c.at, 3) or None}
        if isinstance(c, Expired):
            return {"at": c.at, "queue": queue, "msg_id": c.msg_id, "event": "lease expired"}
        return {"at": c.at, "queue": queue, "msg_id": c.msg_id,
                "event": "released (holder died)", "holder": c.holder}
