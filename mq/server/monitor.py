"""MONITOR streams: a line for every message event, of one queue or of all.

Events travel like replies: behind the commit of the changes they report.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from mq.core.events import (
    Acked,
    Appended,
    Change,
    Expired,
    Leased,
    Left,
    Moved,
    Nacked,
    Released,
    Removed,
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

    def watched_by(self, conn: C) -> tuple[bool, str | None]:
        """Whether `conn` watches, and which queue (None: all)."""
        return conn in self._watching, self._watching.get(conn)

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
    """The MONITOR event of one change (protocol.md 2.3), named by its `Event`; None for
    changes of no message."""
    if isinstance(c, Appended):
        m = c.message
        return {"at": m.published_at, "queue": m.queue, "msg_id": m.id, "event": c.kind.wire,
                "key": m.key, "size": m.body if isinstance(m.body, int) else len(m.body),
                "priority": m.priority or None, "headers": m.headers}
    if isinstance(c, Moved):
        return {"at": c.at, "queue": c.queue, "msg_id": c.msg_id, "event": c.kind.wire,
                "reason": c.reason, "from": c.source}
    if not isinstance(c, (Leased, Acked, Nacked, Expired, Released, Left, Removed)):
        return None
    event: Event = {"at": c.at, "queue": c.queue or None, "msg_id": c.msg_id,
                    "event": c.kind.wire}
    if isinstance(c, Leased):
        event.update(holder=c.holder, delivery=c.delivery)
    elif isinstance(c, Nacked):
        event.update(error=c.error, delay_s=round(c.ready_at - c.at, 3) or None)
    elif isinstance(c, (Released, Left)):
        event.update(holder=c.holder)
    elif isinstance(c, Removed):
        event.update(reason=c.reason)
    return event
