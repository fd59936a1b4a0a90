"""One queue: its messages, which are ready, which wait for a delay, who holds what, and its
timers (timers.py: lease ends, delay ends, the oldest message for retention).

Heaps are lazy: an entry whose message has since changed state is skipped when it surfaces,
which keeps every operation O(log n) without searching the heaps. Ready heaps hold ranks
(priority, then id, packed in one int: see model.rank).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from mq.core.group import Group
from mq.core.model import Message, QueueSettings, State, id_of
from mq.core.timers import STALE_SLACK, Timers


@dataclass(slots=True)
class QueueCounters:
    """Counts since the broker started (protocol.md section 6)."""

    published: int = 0
    acked: int = 0
    expired: int = 0  # leases whose deadline passed
    dropped: int = 0  # removed by retention
    ttl_expired: int = 0  # removed because their own TTL passed
    released: int = 0  # leases given back because their holder died
    poisoned: int = 0  # moved to the dead-letter queue because their holders kept dying
    dead_lettered: int = 0  # moved to the dead-letter queue, for any reason
    deduplicated: int = 0  # publishes answered with an earlier message's id


class Queue:
    def __init__(self, name: str, settings: QueueSettings,
                 holds: dict[str, set[str]] | None = None) -> None:
        """`holds`: the broker's index of holder -> the queues where it holds leases, shared
        by all its queues and kept up to date by each (so a holder that dies is found in the
        queues it holds, not by walking them all)."""
        self.name = name
        self.settings = settings
        self._holds: dict[str, set[str]] = {} if holds is None else holds
        self.messages: dict[int, Message] = {}  # every live message
        self._ready: list[int] = []  # heap of ranks
        self.timers = Timers(self.messages)
        self.held_by: dict[str, set[int]] = {}  # holder -> ids of the messages it leases
        self.inflight: dict[str, dict[str, int]] = {}  # key -> holder -> leases of that key
        self.dedup: dict[str, tuple[int, float]] = {}  # dedup id -> (msg id, remembered until)
        self._dedup_order: list[tuple[float, str]] = []  # heap of (until, dedup id)
        self.group: Group | None = None
        self.leased = 0
        self.delayed = 0
        self.counters = QueueCounters()

    # --- states -------------------------------------------------------------------------------

    def add(self, message: Message) -> None:
        self.messages[message.id] = message
        self.timers.added(message)
        if message.state is State.DELAYED:
            self.delayed += 1
            self.timers.delayed(message, self.delayed)
        else:
            message.state = State.READY
            self._push_ready(message)

    def _push_ready(self, message: Message) -> None:
        ready = self._ready
        heapq.heappush(ready, message.rank)
        if len(ready) > 2 * len(self.messages) + STALE_SLACK:
            # A group delivers from its own heaps, so nothing pops this one meanwhile.
            self._ready = [m.rank for m in self.messages.values() if m.state is State.READY]
            heapq.heapify(self._ready)
        if self.group is not None:
            self.group.push(message)

    def make_ready(self, message: Message) -> None:
        self._leave_state(message)
        message.state = State.READY
        self._push_ready(message)

    def delay(self, message: Message, ready_at: float) -> None:
        self._leave_state(message)
        message.state = State.DELAYED
        message.ready_at = ready_at
        self.delayed += 1
        self.timers.delayed(message, self.delayed)

    def mark_leased(self, message: Message, holder: str) -> None:
        message.state = State.LEASED
        message.holder = holder
        self.leased += 1
        held = self.held_by.get(holder)
        if held is None:
            held = self.held_by[holder] = set()
            self._holds.setdefault(holder, set()).add(self.name)
        held.add(message.id)
        if message.key is not None:
            holders = self.inflight.setdefault(message.key, {})
            holders[holder] = holders.get(holder, 0) + 1

    def rehold(self, message: Message, holder: str) -> None:
        """The same lease, same deadline and receipt, now held by `holder`."""
        self._leave_state(message)
        self.mark_leased(message, holder)

    def lease_until(self, message: Message, deadline: float) -> None:
        """The lease of `message` (marked leased) ends at `deadline`, monotonic s."""
        self.timers.leased(message, deadline, self.leased)

    def remove(self, message: Message) -> None:
        del self.messages[message.id]
        self._leave_state(message)
        self.timers.removed(message.id)

    def _leave_state(self, message: Message) -> None:
        if message.state is State.LEASED:
            self.leased -= 1
            self._unlease(message)
        elif message.state is State.DELAYED:
            self.delayed -= 1

    def _unlease(self, message: Message) -> None:
        holder = message.holder
        assert holder is not None
        message.holder = None
        held = self.held_by[holder]
        held.discard(message.id)
        if not held:
            del self.held_by[holder]
            queues = self._holds[holder]
            queues.discard(self.name)
            if not queues:
                del self._holds[holder]
        if message.key is not None:
            holders = self.inflight[message.key]
            holders[holder] -= 1
            if not holders[holder]:
                del holders[holder]
                if not holders:
                    del self.inflight[message.key]
                if self.group is not None:
                    self.group.key_freed(message.key)  # its owner may take that key now

    # --- choosing what to lease ----------------------------------------------------------------

    def peek_ready(self, holder: str) -> Message | None:
        """The next message `holder` may lease: the best-ranked ready one, within the group's
        rules. (Expired messages are the caller's business: see Broker.lease.)"""
        group = self.group
        if group is not None and group.members:
            return group.pick(group.member_for(holder),
                              lambda key: self._busy_elsewhere(key, holder))
        ready, messages = self._ready, self.messages
        while ready:
            msg = messages.get(id_of(ready[0]))
            if msg is not None and msg.state is State.READY:
                return msg
            heapq.heappop(ready)  # stale entry: acked, dropped or leased since it was pushed
        return None

    def take(self, msg: Message) -> None:
        """Take `msg`, just returned by `peek_ready`, off the heap it tops."""
        group = self.group
        if group is not None and group.members:
            group.take(msg)
        else:
            heapq.heappop(self._ready)

    def ready_in_order(self, limit: int) -> list[Message]:
        """Up to `limit` ready messages in the order they would be leased (ignoring groups).
        Stale entries met on the way are dropped for good, the live ones put back."""
        ready, messages = self._ready, self.messages
        out: list[Message] = []
        seen: set[int] = set()
        while ready and len(out) < limit:
            msg_id = id_of(heapq.heappop(ready))
            msg = messages.get(msg_id)
            if msg is not None and msg.state is State.READY and msg_id not in seen:
                seen.add(msg_id)
                out.append(msg)
        for msg in out:
            heapq.heappush(ready, msg.rank)
        return out

    def _busy_elsewhere(self, key: str, holder: str) -> bool:
        holders = self.inflight.get(key)
        return holders is not None and (len(holders) > 1 or holder not in holders)

    def credit(self, holder: str) -> int | None:
        """How many more messages a group member may lease now; None when unlimited."""
        member = self.group.member_for(holder) if self.group is not None else None
        if member is None:
            return None
        return max(0, member.prefetch - len(self.held_by.get(holder, ())))

    def ensure_group(self, name: str, ring_factory: Any) -> Group:
        if self.group is None:
            self.group = Group(name, ring_factory(), self.messages)
        return self.group

    # --- deduplication ------------------------------------------------------------------------

    def remember(self, dedup_id: str, msg_id: int, until: float) -> None:
        self.dedup[dedup_id] = (msg_id, until)
        heapq.heappush(self._dedup_order, (until, dedup_id))

    def duplicate_of(self, dedup_id: str, now: float) -> int | None:
        entry = self.dedup.get(dedup_id)
        return entry[0] if entry is not None and entry[1] > now else None

    def forget_dedup(self, now: float) -> None:
        order = self._dedup_order
        while order and order[0][0] <= now:
            until, dedup_id = heapq.heappop(order)
            entry = self.dedup.get(dedup_id)
            if entry is not None and entry[1] == until:
                del self.dedup[dedup_id]

    # --- time ---------------------------------------------------------------------------------

    def release_due(self, now: float) -> bool:
        """Move delayed messages whose time has come to ready; True if any moved."""
        ended = self.timers.ended_delays(now)
        for msg in ended:
            self.make_ready(msg)
        return bool(ended)

    def next_wall_due(self) -> float | None:
        """When a delay ends or retention drops a message in this queue (Unix s), or None."""
        return self.timers.next_wall_due(self.settings.retention_s)

    # --- statistics ---------------------------------------------------------------------------

    @property
    def ready(self) -> int:
        return len(self.messages) - self.leased - self.delayed

    def stats(self, now: float) -> dict[str, Any]:
        oldest_ready = 0.0
        for msg in self.messages.values():  # ascending ids: the first ready one is the oldest
            if msg.state is State.READY:
                oldest_ready = max(0.0, now - msg.published_at)
                break
        c, s = self.counters, self.settings
        return {
            "ready": self.ready,
            "delayed": self.delayed,
            "leased": self.leased,
            "published": c.published,
            "acked": c.acked,
            "expired": c.expired,
            "ttl_expired": c.ttl_expired,
            "dropped": c.dropped,
            "released": c.released,
            "poisoned": c.poisoned,
            "dead_lettered": c.dead_lettered,
            "deduplicated": c.deduplicated,
            "oldest_ready_s": round(oldest_ready, 3),
            "retention_s": s.retention_s,
            "lease_s": s.lease_s,
            "max_deliveries": s.max_deliveries,
            "dead_letter": s.dead_letter_for(self.name),
            "dedup_window_s": s.dedup_window_s,
        }
