"""When each queue next needs the ticker, in one heap per clock for the whole broker.

Every timer of the broker (a lease expiring, a delay ending, a message reaching its queue's
retention_s) belongs to a queue, and each queue knows its own earliest one on each clock (leases
on the monotonic clock, delays and retention on the wall clock: see timers.py), and the broker
keeps one `Deadlines` per clock. Each holds one registered time per queue that has timers on
its clock: never later than the queue's true next due time, possibly earlier (a timer that was
cancelled by an ack, say, leaves the registration early rather than paying to find the next
one). So:
- a new timer costs a comparison with the registration, and a push only when it is earlier;
- `next` looks at the top and asks that queue for its true due time: when it agrees, that is
  the answer; when the queue's due time moved later, the entry is replaced and the next one
  looked at. Each replacement pays for an event that happened, so the cost of `next` does not
  grow with the number of queues or with how many messages went through them;
- `pop_due` hands the queues whose registration has come to the tick, which applies what is
  due and registers each one's new due time.
Entries superseded by an earlier registration of the same queue stay in the heap until they
surface and are dropped (recognised because the queue's registration differs from them).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

_NEVER = float("inf")


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []  # (when, queue), lazy
        self._at: dict[str, float] = {}  # queue -> its registered time (an entry in the heap)

    def schedule(self, queue: str, when: float | None) -> None:
        """`queue` has something to do at `when` (s on this heap's clock; None: nothing)."""
        if when is not None and when < self._at.get(queue, _NEVER):
            self._at[queue] = when
            heapq.heappush(self._heap, (when, queue))

    def next(self, due_of: Callable[[str], float | None]) -> float | None:
        """The earliest time any queue has something to do, or None. `due_of(queue)` gives a
        queue's true next due time (None: nothing, or no such queue)."""
        heap, at = self._heap, self._at
        while heap:
            when, queue = heap[0]
            if at.get(queue) != when:
                heapq.heappop(heap)  # superseded by an earlier registration
                continue
            due = due_of(queue)
            if due == when:
                return when
            heapq.heappop(heap)  # its timers moved on: register where they are now
            del at[queue]
            self.schedule(queue, due)
        return None

    def pop_due(self, now: float) -> list[str]:
        """The queues registered at `now` or earlier, in time order; they are unregistered:
        the caller applies what is due and schedules each again."""
        heap, at = self._heap, self._at
        due: list[str] = []
        while heap and heap[0][0] <= now:
            when, queue = heapq.heappop(heap)
            if at.get(queue) == when:
                del at[queue]
                due.append(queue)
        return due
