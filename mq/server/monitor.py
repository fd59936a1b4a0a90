"""MONITOR streams: a line for every message event, of one queue or of all.

Events travel like replies: behind the commit of the changes they report.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

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

C = TypeVar("C")
Event = dict[str, Any]


class Monitors(Generic[C]):
    def __init__(self) -> None:
        self._watching: dict[C, str | None] = {}  # connection -> its queue, None for all

    def watch(self, conn: C, queue: str | None) -> None:
        self._watching[conn] = queue

    def forget(self, conn: C) -> None:
        self._watching.pop(conn, None)

    def events(self, changes: list[Change]) -> list[tuple[C, Event]]:
        """The events each watching connection is to be sent for `changes`."""
        if not self._watching:
            return []
        out = []
        for change in changes:
            event = event_of(change)
            if event is None:
                continue
            for conn, queue in self._watching.items():
                if queue is None or queue in (event.get("queue"), event.get("from")):
                    out.append((conn, event))
        return out


def event_of(c: Change) -> Event | None:
    """The MONITOR event of one change (protocol.md 2.4); None for changes of no message."""
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
