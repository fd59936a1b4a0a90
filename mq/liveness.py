"""Heartbeat bookkeeping: given "now", who is late and who is dead. Pure: no I/O, no clock.

A session is alive while it beats. It is dead once `misses` of its intervals pass without a
beat, or, after its connection went away, once its grace period passes without a reconnect.
The caller asks `due(now)` at the times `next_deadline()` names.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field


@dataclass(slots=True)
class Beat:
    interval_s: float
    last_beat: float
    disconnected_at: float | None = None
    grace_s: float = 0.0

    def deadline(self, misses: int) -> float:
        # A session whose connection is gone cannot beat: only its grace period counts then.
        if self.disconnected_at is not None:
            return self.disconnected_at + self.grace_s
        return self.last_beat + misses * self.interval_s


@dataclass(slots=True)
class Liveness:
    misses: int = 3  # intervals without a beat before a session is dead
    _beats: dict[str, Beat] = field(default_factory=dict)
    _heap: list[tuple[float, int, str]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def track(self, session: str, interval_s: float, now: float) -> None:
        self._beats[session] = Beat(interval_s, now)
        self._schedule(session)

    def beat(self, session: str, now: float) -> None:
        """A sign of life; a beat from a session that reconnected also ends its grace."""
        b = self._beats.get(session)
        if b is not None:
            b.last_beat = now
            b.disconnected_at = None
            # No reschedule: the old heap entry surfaces early, and `due` re-queues it.

    def disconnected(self, session: str, now: float, grace_s: float) -> None:
        b = self._beats.get(session)
        if b is not None:
            b.disconnected_at, b.grace_s = now, grace_s
            self._schedule(session)

    def forget(self, session: str) -> None:
        self._beats.pop(session, None)

    def last_beat(self, session: str) -> float | None:
        b = self._beats.get(session)
        return None if b is None else b.last_beat

    def due(self, now: float) -> list[str]:
        """Sessions dead at `now`; they are forgotten once reported."""
        dead = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, session = heapq.heappop(heap)
            b = self._beats.get(session)
            if b is None:
                continue
            if b.deadline(self.misses) <= now:
                del self._beats[session]
                dead.append(session)
            else:
                self._schedule(session)
        return dead

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def _schedule(self, session: str) -> None:
        deadline = self._beats[session].deadline(self.misses)
        heapq.heappush(self._heap, (deadline, next(self._order), session))

    def __len__(self) -> int:
        return len(self._beats)
