"""One queue: its messages in id order, which are ready, which wait for a delay, and its counts.

Heaps are lazy: an entry whose message has since changed state is skipped when it surfaces,
which keeps every operation O(log n) without searching the heaps.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from mq.core.model import Message, QueueSettings, State


@dataclass(slots=True)
class QueueCounters:
    """Counts since the broker started (protocol.md section 6)."""

    published: int = 0
    acked: int = 0
    expired: int = 0
    dropped: int = 0


class Queue:
    def __init__(self, name: str, settings: QueueSettings) -> None:
        self.name = name
        self.settings = settings
        self.messages: dict[int, Message] = {}  # every live message; ids ascend
        self._ready: list[int] = []  # heap of ids
        self._delayed: list[tuple[float, int]] = []  # heap of (ready_at, id)
        self.leased = 0
        self.delayed = 0
        self.counters = QueueCounters()

    def add(self, message: Message) -> None:
        self.messages[message.id] = message
        if message.state is State.DELAYED:
            self.delayed += 1
            heapq.heappush(self._delayed, (message.ready_at, message.id))
        else:
            heapq.heappush(self._ready, message.id)

    def peek_ready(self) -> Message | None:
        """The ready message with the lowest id, left in place."""
        ready, messages = self._ready, self.messages
        while ready:
            msg = messages.get(ready[0])
            if msg is not None and msg.state is State.READY:
                return msg
            heapq.heappop(ready)  # stale entry: acked, dropped or leased since it was pushed
        return None

    def pop_ready(self) -> Message | None:
        msg = self.peek_ready()
        if msg is not None:
            heapq.heappop(self._ready)
        return msg

    def make_ready(self, message: Message) -> None:
        if message.state is State.LEASED:
            self.leased -= 1
        elif message.state is State.DELAYED:
            self.delayed -= 1
        message.state = State.READY
        message.holder = None
        heapq.heappush(self._ready, message.id)

    def delay(self, message: Message, ready_at: float) -> None:
        self.leased -= 1
        message.state = State.DELAYED
        message.holder = None
        message.ready_at = ready_at
        self.delayed += 1
        heapq.heappush(self._delayed, (ready_at, message.id))

    def mark_leased(self, message: Message) -> None:
        message.state = State.LEASED
        self.leased += 1

    def remove(self, message: Message) -> None:
        del self.messages[message.id]
        if message.state is State.LEASED:
            self.leased -= 1
        elif message.state is State.DELAYED:
            self.delayed -= 1

    def release_due(self, now: float) -> bool:
        """Move delayed messages whose time has come to ready; True if any moved."""
        moved = False
        delayed, messages = self._delayed, self.messages
        while delayed and delayed[0][0] <= now:
            ready_at, msg_id = heapq.heappop(delayed)
            msg = messages.get(msg_id)
            if msg is not None and msg.state is State.DELAYED and msg.ready_at == ready_at:
                self.make_ready(msg)
                moved = True
        return moved

    def next_release(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def oldest(self) -> Message | None:
        return next(iter(self.messages.values()), None)

    @property
    def ready(self) -> int:
        return len(self.messages) - self.leased - self.delayed

    def stats(self, now: float) -> dict[str, Any]:
        oldest_ready = 0.0
        for msg in self.messages.values():  # ascending ids: the first ready one is the oldest
            if msg.state is State.READY:
                oldest_ready = max(0.0, now - msg.published_at)
                break
        c = self.counters
        return {
            "ready": self.ready,
            "delayed": self.delayed,
            "leased": self.leased,
            "published": c.published,
            "acked": c.acked,
            "expired": c.expired,
            "dropped": c.dropped,
            "oldest_ready_s": round(oldest_ready, 3),
            "retention_s": self.settings.retention_s,
            "lease_s": self.settings.lease_s,
        }
