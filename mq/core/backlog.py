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
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

from mq.core.model import Message

COMPACT_AFTER = 4_096  # taken entries tolerated at the front before the arrays are cut


class Backlog:
    def __init__(self, ids: Iterable[int] = (), published: Iterable[float] = (),
                 bodies: Iterable[bytes] = ()) -> None:
        """Start with the given messages: ascending `ids`, their publish times (Unix s) and
        bodies, in the same order."""
        self._ids = array("q", ids)
        self._published = array("d", published)
        self._bodies: list[bytes] = list(bodies)
        self._start = 0  # entries before this one were taken

    def __len__(self) -> int:
        return len(self._ids) - self._start

    def append(self, msg_id: int, published_at: float, body: bytes) -> None:
        """A plain message was published (its id above every id here)."""
        self._ids.append(msg_id)
        self._published.append(published_at)
        self._bodies.append(body)

    def extend(self, other: Backlog) -> None:
        """Add the messages of `other`, whose ids all come after those here."""
        self._ids.extend(other._ids[other._start:])
        self._published.extend(other._published[other._start:])
        self._bodies.extend(other._bodies[other._start:])

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
        msg = Message(self._ids[i], queue, self._bodies[i], None, self._published[i])
        self._bodies[i] = b""  # the list no longer keeps the body alive
        self._start = i + 1
        if i >= COMPACT_AFTER and 2 * i >= len(self._ids):
            self._cut()
        return msg

    def _cut(self) -> None:
        start = self._start
        del self._ids[:start], self._published[:start], self._bodies[:start]
        self._start = 0

    def view(self, msg_id: int, queue: str) -> Message | None:
        """A copy of message `msg_id` as a full `Message`, without taking it off (to describe
        it); None when it is not here."""
        i = bisect_left(self._ids, msg_id, self._start)
        if i == len(self._ids) or self._ids[i] != msg_id:
            return None
        return Message(msg_id, queue, self._bodies[i], None, self._published[i])

    def clear(self) -> None:
        self._ids, self._published, self._bodies, self._start = array("q"), array("d"), [], 0
