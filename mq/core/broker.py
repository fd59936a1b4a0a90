"""The broker's queue model: publish, lease, ack, nack, touch, expiry, delays, TTL, retention,
dead letters, holders that die, and consumer groups.

Theory of operation. Every method decides synchronously, given the injected clock's `now`, and
records what it changed as `Change` values in `pending`; the caller takes them with
`take_changes()` and hands them to storage. Nothing here waits or touches a disk, so the rules of
the queue are tested with a fake clock and no event loop.

A lease is named by (msg_id, delivery): each lease increments the message's delivery count, so
a receipt from an older lease can never act on a newer one (fencing). A lease belongs to a
holder (a connection, or a consumer session that outlives its connections); when a holder dies,
`release_holder` gives all of its leases back at once.

A message that comes back from a lease (nack, expiry, a dead holder) goes back to ready, unless
it has used up its queue's `max_deliveries` or killed `poison_deaths` holders: then it moves to
the queue's dead-letter queue, keeping its id, its history and the reason.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from mq.core.clock import Clock
from mq.core.events import (
    Acked,
    Appended,
    Change,
    Expired,
    Leased,
    Left,
    Moved,
    Nacked,
    Released,
    Removed,
)
from mq.core.group import Group, Member, RingFactory
from mq.core.model import DeadLetter, Message, QueueSettings, State
from mq.core.queue import Queue
from mq.core.topics import Topics
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
        self.topics = Topics()
        self.messages: dict[int, Message] = {}
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

    @property
    def next_id(self) -> int:
        """The id the next stored message will get."""
        return self._next_id

    def queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name, self.defaults)
        return q

    # --- recovery ----------------------------------------------------------------------------

    def restore(self, settings: dict[str, QueueSettings], messages: Iterable[Message],
                next_id: int, bindings: Iterable[tuple[str, str]] = (),
                finished: Iterable[Message] = ()) -> None:
        """Load state rebuilt from the log. Leases are void after a restart: callers pass
        formerly leased messages as READY. `finished` messages (acked or removed, still in the
        log) only bring back their dedup ids."""
        now = self.clock()
        messages = list(messages)
        for name, s in settings.items():
            self.queues[name] = Queue(name, s)
        for msg in messages:
            if msg.state is State.DELAYED and msg.ready_at <= now:
                msg.state = State.READY  # its delay ended while the broker was down
            self.queue(msg.queue).add(msg)
            self.messages[msg.id] = msg
            if msg.state is State.READY:
                self.woken.add(msg.queue)
        for msg in [*messages, *finished]:
            if msg.dedup_id is not None:  # remembered by the queue it was published to
                q = self.queue(msg.dead.origin if msg.dead is not None else msg.queue)
                q.remember(msg.dedup_id, msg.id, msg.published_at + q.settings.dedup_window_s)
        for topic, queue in bindings:
            self.topics.bind(topic, queue)
        self._next_id = max(self._next_id, next_id)
        for q in self.queues.values():
            q.forget_dedup(now)

    # --- publishing --------------------------------------------------------------------------

    def publish(self, queue: str, body: bytes, key: str | None = None, priority: int = 0,
                delay_s: float = 0.0, ttl_s: float | None = None, dedup_id: str | None = None,
                body_of: int | None = None) -> int:
        """Store a message; returns its id, or the earlier message's id for a duplicate."""
        q = self.queue(queue)
        now = self.clock()
        if dedup_id is not None:
            earlier = q.duplicate_of(dedup_id, now)
            if earlier is not None:
                q.counters.deduplicated += 1
                return earlier
        msg = Message(self._next_id, queue, body, key, now, priority=priority,
                      expires_at=None if ttl_s is None else now + ttl_s, dedup_id=dedup_id)
        self._next_id += 1
        if delay_s > 0:
            msg.state, msg.ready_at = State.DELAYED, now + delay_s
        q.add(msg)
        q.counters.published += 1
        self.messages[msg.id] = msg
        if dedup_id is not None:
            q.remember(dedup_id, msg.id, now + q.settings.dedup_window_s)
        self.pending.append(Appended(msg, body_of))
        if msg.state is State.READY:
            self.woken.add(queue)
        return msg.id

    def publish_to_topic(self, topic: str, body: bytes, key: str | None = None,
                         priority: int = 0, delay_s: float = 0.0, ttl_s: float | None = None,
                         dedup_id: str | None = None) -> dict[str, int]:
        """One copy per bound queue, the body stored once; returns {queue: msg_id}."""
        ids: dict[str, int] = {}
        body_of: int | None = None
        for queue in self.topics.queues_of(topic):
            msg_id = self.publish(queue, body, key, priority, delay_s, ttl_s, dedup_id, body_of)
            ids[queue] = msg_id
            if body_of is None and msg_id == self._next_id - 1:
                body_of = msg_id  # the first stored copy's row holds the body
        return ids

    # --- leasing -----------------------------------------------------------------------------

    def lease(self, queue: str, holder: str, lease_s: float | None = None, max_count: int = 1,
              max_bytes: int | None = None) -> list[Message]:
        """Lease up to `max_count` ready messages, best first, for `lease_s` seconds.

        With `max_bytes`, stop before the bodies would add up to more than that many bytes
        (the first message is always leased, whatever its size). A message whose TTL has
        passed is removed instead of delivered."""
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
            if msg.expires_at is not None and msg.expires_at <= now:
                q.take(msg)
                self._remove(q, msg, Removed(msg.id, now, "ttl", q.name))
                q.counters.ttl_expired += 1
                continue
            if budget is not None:
                budget -= len(msg.body) + MESSAGE_OVERHEAD_BYTES
                if budget < 0 and leased:
                    break
            q.take(msg)
            q.mark_leased(msg, holder)
            msg.deliveries += 1
            msg.deadline = deadline
            heapq.heappush(self._deadlines, (deadline, msg.id, msg.deliveries))
            self.pending.append(Leased(msg.id, msg.deliveries, holder, now, queue))
            leased.append(msg)
        return leased

    def ack(self, msg_id: int, delivery: int, holder: str) -> None:
        msg = self._held(msg_id, delivery, holder)
        q = self.queues[msg.queue]
        self._remove(q, msg, Acked(msg_id, self.clock(), q.name))
        q.counters.acked += 1
        self._credit_freed(q)

    def nack(self, msg_id: int, delivery: int, holder: str, delay_s: float = 0.0,
             error: str | None = None) -> None:
        msg = self._held(msg_id, delivery, holder)
        q = self.queues[msg.queue]
        now = self.clock()
        if error is not None:
            msg.last_error = error
        self.pending.append(Nacked(msg_id, now, now + delay_s, error, q.name))
        if self._dead_letter_if_spent(q, msg, now):
            return
        if delay_s > 0:
            q.delay(msg, now + delay_s)
            self._credit_freed(q)
        else:
            q.make_ready(msg)
            self.woken.add(msg.queue)

    def touch(self, msg_id: int, delivery: int, holder: str, lease_s: float | None = None
              ) -> float:
        """Restart the lease clock; returns the lease length granted, in seconds."""
        msg = self._held(msg_id, delivery, holder)
        granted = self.queues[msg.queue].settings.lease_s if lease_s is None else lease_s
        msg.deadline = self.clock() + granted
        heapq.heappush(self._deadlines, (msg.deadline, msg_id, delivery))
        return granted

    def _held(self, msg_id: int, delivery: int, holder: str) -> Message:
        """The message under lease `msg_id.delivery` held by `holder`, or the reason why not."""
        receipt = f"{msg_id}.{delivery}"
        msg = self.messages.get(msg_id)
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

    def _remove(self, q: Queue, msg: Message, change: Change) -> None:
        q.remove(msg)
        del self.messages[msg.id]
        self.pending.append(change)

    def _credit_freed(self, q: Queue) -> None:
        # A group member or a subscription may lease again, and a key it held may now go to
        # its owner: whoever waits on this queue should look again.
        self.woken.add(q.name)

    # --- dead letters ------------------------------------------------------------------------

    def _dead_letter_if_spent(self, q: Queue, msg: Message, now: float) -> bool:
        """Back from a lease: move `msg` to the dead-letter queue if it used up its tries."""
        limit = q.settings.max_deliveries
        if limit and msg.deliveries - msg.delivery_base >= limit:
            self.move(msg, q.settings.dead_letter_for(q.name), now,
                      f"delivered {msg.deliveries - msg.delivery_base} times "
                      f"(max_deliveries={limit})")
            return True
        return False

    def move(self, msg: Message, to_queue: str, now: float, reason: str,
             redrive: bool = False) -> None:
        """Move `msg` to `to_queue`, ready: into a dead-letter queue, or back (`redrive`)."""
        source_name = msg.queue
        source = self.queues[source_name]
        source.remove(msg)
        self._credit_freed(source)
        if redrive:
            msg.dead = None
            msg.delivery_base = msg.deliveries
        else:
            msg.dead = DeadLetter(msg.queue, reason, now)
            source.counters.dead_lettered += 1
        msg.queue = to_queue
        msg.state = State.READY
        self.queue(to_queue).add(msg)
        self.woken.add(to_queue)
        self.pending.append(Moved(msg.id, now, to_queue, reason, msg.delivery_base, redrive,
                                  source_name))

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
        message whose holders died `poison_deaths` times goes to the dead-letter queue as
        poison instead. Returns (released, poisoned) counts."""
        now = self.clock()
        released = poisoned = 0
        for q in list(self.queues.values()):
            for msg_id in sorted(q.held_by.get(holder, ())):
                msg = q.messages[msg_id]
                if not died:
                    self.pending.append(Left(msg_id, now, holder, q.name))
                    if not self._dead_letter_if_spent(q, msg, now):
                        q.make_ready(msg)
                        released += 1
                        self.woken.add(q.name)
                    continue
                msg.deaths += 1
                self.pending.append(Released(msg_id, now, holder, q.name))
                if msg.deaths >= self.poison_deaths:
                    q.counters.poisoned += 1
                    poisoned += 1
                    self.move(msg, q.settings.dead_letter_for(q.name), now,
                              f"poison: {msg.deaths} consumers died while processing it")
                elif not self._dead_letter_if_spent(q, msg, now):
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

    def transfer_holder(self, old: str, new: str) -> int:
        """Leases of `old` now belong to `new` (a connection that became a session)."""
        moved = 0
        for q in self.queues.values():
            for msg_id in sorted(q.held_by.get(old, ())):
                q.rehold(q.messages[msg_id], new)
                moved += 1
        return moved

    # --- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply everything that is due now: lease expiry, delays ending, retention."""
        now = self.clock()
        self._expire_leases(now)
        for q in list(self.queues.values()):
            if q.release_due(now):
                self.woken.add(q.name)
            self._apply_retention(q, now)
            q.forget_dedup(now)

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
            msg = self.messages.get(msg_id)
            if (msg is None or msg.state is not State.LEASED or msg.deliveries != delivery
                    or msg.deadline != deadline):
                continue  # acked, given back, or touched since: this entry is stale
            q = self.queues[msg.queue]
            q.counters.expired += 1
            self.pending.append(Expired(msg_id, now, q.name))
            if not self._dead_letter_if_spent(q, msg, now):
                q.make_ready(msg)
                self.woken.add(q.name)

    def _apply_retention(self, q: Queue, now: float) -> None:
        horizon = now - q.settings.retention_s
        old: list[Message] = []
        for msg in q.messages.values():
            if msg.published_at > horizon or len(old) >= RETENTION_BATCH:
                break
            old.append(msg)
        for msg in old:
            self._remove(q, msg, Removed(msg.id, now, "retention", q.name))
            q.counters.dropped += 1

    def queue_names(self) -> list[str]:
        return sorted(self.queues)
