"""One queue: which of its messages are ready (ready.py), which wait for a delay, who holds
what, and its timers (timers.py: lease ends, delay ends, the oldest message for retention).

The messages themselves are in one table for the whole broker (`messages`, by id): a second
table per queue would cost every message another dict entry. Plain ready messages, most of a
backlog, are not in the table but in the queue's compact `Backlog` (backlog.py) until they are
needed as full messages: `_materialize` moves the first one into the table, and everything that
needs the queue's messages as objects (`live`, `peek_ready`, `oldest`, `ready_in_order`) does
so first, so the rest of the core only ever sees full messages. A message is in this queue when
its `queue` is this queue's name, which every structure here checks before it trusts an entry.
Heaps are lazy: an entry whose message has since changed state or queue is skipped when it
surfaces, which keeps every operation O(log n) without searching the heaps.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mq.core.backlog import Backlog, BodyMemory
from mq.core.group import Group
from mq.core.model import Message, QueueSettings, State
from mq.core.ready import ReadyOrder
from mq.core.timers import Timers


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
    nacked: int = 0  # leases given back by their holder with a nack
    redelivered: int = 0  # leases of messages that had been leased before

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}


COUNTER_NAMES = tuple(QueueCounters.__dataclass_fields__)


class Queue:
    def __init__(self, name: str, settings: QueueSettings, messages: dict[int, Message],
                 holds: dict[str, set[str]], memory: BodyMemory | None = None) -> None:
        """`messages`: the broker's table of every live message, by id. `holds`: its index of
        holder -> the queues where it holds leases. Both are shared by all its queues and kept
        up to date by each (so a holder that dies is found in the queues it holds, not by
        walking them all). `memory`: the broker's count of the bodies its backlogs keep."""
        self.name = name
        self.settings = settings
        self.messages = messages
        self._holds = holds
        self.count = 0  # messages in this queue, those in the backlog included
        self.backlog = Backlog(memory=memory)  # plain ready messages, not (yet) in the table
        self._unpushed: Message | None = None  # from the backlog by peek_ready, not in _ready
        self._ready = ReadyOrder(name, messages)
        self.timers = Timers(name, messages)
        self.held_by: dict[str, set[int]] = {}  # holder -> ids of the messages it leases
        self.holder_of: dict[int, str] = {}  # id of a leased message -> who holds it
        self.inflight: dict[str, dict[str, int]] = {}  # key -> holder -> leases of that key
        self.dedup: dict[str, tuple[int, float]] = {}  # dedup id -> (msg id, remembered until)
        self._dedup_order: list[tuple[float, str]] = []  # heap of (until, dedup id)
        self.group: Group | None = None
        self.leased = 0
        self.delayed = 0
        self.counters = QueueCounters()

    # --- states -------------------------------------------------------------------------------

    def add(self, message: Message) -> None:
        """`message` (ready or delayed) joins this queue: published, or moved in."""
        message.queue = self.name  # one name object for all its messages
        self.messages[message.id] = message
        self.count += 1
        self.timers.added(message, self.count)
        if message.state is State.DELAYED:
            self.delayed += 1
            self.timers.delayed(message, self.delayed)
        else:
            message.state = State.READY
            self._push_ready(message)

    @property
    def accepts_plain(self) -> bool:
        """Whether a plain message may wait in the backlog: not while a consumer group delivers
        (the group indexes every ready message as a full one)."""
        return self.group is None or not self.group.members

    def add_plain(self, msg_id: int, published_at: float, body: bytes) -> None:
        """A plain message (no key, priority, delay, TTL or dedup id) was published, ready."""
        self.backlog.append(msg_id, published_at, body)
        self.count += 1

    def load_plain(self, backlog: Backlog) -> None:
        """The queue's plain messages at a restart, after `load` (their ids may interleave with
        those of the full messages: the backlog and the table are kept apart)."""
        if self.backlog:
            self.backlog.extend(backlog)
        else:
            backlog.count_in(self.backlog.memory)
            self.backlog = backlog  # a million entries are not copied
        self.count += len(backlog)

    def _materialize(self, push: bool = True) -> Message:
        """Move the backlog's first message into the table as a full ready message, and into
        the ready order unless `push` is False (peek_ready: it is about to be taken)."""
        msg = self.backlog.take_first(self.name)
        self.messages[msg.id] = msg
        self.timers.added(msg, self.count)
        if push and self._ready.push(msg, self.count):
            self._ready.rebuild(m for m in self.timers.live() if m.state is State.READY)
        return msg

    def _settle(self) -> None:
        """A message peek_ready took from the backlog but nobody took joins the ready order."""
        msg, self._unpushed = self._unpushed, None
        if msg is not None and msg.state is State.READY and self._ready.push(msg, self.count):
            self._ready.rebuild(m for m in self.timers.live() if m.state is State.READY)

    def find_plain(self, msg_id: int) -> Message | None:
        """A copy of plain message `msg_id` of the backlog, to describe it; None if not there."""
        return self.backlog.view(msg_id, self.name)

    def load(self, messages: list[Message]) -> None:
        """The queue's messages at a restart (ready or delayed, in id order), into an empty
        queue: what `add` does one by one, in one pass (a million messages are restored at
        once)."""
        table, name, delayed = self.messages, self.name, State.DELAYED
        ids: list[int] = []
        ready: dict[int, list[int]] = {}  # priority -> ascending ids: already heaps
        delays: list[tuple[float, int]] = []
        for msg in messages:
            msg_id = msg.id
            msg.queue = name
            table[msg_id] = msg
            ids.append(msg_id)
            if msg.state is delayed:
                delays.append((msg.until, msg_id))
            else:
                level = ready.get(msg.priority)
                if level is None:
                    level = ready[msg.priority] = []
                level.append(msg_id)
        self.count, self.delayed = len(ids), len(delays)
        self.timers.loaded(ids, delays)
        self._ready.load(ready)

    def live(self) -> Iterator[Message]:
        """Every message of this queue, each once, oldest first (by id); the backlog is moved
        into the table first."""
        self._settle()
        while self.backlog:
            self._materialize()
        return self.timers.live()

    def _push_ready(self, message: Message) -> None:
        if self._ready.push(message, self.count):
            self._ready.rebuild(m for m in self.timers.live() if m.state is State.READY)
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
        self.holder_of[message.id] = holder
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
        """`message` leaves this queue (and the broker's table: `add` puts a moved one back)."""
        del self.messages[message.id]
        self.count -= 1
        self._leave_state(message)
        self.timers.removed(message.id, self.count)

    def _leave_state(self, message: Message) -> None:
        if message.state is State.LEASED:
            self.leased -= 1
            self._unlease(message)
        elif message.state is State.DELAYED:
            self.delayed -= 1

    def _unlease(self, message: Message) -> None:
        holder = self.holder_of.pop(message.id)
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
        if self._unpushed is not None:
            self._settle()
        top = self._ready.top()
        backlog = self.backlog
        # The backlog's messages have priority 0 and come in id order within that level.
        if backlog and (top is None or (top.priority == 0 and backlog.first_id < top.id)):
            # Leased next, most likely: into the ready order only if it is not (_settle).
            msg = self._unpushed = self._materialize(push=False)
            return msg
        return top

    def take(self, msg: Message) -> None:
        """Take `msg`, just returned by `peek_ready`, off the heap it tops."""
        group = self.group
        if group is not None and group.members:
            group.take(msg)
        elif msg is self._unpushed:
            self._unpushed = None
        else:
            self._ready.pop(msg)

    def ready_in_order(self, limit: int) -> list[Message]:
        """Up to `limit` ready messages in the order they would be leased (ignoring groups)."""
        self._settle()
        for _ in range(min(limit, len(self.backlog))):
            self._materialize()  # those that may be among the first `limit`
        return self._ready.first(limit)

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
            self.group = Group(name, ring_factory(), self)
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
        retention_s = self.settings.retention_s
        due = self.timers.next_wall_due(retention_s)
        if self.backlog:
            retained = self.backlog.first_published_at + retention_s
            if due is None or retained < due:
                due = retained
        return due

    def oldest(self) -> Message | None:
        """The message published first of those in the queue (taken out of the backlog when
        it is there: retention removes it)."""
        msg = self.timers.oldest()
        backlog = self.backlog
        if backlog and (msg is None or backlog.first_published_at < msg.published_at):
            return self._materialize()
        return msg

    # --- statistics ---------------------------------------------------------------------------

    @property
    def ready(self) -> int:
        return self.count - self.leased - self.delayed

    def figures(self, now: float) -> dict[str, float]:
        """Counts for metrics: current sizes, the counters, and the oldest ready message's age."""
        return {"ready": self.ready, "delayed": self.delayed, "leased": self.leased,
                **self.counters.as_dict(), "oldest_ready_s": self.oldest_ready_age(now)}

    def oldest_ready_age(self, now: float) -> float:
        """Seconds since the oldest ready message was published (0 when none is ready): the
        first of the compact backlog or of the ready order, whichever is older; no walk."""
        oldest = self._ready.oldest()
        published = [] if oldest is None else [oldest.published_at]
        if self.backlog:
            published.append(self.backlog.first_published_at)
        return max(0.0, now - min(published)) if published else 0.0

    def stats(self, now: float) -> dict[str, Any]:
        oldest_ready = self.oldest_ready_age(now)
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
