"""The order in which a queue's ready messages are leased: highest priority first, then the
lowest id (FIFO by publish order within a level).

One lazy heap of ids per priority level in use. A heap holds the message's own id object, so an
entry costs a list slot and no object of its own (a heap of ranks, priority and id packed in one
int, would allocate an int per message). An entry whose message has since been leased, removed
or moved to another queue is dropped when it surfaces. When the entries come to outnumber the
queue's messages by far, the heaps are rebuilt: a consumer group delivers from its own index
(group.py), so nothing pops these meanwhile, and a queue must not grow with what went through
it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from mq.core.model import Message, State

STALE_SLACK = 1_024  # entries tolerated beyond twice the queue's messages before a rebuild


class ReadyOrder:
    def __init__(self, queue: str, messages: dict[int, Message]) -> None:
        """`messages`: the broker's live messages of every queue, by id (shared)."""
        self._queue = queue
        self._messages = messages
        self._levels: dict[int, list[int]] = {}  # priority -> heap of ids
        self._entries = 0  # in all heaps, stale ones included

    def push(self, msg: Message, messages_now: int) -> bool:
        """`msg` became ready; `messages_now`: how many messages the queue holds. True when
        stale entries have piled up: the caller should `rebuild`."""
        heap = self._levels.get(msg.priority)
        if heap is None:
            heap = self._levels[msg.priority] = []
        heapq.heappush(heap, msg.id)
        self._entries += 1
        return self._entries > 2 * messages_now + STALE_SLACK

    def rebuild(self, ready: Iterable[Message]) -> None:
        """Start again from the queue's ready messages (in id order)."""
        self._levels, self._entries = {}, 0
        for msg in ready:
            self._levels.setdefault(msg.priority, []).append(msg.id)  # ascending ids: a heap
            self._entries += 1

    def load(self, levels: dict[int, list[int]]) -> None:
        """Start from `levels` (priority -> ids, each list a heap), into an empty order."""
        self._levels = levels
        self._entries = sum(len(ids) for ids in levels.values())

    def top(self) -> Message | None:
        """The ready message to lease next, or None."""
        levels = self._levels
        while levels:
            priority = max(levels)
            msg = self._first_live(levels[priority])
            if msg is not None:
                return msg
            del levels[priority]
        return None

    def oldest(self) -> Message | None:
        """The ready message published first (the lowest id of all levels), or None. Drops the
        stale entries it meets, as `top` does."""
        tops = [m for heap in self._levels.values() if (m := self._first_live(heap)) is not None]
        return min(tops, key=lambda m: m.id) if tops else None

    def pop(self, msg: Message) -> None:
        """Take `msg`, just returned by `top`, off its heap."""
        heapq.heappop(self._levels[msg.priority])
        self._entries -= 1

    def first(self, limit: int) -> list[Message]:
        """Up to `limit` ready messages in the order they would be leased. Stale entries met
        on the way are dropped for good, the live ones put back."""
        out: list[Message] = []
        for priority in sorted(self._levels, reverse=True):
            heap = self._levels[priority]
            taken: list[int] = []
            while heap and len(out) < limit:
                msg = self._first_live(heap)
                if msg is None:
                    break
                heapq.heappop(heap)
                self._entries -= 1
                if not taken or taken[-1] != msg.id:  # an id pushed twice comes out twice
                    taken.append(msg.id)
                    out.append(msg)
            for msg_id in taken:
                heapq.heappush(heap, msg_id)
            self._entries += len(taken)
            if len(out) >= limit:
                break
        return out

    def _first_live(self, heap: list[int]) -> Message | None:
        messages, queue = self._messages, self._queue
        while heap:
            msg = messages.get(heap[0])
            if msg is not None and msg.state is State.READY and msg.queue == queue:
                return msg
            heapq.heappop(heap)
            self._entries -= 1
        return None
