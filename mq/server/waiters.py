"""Long-poll GETs waiting for a message: first come, first served per queue, each with a deadline.

Pure bookkeeping: the server decides when to look (a queue gained messages, time passed).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from mq.codec.commands import Get

C = TypeVar("C")
COMPACT_AFTER = 1_000  # answered waiters kept before the structures are rebuilt without them


@dataclass(eq=False, slots=True)
class Waiter(Generic[C]):
    conn: C
    command: Get
    deadline: float
    done: bool = False


@dataclass(slots=True)
class Waiters(Generic[C]):
    _by_queue: dict[str, deque[Waiter[C]]] = field(default_factory=dict)
    _deadlines: list[tuple[float, int, Waiter[C]]] = field(default_factory=list)
    _order: Iterator[int] = field(default_factory=itertools.count)
    count: int = 0
    _finished: int = 0  # answered waiters still referenced by the structures above

    def park(self, waiter: Waiter[C]) -> None:
        self._by_queue.setdefault(waiter.command.queue, deque()).append(waiter)
        heapq.heappush(self._deadlines, (waiter.deadline, next(self._order), waiter))
        self.count += 1

    @property
    def retained(self) -> int:
        """Waiters still referenced, answered or not (what they cost in memory)."""
        return len(self._deadlines)

    def live(self, queue: str) -> list[Waiter[C]]:
        """The live waiters on `queue`, longest waiting first (answered ones are dropped)."""
        line = self._by_queue.get(queue)
        if not line:
            return []
        alive = [w for w in line if not w.done]
        if alive:
            self._by_queue[queue] = deque(alive)
        else:
            del self._by_queue[queue]
        return alive

    def finish(self, waiter: Waiter[C]) -> None:
        if not waiter.done:
            waiter.done = True
            self.count -= 1
            self._finished += 1
            if self._finished > COMPACT_AFTER and self._finished > self.count:
                self._compact()

    def _compact(self) -> None:
        # Answered waiters are dropped lazily, when their queue is looked at or their deadline
        # comes. Waiters of connections that closed may never be looked at again, and each
        # keeps its whole connection alive: once they outnumber the live ones, drop them all.
        self._by_queue = {q: deque(w for w in line if not w.done)
                          for q, line in self._by_queue.items() if any(not w.done for w in line)}
        self._deadlines = [entry for entry in self._deadlines if not entry[2].done]
        heapq.heapify(self._deadlines)
        self._finished = 0

    def expired(self, now: float) -> list[Waiter[C]]:
        out: list[Waiter[C]] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            waiter = heapq.heappop(self._deadlines)[2]
            if not waiter.done:
                self.finish(waiter)
                out.append(waiter)
        return out

    def next_deadline(self) -> float | None:
        while self._deadlines and self._deadlines[0][2].done:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None
