"""A queue's plain ready messages, kept compactly: the bulk of a backlog costs no objects.

Theory of operation. Most queued messages are plain: published without a key, priority, delay,
TTL or dedup id, and never leased since. Such a message is fully described by its id, its
publish time and its body, so a queue keeps them here instead of as `Message` objects in the
broker's table: ids and publish times in machine arrays (8 bytes each) and bodies in a list,
all in id order (ids are given in publish order). A full `Message` would cost 112 bytes, a
table entry ~50, an int and a float object 56 more; here a message costs its body and 24 bytes.

A plain message leaves this backlog only from its front, and then as a full `Message`
(`take_first`, "materialized"): when it is the next one to lease, the oldest one for retention,
among the first a PEEK shows, or when a consumer group takes over the queue. Everything else
the core does to messages (leases, nacks, moves, timers) happens to full messages only, so the
rest of the core never sees this structure. Taking from the front advances a start index; the
arrays are cut when the taken part is more than half of them, so a message costs O(1)
amortized and the arrays do not grow with what went through the queue.

Bodies beyond the broker's memory budget are not kept: the list holds the body's size (an int)
instead, and the body stays in the log until the server reads it back (`fill`). `BodyMemory`
counts what all the backlogs of a broker keep, against that budget.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from mq.core.model import Message

COMPACT_AFTER = 4_096  # taken entries tolerated at the front before the arrays are cut


@dataclass(slots=True)
class BodyMemory:
    """Bodies the backlogs of one broker keep in memory, and those kept in the log only."""

    budget: int | None = None  # bytes of bodies kept at most (None: no limit)
    bodies: int = 0
    size_bytes: int = 0
    in_log: int = 0  # bodies not in memory, to be read back from the log

    def room_for(self, size: int) -> bool:
        return self.budget is None or self.size_bytes + size <= self.budget

    def kept(self, body: bytes | int, sign: int = 1) -> None:
        """Count `body` (an int: one kept in the log only) in, or out with `sign` -1."""
        if isinstance(body, int):
            self.in_log += sign
        else:
            self.bodies += sign
            self.size_bytes += sign * len(body)


class Backlog:
    def __init__(self, ids: Iterable[int] = (), published: Iterable[float] = (),
                 bodies: Iterable[bytes | int] = (), memory: BodyMemory | None = None) -> None:
        """Start with the given messages: ascending `ids`, their publish times (Unix s) and
        bodies (or their sizes, for bodies in the log only), in the same order. `memory`
        counts the bodies kept (the broker's, shared by its queues)."""
        self._ids = array("q", ids)
        self._published = array("d", published)
        self._bodies: list[bytes | int] = list(bodies)
        self._start = 0  # entries before this one were taken
        self.memory = BodyMemory() if memory is None else memory
        self._count(self._bodies, self.memory)

    @staticmethod
    def _count(bodies: list[bytes | int], memory: BodyMemory) -> None:
        # In C, not body by body: a restart brings a million at once.
        try:
            size = sum(map(len, bodies))  # type: ignore[arg-type]
            in_log = 0
        except TypeError:  # some are in the log only
            kept = [body for body in bodies if not isinstance(body, int)]
            size, in_log = sum(map(len, kept)), len(bodies) - len(kept)
        memory.bodies += len(bodies) - in_log
        memory.size_bytes += size
        memory.in_log += in_log

    def count_in(self, memory: BodyMemory) -> None:
        """Count this backlog's bodies in `memory` (the broker's) from now on."""
        self._count(self._bodies[self._start:], memory)
        self.memory = memory

    def __len__(self) -> int:
        return len(self._ids) - self._start

    def append(self, msg_id: int, published_at: float, body: bytes) -> None:
        """A plain message was published (its id above every id here); its body is kept if
        the memory budget has room for it."""
        self._ids.append(msg_id)
        self._published.append(published_at)
        kept: bytes | int = body if self.memory.room_for(len(body)) else len(body)
        self._bodies.append(kept)
        self.memory.kept(kept)

    def extend(self, other: Backlog) -> None:
        """Add the messages of `other`, whose ids all come after those here."""
        self._ids.extend(other._ids[other._start:])
        self._published.extend(other._published[other._start:])
        bodies = other._bodies[other._start:]
        self._bodies.extend(bodies)
        self._count(bodies, self.memory)

    @property
    def first_id(self) -> int:
        """The id of the first (oldest) message; only when not empty."""
        return self._ids[self._start]

    @property
    def first_published_at(self) -> float:
        """When the first message was published (Unix s); only when not empty."""
        return self._published[self._start]

    def take_first(self, queue: str) -> Message:
        """Take the first message off as a full `Message` of `queue` (a ready one)."""
        i = self._start
        body = self._bodies[i]
        msg = Message(self._ids[i], queue, body, None, self._published[i])
        self.memory.kept(body, -1)
        self._bodies[i] = 0  # the list no longer keeps the body alive
        self._start = i + 1
        if i >= COMPACT_AFTER and 2 * i >= len(self._ids):
            self._cut()
        return msg

    def _cut(self) -> None:
        start = self._start
        del self._ids[:start], self._published[:start], self._bodies[:start]
        self._start = 0

    def _index(self, msg_id: int) -> int | None:
        i = bisect_left(self._ids, msg_id, self._start)
        return i if i < len(self._ids) and self._ids[i] == msg_id else None

    def view(self, msg_id: int, queue: str) -> Message | None:
        """A copy of message `msg_id` as a full `Message`, without taking it off (to describe
        it); None when it is not here."""
        i = self._index(msg_id)
        if i is None:
            return None
        return Message(msg_id, queue, self._bodies[i], None, self._published[i])

    def in_log(self, limit: int, max_bytes: int) -> list[int]:
        """Ids of the first messages whose bodies are in the log only, among the first
        `limit`, stopping before their sizes add up to more than `max_bytes` (one at least)."""
        out: list[int] = []
        size = 0
        bodies, ids = self._bodies, self._ids
        for i in range(self._start, min(len(bodies), self._start + limit)):
            body = bodies[i]
            if isinstance(body, int):
                size += body
                if out and size > max_bytes:
                    break
                out.append(ids[i])
        return out

    def fill(self, msg_id: int, body: bytes) -> bool:
        """Keep `body`, read back from the log, for message `msg_id` (over the budget: it is
        about to be handed out). False when the message is not here or has its body."""
        i = self._index(msg_id)
        if i is None or not isinstance(self._bodies[i], int):
            return False
        self.memory.kept(self._bodies[i], -1)
        self._bodies[i] = body
        self.memory.kept(body)
        return True
