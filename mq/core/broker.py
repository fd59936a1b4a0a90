"""The broker's queue model: publish, lease, ack, nack, touch, expiry, delays and retention.

Theory of operation. Every method decides synchronously, given the injected clock's `now`, and
records what it changed as `Change` values in `pending`; the caller takes them with
`take_changes()` and hands them to storage. Nothing here waits or touches a disk, so the rules of
the queue are tested with a fake clock and no event loop.

A lease is named by (msg_id, delivery): each lease increments the message's delivery count, so
a receipt from an older lease can never act on a newer one (fencing). A lease belongs to a
holder (a connection, or a consumer session that outlives its connections); when a holder dies,
`release_holder` gives all of its leases back at once.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

from mq.core.clock import Clock
from mq.core.group import Group, Member, RingFactory
from mq.core.model import (
    Acked,
    Appended,
    Change,
    Declared,
    Dropped,
    Expired,
    Leased,
    Message,
    Nacked,
    Poisoned,
    QueueSettings,
    Released,
    State,
)
from mq.core.queue import Queue
from mq.errors import Code, MQError

RETENTION_BATCH = 1_000  # messages removed per queue per tick, so one tick stays short
MESSAGE_OVERHEAD_BYTES = 128  # the fields around a body in a reply, counted against max_bytes


class Broker:
    def __init__(self, clock: Clock, defaults: QueueSettings, next_id: int = 1,
                 ring_factory: RingFactory | None = None, poison_deaths: int = 3) -> None:
        self.clock = clock
        self.defaults = defaults
        self.ring_factory = ring_factory
        self.poison_deaths = poison_deaths  # holders dying with a message before it is poison
        self.queues: dict[str, Queue] = {}
        self._messages: dict[int, Message] = {}
        self._deadlines: list[tuple[float, int, int]] = []  # heap of (deadline, id, delivery)
        self._next_id = next_id
        self.pending: list[Change] = []
        self.woken: set[str] = set()  # queues that gained ready messages since last asked

    # --- bookkeeping for the caller ----------------------------------------------------------

    def take_changes(self) -> list[Change]:
        changes, self.pending = self.pending, []
        return changes

    def take_woken(self) -> set[str]:
        woken, self.woken = self.woken, set()
        return woken

    def queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name, self.defaults)
        return q

    # --- recovery ----------------------------------------------------------------------------

    def restore(self, settings: dict[str, QueueSettings], messages: Iterable[Message],
                next_id: int) -> None:
        """Load state rebuilt from the log. Leases are void after a restart: callers pass
        formerly leased messages as READY."""
        for name, s in settings.items():
            self.queues[name] = Queue(name, s)
        for msg in messages:
            self.queue(msg.queue).add(msg)
            self._messages[msg.id] = msg
            if msg.state is State.READY:
                self.woken.add(msg.queue)
        self._next_id = max(self._next_id, next_id)

    # --- commands ----------------------------------------------------------------------------

    def publish(self, queue: str, body: bytes, key: str | None = None) -> int:
        q = self.queue(queue)
        msg = Message(self._next_id, queue, body, key, self.clock())
        self._next_id += 1
        q.add(msg)
        q.counters.published += 1
        self._messages[msg.id] = msg
        self.pending.append(Appended(msg))
        self.woken.add(queue)
        return msg.id

    def lease(self, queue: str, holder: str, lease_s: float | None = None, max_count: int = 1,
              max_bytes: int | None = None) -> list[Message]:
        """Lease up to `max_count` ready messages, lowest ids first, for `lease_s` seconds.

        With `max_bytes`, stop before the bodies would add up to more than that many bytes
        (the first message is always leased, whatever its size)."""
        q = self.queue(queue)
        now = self.clock()
        deadline = now + (q.settings.lease_s if lease_s is None else lease_s)
        leased: list[Message] = []
        budget = max_bytes
        credit = q.credit(holder)
        if credit is not None:
            max_count = min(max_count, credit)
        while len(leased) < max_count:
            msg = q.peek_ready(holder)
            if msg is None:
                break
            if budget is not None:
                budget -= len(msg.body) + MESSAGE_OVERHEAD_BYTES
                if budget < 0 and leased:
                    break
            q.take(msg)
            q.mark_leased(msg, holder)
            msg.deliveries += 1
            msg.deadline = deadline
            heapq.heappush(self._deadlines, (deadline, msg.id, msg.deliveries))
            self.pending.append(Leased(msg.id, msg.deliveries, holder, now))
            leased.append(msg)
        return leased

    def ack(self, msg_id: int, delivery: int, holder: str) -> None:
        msg = self._held(msg_id, delivery, holder)
        q = self.queues[msg.queue]
        q.remove(msg)
        del self._messages[msg_id]
        q.counters.acked += 1
        self.pending.append(Acked(msg_id, self.clock()))
        self._credit_freed(q)

    def nack(self, msg_id: int, delivery: int, holder: str, delay_s: float = 0.0) -> None:
        msg = self._held(msg_id, delivery, holder)
        q = self.queues[msg.queue]
        now = self.clock()
        if delay_s > 0:
            q.delay(msg, now + delay_s)
            self._credit_freed(q)
        else:
            q.make_ready(msg)
            self.woken.add(msg.queue)
        self.pending.append(Nacked(msg_id, now, now + delay_s))

    def touch(self, msg_id: int, delivery: int, holder: str, lease_s: float | None = None
              ) -> float:
        """Restart the lease clock; returns the lease length granted, in seconds."""
        msg = self._held(msg_id, delivery, holder)
        granted = self.queues[msg.queue].settings.lease_s if lease_s is None else lease_s
        msg.deadline = self.clock() + granted
        heapq.heappush(self._deadlines, (msg.deadline, msg_id, delivery))
        return granted

    def declare(self, queue: str, retention_s: float | None, lease_s: float | None
                ) -> QueueSettings:
        q = self.queue(queue)
        settings = QueueSettings(
            retention_s=q.settings.retention_s if retention_s is None else retention_s,
            lease_s=q.settings.lease_s if lease_s is None else lease_s,
        )
        q.settings = settings
        self.pending.append(Declared(queue, settings))
        return settings

    def _credit_freed(self, q: Queue) -> None:
        # A group member may lease again, and a key it held may now go to its owner.
        if q.group is not None and q.group.members:
            self.woken.add(q.name)

    # --- consumer groups and holders ----------------------------------------------------------

    def join(self, queue: str, group: str, name: str, holder: str, prefetch: int) -> Group:
        """Make consumer `name` (leases held by `holder`) a member of `group` on `queue`."""
        if self.ring_factory is None:
            raise MQError(Code.BAD_REQUEST, "this broker has no consumer groups")
        q = self.queue(queue)
        g = q.ensure_group(group, self.ring_factory)
        if g.name != group:
            if g.members:
                raise MQError(Code.BAD_REQUEST, f"queue {queue} is consumed by group {g.name!r} "
                              f"({len(g.members)} members); join that group")
            g.name = group
        current = g.members.get(name)
        if current is not None and current.holder != holder:
            raise MQError(Code.NAME_TAKEN, f"consumer {name!r} is already a live member of "
                          f"{queue}/{group}; pick another name or resume its session")
        g.join(Member(name, holder, prefetch, self.clock()))
        self.woken.add(queue)  # keys may have moved to the newcomer
        return g

    def leave(self, queue: str, name: str) -> None:
        q = self.queues.get(queue)
        if q is not None and q.group is not None and name in q.group.members:
            q.group.leave(name)
            self.woken.add(queue)  # its keys moved to the others

    def release_holder(self, holder: str, died: bool = True) -> tuple[int, int]:
        """`holder` is gone: every lease it holds goes back at once, and it leaves its groups.

        When it `died` (rather than said goodbye), each message counts one more death, and a
        message whose holders died `poison_deaths` times is poisoned instead of requeued.
        Returns (released, poisoned) counts."""
        now = self.clock()
        released = poisoned = 0
        for q in self.queues.values():
            for msg_id in sorted(q.held_by.get(holder, ())):
                msg = q.messages[msg_id]
                if not died:
                    q.make_ready(msg)
                    self.pending.append(Nacked(msg_id, now, now))
                    released += 1
                    self.woken.add(q.name)
                    continue
                msg.deaths += 1
                self.pending.append(Released(msg_id, now, holder))
                if msg.deaths >= self.poison_deaths:
                    q.poison(msg)
                    poisoned += 1
                    self.pending.append(Poisoned(msg_id, now, f"{msg.deaths} consumers died "
                                                 "while processing it"))
                else:
                    q.make_ready(msg)
                    q.counters.released += 1
                    released += 1
                    self.woken.add(q.name)
            group = q.group
            member = group.member_for(holder) if group is not None else None
            if group is not None and member is not None:
                group.leave(member.name)
                self.woken.add(q.name)
        return released, poisoned

    def _held(self, msg_id: int, delivery: int, holder: str) -> Message:
        """The message under lease `msg_id.delivery` held by `holder`, or the reason why not."""
        receipt = f"{msg_id}.{delivery}"
        msg = self._messages.get(msg_id)
        if msg is None:
            raise MQError(Code.LEASE_LOST, f"lease {receipt} is no longer held: "
                          f"message {msg_id} was acked or removed")
        if msg.deliveries != delivery:
            raise MQError(Code.LEASE_LOST, f"lease {receipt} is stale: message {msg_id} was "
                          f"delivered again as {msg_id}.{msg.deliveries}")
        if msg.state is not State.LEASED or msg.deadline <= self.clock():
            raise MQError(Code.LEASE_LOST, f"lease {receipt} is no longer held: it expired or "
                          "was given back, and the message waits to be delivered again")
        if msg.holder != holder:
            raise MQError(Code.NOT_YOUR_LEASE, f"lease {receipt} is held by another connection")
        return msg

    # --- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply everything that is due now: lease expiry, delays ending, retention."""
        now = self.clock()
        self._expire_leases(now)
        for q in self.queues.values():
            if q.release_due(now):
                self.woken.add(q.name)
            self._apply_retention(q, now)

    def next_deadline(self) -> float | None:
        """The earliest time at which `tick` has something to do, or None."""
        times: list[float] = []
        if self._deadlines:
            times.append(self._deadlines[0][0])
        for q in self.queues.values():
            release = q.next_release()
            if release is not None:
                times.append(release)
            oldest = q.oldest()
            if oldest is not None:
                times.append(oldest.published_at + q.settings.retention_s)
        return min(times, default=None)

    def _expire_leases(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, msg_id, delivery = heapq.heappop(deadlines)
            msg = self._messages.get(msg_id)
            if (msg is None or msg.state is not State.LEASED or msg.deliveries != delivery
                    or msg.deadline != deadline):
                continue  # acked, given back, or touched since: this entry is stale
            q = self.queues[msg.queue]
            q.make_ready(msg)
            q.counters.expired += 1
            self.woken.add(q.name)
            self.pending.append(Expired(msg_id, now))

    def _apply_retention(self, q: Queue, now: float) -> None:
        horizon = now - q.settings.retention_s
        old: list[Message] = []
        for msg in q.messages.values():
            if msg.published_at > horizon or len(old) >= RETENTION_BATCH:
                break
            old.append(msg)
        for msg in old:
            q.remove(msg)
            del self._messages[msg.id]
            q.counters.dropped += 1
            self.pending.append(Dropped(msg.id, now))

    # --- statistics --------------------------------------------------------------------------

    def stats(self, queue: str | None = None) -> dict[str, dict[str, Any]]:
        now = self.clock()
        names = sorted(self.queues) if queue is None else [queue] if queue in self.queues else []
        return {name: self.queues[name].stats(now) for name in names}

    def group_stats(self, queue: str) -> dict[str, Any] | None:
        """The group on `queue`: each member's prefetch, leases held, ring share and keys."""
        q = self.queues.get(queue)
        if q is None or q.group is None or not q.group.members:
            return None
        g = q.group
        keys = {m.key for m in q.messages.values() if m.key is not None}
        owned = g.keys_owned(keys)
        shares = g.ring.shares()
        return {
            "group": g.name,
            "members": {
                name: {"holder": m.holder, "prefetch": m.prefetch,
                       "leases": len(q.held_by.get(m.holder, ())),
                       "ring_share": round(shares.get(name, 0.0), 4), "keys": owned[name]}
                for name, m in sorted(g.members.items())
            },
        }

    def queue_names(self) -> list[str]:
        return sorted(self.queues)
