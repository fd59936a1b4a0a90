"""The broker's queue model: publish, lease, ack, nack, touch, expiry, delays, TTL, retention,
dead letters, holders that die, and consumer groups.

Theory of operation. Every method decides synchronously, given the injected clock's `now`, and
records what it changed as `Change` values; the caller takes them, with the queues whose waiting
consumers may now be served, as one `Effects` value (`take_effects()`) and hands the changes to
storage. Nothing here waits or touches a disk, so the rules of the queue are tested with a fake
clock and no event loop. The broker hands out frozen values (`Published`, `Delivery`, `Joined`),
never its live messages: only its own operations change its state (admin.py adds the
administrative ones, state.py holds the state and the moves they share).

A lease is named by (msg_id, delivery): each lease increments the message's delivery count, so
a receipt from an older lease can never act on a newer one (fencing). A lease belongs to a
holder (a connection, or a consumer session that outlives its connections); when a holder dies,
`release_holder` gives all of its leases back at once.

A message that comes back from a lease (nack, expiry, a dead holder) goes back to ready, unless
it has used up its queue's `max_deliveries` or killed `poison_deaths` holders: then it moves to
the queue's dead-letter queue, keeping its id, its history and the reason.

Time. Every timer (a lease ending, a delay ending, a message reaching retention_s) belongs to a
queue (timers.py), and one structure per clock for the whole broker (deadlines.py) knows when
each queue next needs a tick. Every operation that sets a timer tells it; `next_due_in` and
`tick` then touch only the queues whose time has come, so their cost does not grow with the
number of queues nor with the messages that went through them.

Two clocks. Lease deadlines run on `monotonic`, so a step of the wall clock neither ends a
lease early (handing its message to a second consumer while the first works on it) nor stretches
it. Everything a client names in Unix time or the log keeps runs on `clock`: timestamps,
`not_before` and delays (kept as ready_at), TTL, retention and dedup windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import attrgetter

from mq.core.admin import Admin
from mq.core.backlog import Backlog
from mq.core.events import (
    Acked,
    Appended,
    Expired,
    Leased,
    Left,
    Nacked,
    Released,
    Removed,
)
from mq.core.group import Member
from mq.core.model import (
    Delivery,
    Headers,
    Joined,
    Message,
    Published,
    QueueSettings,
    State,
    headers_size,
)
from mq.core.queue import Queue
from mq.errors import Code, MQError

_by_id = attrgetter("id")
READ_BATCH = 1_000  # bodies asked for at most at once, when a lease finds them in the log only
READ_BATCH_BYTES = 1 << 20  # ... and their bytes
RETENTION_BATCH = 1_000  # messages removed per queue per tick, so one tick stays short
MESSAGE_OVERHEAD_BYTES = 128  # the fields around a body in a reply, counted against max_bytes


# A NamedTuple's own __new__ is Python code (0.6-0.8 us a call on this machine kind, more than
# the rest of an ack); what a lease or an ack makes for every message is built in C instead:
# tuple.__new__(Type, every field in order).
_new = tuple.__new__


class Broker(Admin):
    # --- recovery ----------------------------------------------------------------------------

    def restore(self, settings: dict[str, QueueSettings], messages: Iterable[Message],
                next_id: int, bindings: Iterable[tuple[str, str]] = (),
                finished: Iterable[Message] = (),
                plain: Mapping[str, Backlog] | None = None) -> None:
        """Load state rebuilt from the log. Leases are void after a restart: callers pass
        formerly leased messages as READY. `finished` messages (acked or removed, still in the
        log) only bring back their dedup ids. `plain`: queue -> its plain messages never
        leased, compactly (backlog.py). Queues are loaded in bulk: a restart restores millions
        of messages at once."""
        now = self.clock()
        for name, s in settings.items():
            self._queues[name] = Queue(name, s, self._messages, self._holds, self._body_memory)
        by_queue: dict[str, list[Message]] = {}
        remembered = [m for m in finished if m.dedup_id is not None]
        for msg in messages:
            if msg.state is State.DELAYED and msg.until <= now:
                msg.state = State.READY  # its delay ended while the broker was down
            if msg.extra is not None and msg.extra.dedup_id is not None:
                remembered.append(msg)
            by_queue.setdefault(msg.queue, []).append(msg)
        for name, queued in by_queue.items():
            q = self._queue(name)
            queued.sort(key=_by_id)
            if q.count:
                for msg in queued:
                    q.add(msg)
            else:
                q.load(queued)
        for name, backlog in (plain or {}).items():
            self._queue(name).load_plain(backlog)
        for name, q in self._queues.items():
            if q.ready:
                self._woken.add(name)
        for msg in remembered:  # remembered by the queue it was published to
            q = self._queue(msg.dead.origin if msg.dead is not None else msg.queue)
            assert msg.dedup_id is not None
            q.remember(msg.dedup_id, msg.id, msg.published_at + q.settings.dedup_window_s)
        for topic, queue in bindings:
            self._topics.bind(topic, queue)
        self._next_id = max(self._next_id, next_id)
        for q in self._queues.values():
            q.forget_dedup(now)
            self._due.schedule(q.name, q.next_wall_due())

    def restore_leases(self, leases: Iterable[tuple[int, str, float]]) -> int:
        """Leases taken over with their queues (clustered mode): (msg_id, holder, until Unix
        s). Each message, restored as ready, is leased again to its holder until then, so the
        holder's receipt still works and nobody else gets it meanwhile. Returns how many."""
        now, mono = self.clock(), self.monotonic()
        done = 0
        for msg_id, holder, until in leases:
            msg = self._messages.get(msg_id)
            if msg is None or msg.state is not State.READY or until <= now:
                continue
            q = self._queues[msg.queue]
            q.mark_leased(msg, holder)  # its entry in the ready heap is skipped from now on
            deadline = mono + (until - now)
            q.lease_until(msg, deadline)
            self._lease_due.schedule(q.name, deadline)
            done += 1
        return done

    # --- publishing --------------------------------------------------------------------------

    def publish(self, queue: str, body: bytes, key: str | None = None, priority: int = 0,
                delay_s: float = 0.0, ttl_s: float | None = None, dedup_id: str | None = None,
                body_of: int | None = None, headers: Headers | None = None) -> Published:
        """Store a message in `queue` (created if new), invisible for `delay_s` seconds, never
        delivered once `ttl_s` seconds old. A `dedup_id` seen in this queue within its
        dedup_window_s stores nothing and answers the earlier message's id as a duplicate.
        `body_of`: a fan-out copy, whose body the log keeps with that message. `headers` go
        with every delivery of it."""
        q = self._queue(queue)
        now = self.clock()
        if dedup_id is not None:
            earlier = q.duplicate_of(dedup_id, now)
            if earlier is not None:
                q.counters.deduplicated += 1
                return Published(earlier, True)
        elif not priority and delay_s <= 0 and ttl_s is None and headers is None:
            if key is not None:
                return self._publish_keyed(q, body, key, now, body_of)
            if q.accepts_plain:
                return self._publish_plain(q, body, now, body_of)
        msg = Message(self._new_id(queue), queue, body, key, now, priority=priority,
                      expires_at=None if ttl_s is None else now + ttl_s, dedup_id=dedup_id,
                      headers=headers)
        if delay_s > 0:
            msg.state, msg.ready_at = State.DELAYED, now + delay_s
        q.add(msg)
        q.counters.published += 1
        if dedup_id is not None:
            q.forget_dedup(now)  # here, not in a tick: dedup ids are no reason to wake up
            q.remember(dedup_id, msg.id, now + q.settings.dedup_window_s)
        self._pending.append(Appended(msg, body_of))
        if msg.state is State.READY:
            self._woken.add(queue)
            self._due.schedule(queue, now + q.settings.retention_s)
        else:
            self._due.schedule(queue, min(msg.ready_at, now + q.settings.retention_s))
        return Published(msg.id, False)

    def _new_id(self, queue: str) -> int:
        """The id of a new message of `queue`: 1, 2, 3... or, clustered, one that carries its
        queue's slot (the id maker given to the broker)."""
        if self._ids is not None:
            return self._ids(queue)
        msg_id = self._next_id
        self._next_id += 1
        return msg_id

    def _publish_plain(self, q: Queue, body: bytes, now: float, body_of: int | None
                       ) -> Published:
        """A message without options: it waits in the queue's compact backlog (backlog.py);
        the log gets a full one."""
        msg_id = self._new_id(q.name)
        q.add_plain(msg_id, now, body)
        q.counters.published += 1
        self._pending.append(Appended(Message(msg_id, q.name, body, None, now), body_of))
        self._woken.add(q.name)
        self._due.schedule(q.name, now + q.settings.retention_s)
        return Published(msg_id, False)

    def _publish_keyed(self, q: Queue, body: bytes, key: str, now: float, body_of: int | None
                       ) -> Published:
        """A message with a key and no other option: a full `Message` (the key decides who
        may lease it), ready now; none of the branches of the general path."""
        msg = Message(self._new_id(q.name), q.name, body, key, now)
        q.add(msg)
        q.counters.published += 1
        self._pending.append(Appended(msg, body_of))
        self._woken.add(q.name)
        self._due.schedule(q.name, now + q.settings.retention_s)
        return Published(msg.id, False)

    def publish_to_topic(self, topic: str, body: bytes, key: str | None = None,
                         priority: int = 0, delay_s: float = 0.0, ttl_s: float | None = None,
                         dedup_id: str | None = None, headers: Headers | None = None
                         ) -> dict[str, int]:
        """One copy per bound queue, the body stored once, the headers shared by all; returns
        {queue: msg_id}."""
        ids: dict[str, int] = {}
        body_of: int | None = None
        for queue in self._topics.queues_of(topic):
            msg_id, duplicate = self.publish(queue, body, key, priority, delay_s, ttl_s,
                                             dedup_id, body_of, headers)
            ids[queue] = msg_id
            if body_of is None and not duplicate:
                body_of = msg_id  # the first stored copy's row holds the body
        return ids

    # --- leasing -----------------------------------------------------------------------------

    def lease(self, queue: str, holder: str, lease_s: float | None = None, max_count: int = 1,
              max_bytes: int | None = None) -> list[Delivery]:
        """Lease up to `max_count` ready messages of `queue` to `holder`, best first, for
        `lease_s` seconds (default: the queue's lease_s). An unknown queue has none, and is not
        created by asking: a GET of a name is no reason to keep the name.

        With `max_bytes`, stop before the bodies would add up to more than that many bytes
        (the first message is always leased, whatever its size). A message whose TTL has
        passed is removed instead of delivered. A group member gets no more than its credit."""
        q = self._queues.get(queue)
        if q is None:
            return []
        now = self.clock()
        length = q.settings.lease_s if lease_s is None else lease_s
        deadline = self.monotonic() + length
        until = now + length if self._lease_ends else 0.0
        leased: list[Delivery] = []
        pending = self._pending
        budget = max_bytes
        credit = q.credit(holder)
        if credit is not None:
            max_count = min(max_count, credit)
        while len(leased) < max_count:
            msg = q.peek_ready(holder)
            if msg is None:
                break
            body = msg.body
            if isinstance(body, int):  # in the log only: the server reads it, then wakes us
                self._wanted[queue] = [msg.id, *q.backlog.in_log(READ_BATCH - 1,
                                                                 READ_BATCH_BYTES - body)]
                break
            if msg.expires_at is not None and msg.expires_at <= now:
                q.take(msg)
                self._remove(q, msg, Removed(msg.id, now, "ttl", q.name))
                q.counters.ttl_expired += 1
                continue
            headers = msg.headers
            if budget is not None:
                budget -= len(body) + MESSAGE_OVERHEAD_BYTES
                if headers is not None:
                    budget -= headers_size(headers)
                if budget < 0 and leased:
                    break
            q.take(msg)
            q.mark_leased(msg, holder)
            if msg.deliveries:
                q.counters.redelivered += 1
            delivery = msg.deliveries = msg.deliveries + 1
            q.lease_until(msg, deadline)
            pending.append(_new(Leased, (msg.id, delivery, holder, now, queue, until)))
            leased.append(_new(Delivery, (msg.id, delivery, queue, body, msg.key,
                                          msg.published_at, msg.priority, headers)))
        if leased:
            self._lease_due.schedule(queue, deadline)
        return leased

    # --- bodies kept in the log only ---------------------------------------------------------

    def take_wanted(self) -> dict[str, list[int]]:
        """Queue -> ids of messages whose bodies are in the log only and which a lease stopped
        at since the last call: read them (`fill_bodies`) and the queue can go on."""
        wanted, self._wanted = self._wanted, {}
        return wanted

    def wants_bodies(self, queue: str) -> bool:
        """Whether a lease of `queue` stopped for a body in the log only (not yet asked for
        with `take_wanted`)."""
        return queue in self._wanted

    def fill_bodies(self, queue: str, bodies: dict[int, bytes]) -> None:
        """Bodies of messages of `queue` read back from the log, by id: each message that still
        waits for its body keeps it (over the budget: it is about to be delivered), and the
        queue wakes. Ids no longer there, or with their bodies, are passed over."""
        q = self._queues.get(queue)
        if q is None:
            return
        for msg_id, body in bodies.items():
            msg = self._messages.get(msg_id)
            if msg is not None:
                if msg.queue == queue and isinstance(msg.body, int):
                    msg.body = body
                    self._woken.add(queue)
            elif q.backlog.fill(msg_id, body):
                self._woken.add(queue)

    def body_memory(self) -> dict[str, int | None]:
        """What STATS shows of the bodies kept in memory (those of plain queued messages)."""
        m = self._body_memory
        return {"bodies_in_memory": m.bodies, "body_bytes_in_memory": m.size_bytes,
                "bodies_in_log_only": m.in_log, "max_body_memory_bytes": m.budget}

    def ack(self, msg_id: int, delivery: int, holder: str) -> None:
        self._ack(msg_id, delivery, holder, self.clock())

    def ack_many(self, receipts: Iterable[tuple[int, int]], holder: str
                 ) -> list[tuple[int, MQError]]:
        """Ack each (msg_id, delivery) of `receipts` held by `holder`, all at one time, so the
        log can keep them as one row; returns (index, why) for each that was not acked."""
        now = self.clock()
        refused = []
        for i, (msg_id, delivery) in enumerate(receipts):
            try:
                self._ack(msg_id, delivery, holder, now)
            except MQError as e:
                refused.append((i, e))
        return refused

    def _ack(self, msg_id: int, delivery: int, holder: str, now: float) -> None:
        msg = self._held(msg_id, delivery, holder)
        q = self._queues[msg.queue]
        self._remove(q, msg, _new(Acked, (msg_id, now, q.name)))
        q.counters.acked += 1
        self._credit_freed(q)

    def nack(self, msg_id: int, delivery: int, holder: str, delay_s: float = 0.0,
             error: str | None = None) -> None:
        msg = self._held(msg_id, delivery, holder)
        q = self._queues[msg.queue]
        now = self.clock()
        if error is not None:
            msg.last_error = error
        q.counters.nacked += 1
        self._pending.append(Nacked(msg_id, now, now + delay_s, error, q.name))
        if delay_s <= 0:
            self._back_from_lease(q, msg, now)
        elif not self._dead_letter_if_spent(q, msg, now):
            q.delay(msg, now + delay_s)
            self._due.schedule(q.name, msg.ready_at)
            self._credit_freed(q)

    def touch(self, msg_id: int, delivery: int, holder: str, lease_s: float | None = None
              ) -> float:
        """Restart the lease clock; returns the lease length granted, in seconds."""
        msg = self._held(msg_id, delivery, holder)
        q = self._queues[msg.queue]
        granted = q.settings.lease_s if lease_s is None else lease_s
        q.lease_until(msg, self.monotonic() + granted)
        self._lease_due.schedule(q.name, msg.deadline)
        if self._lease_ends:  # the new end, for a broker that takes the queue over
            now = self.clock()
            self._pending.append(Leased(msg_id, delivery, holder, now, q.name, now + granted))
        return granted

    def queue_of(self, msg_id: int) -> str | None:
        """The queue message `msg_id` is in now; None once the broker no longer holds it."""
        msg = self._messages.get(msg_id)
        return None if msg is None else msg.queue

    def _held(self, msg_id: int, delivery: int, holder: str) -> Message:
        """The message under lease `msg_id.delivery` held by `holder`, or the reason why not."""
        msg = self._messages.get(msg_id)
        # The receipt is spelled out only in an error: acks that succeed never need it.
        if msg is None:
            msg = self._find_plain(msg_id)
        if msg is None:
            raise MQError(Code.LEASE_LOST, f"lease {msg_id}.{delivery} is no longer held: "
                          f"message {msg_id} was acked or removed")
        if msg.deliveries != delivery:
            raise MQError(Code.LEASE_LOST, f"lease {msg_id}.{delivery} is stale: message "
                          f"{msg_id} was delivered again as {msg_id}.{msg.deliveries}")
        if msg.state is not State.LEASED or msg.until <= self.monotonic():
            raise MQError(Code.LEASE_LOST, f"lease {msg_id}.{delivery} is no longer held: it "
                          "expired or was given back, and the message waits to be delivered again")
        if self._queues[msg.queue].holder_of[msg_id] != holder:
            raise MQError(Code.NOT_YOUR_LEASE, f"lease {msg_id}.{delivery} is held by another "
                          "connection")
        return msg

    # --- consumer groups and holders ----------------------------------------------------------

    def join(self, queue: str, group: str, name: str, holder: str, prefetch: int) -> Joined:
        """Make consumer `name` (leases held by `holder`) a member of `group` on `queue`, with
        at most `prefetch` unacked messages of that queue at once."""
        if self._ring_factory is None:
            raise MQError(Code.BAD_REQUEST, "this broker has no consumer groups")
        q = self._queue(queue)
        g = q.ensure_group(group, self._ring_factory)
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
        self._member_of.setdefault(holder, set()).add(queue)
        self._woken.add(queue)  # keys may have moved to the newcomer
        return Joined(g.name, len(g.members))

    def groups_of(self, holder: str) -> list[str]:
        """The queues in whose groups `holder` is a member."""
        return sorted(self._member_of.get(holder, ()))

    def leave(self, queue: str, name: str) -> None:
        q = self._queues.get(queue)
        if q is not None and q.group is not None and name in q.group.members:
            holder = q.group.members[name].holder
            q.group.leave(name)
            self._woken.add(queue)  # its keys moved to the others
            queues = self._member_of.get(holder)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._member_of[holder]

    def release_holder(self, holder: str, died: bool = True) -> tuple[int, int]:
        """`holder` is gone: every lease it holds goes back at once, and it leaves its groups.

        When it `died` (rather than said goodbye), each message counts one more death, and a
        message whose holders died `poison_deaths` times goes to the dead-letter queue as
        poison instead. Returns (released, poisoned) counts. Costs what the holder holds, not
        what the broker holds: only the queues it leases from or is a member in are visited."""
        now = self.clock()
        released = poisoned = 0
        member_of = self._member_of.pop(holder, set())
        for name in sorted(self._holds.get(holder, set()) | member_of):
            q = self._queues[name]
            for msg_id in sorted(q.held_by.get(holder, ())):
                msg = q.messages[msg_id]
                if died:
                    back, poison = self._release_dead(q, msg, holder, now)
                    released += back
                    poisoned += poison
                    continue
                self._pending.append(Left(msg_id, now, holder, name))
                if self._back_from_lease(q, msg, now):
                    released += 1
            group = q.group
            member = group.member_for(holder) if group is not None else None
            if group is not None and member is not None:
                group.leave(member.name)
                self._woken.add(name)
        return released, poisoned

    def _release_dead(self, q: Queue, msg: Message, holder: str, now: float
                      ) -> tuple[int, int]:
        """`msg`'s holder died: one more death; back to ready, or to the dead-letter queue
        (as poison, or for its spent deliveries). Returns (released, poisoned): 1 or 0 each."""
        msg.deaths += 1
        self._pending.append(Released(msg.id, now, holder, q.name))
        if msg.deaths >= self._poison_deaths:
            q.counters.poisoned += 1
            self._move(msg, q.settings.dead_letter_for(q.name), now,
                       f"poison: {msg.deaths} consumers died while processing it")
            return 0, 1
        if not self._back_from_lease(q, msg, now):
            return 0, 0
        q.counters.released += 1
        return 1, 0

    def transfer_holder(self, old: str, new: str) -> int:
        """Leases of `old` now belong to `new` (a connection that became a session)."""
        moved = 0
        for name in sorted(self._holds.get(old, ())):
            q = self._queues[name]
            for msg_id in sorted(q.held_by.get(old, ())):
                q.rehold(q.messages[msg_id], new)
                moved += 1
        return moved

    # --- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply everything that is due now in the queues whose time has come: leases
        expiring (by the monotonic clock), delays ending and retention (by the wall clock)."""
        now = self.clock()
        for name in self._lease_due.pop_due(self.monotonic()):
            q = self._queues.get(name)
            if q is not None:  # else deleted since
                self._expire_leases(q, now)
                self._lease_due.schedule(name, q.timers.next_lease_end())
        for name in self._due.pop_due(now):
            q = self._queues.get(name)
            if q is None:
                continue  # deleted since
            if q.release_due(now):
                self._woken.add(name)
            self._apply_retention(q, now)
            q.forget_dedup(now)
            self._due.schedule(name, q.next_wall_due())

    def next_due_in(self) -> float | None:
        """Seconds from now until `tick` has something to do (0 when it has now), or None.
        O(1) when nothing changed since the last call; otherwise each timer that moved costs
        O(log n) once (see deadlines.py)."""
        lease_end = self._lease_due.next(self._lease_end_of)
        wall_due = self._due.next(self._wall_due_of)
        waits = []
        if lease_end is not None:
            waits.append(lease_end - self.monotonic())
        if wall_due is not None:
            waits.append(wall_due - self.clock())
        return max(0.0, min(waits)) if waits else None

    def _lease_end_of(self, queue: str) -> float | None:
        q = self._queues.get(queue)
        return None if q is None else q.timers.next_lease_end()

    def _wall_due_of(self, queue: str) -> float | None:
        q = self._queues.get(queue)
        return None if q is None else q.next_wall_due()

    def _expire_leases(self, q: Queue, now: float) -> None:
        """Put back the leases of `q` that ended; `now` (Unix s) stamps the changes."""
        for msg in q.timers.expired_leases(self.monotonic()):
            q.counters.expired += 1
            self._pending.append(Expired(msg.id, now, q.name))
            self._back_from_lease(q, msg, now)

    def _apply_retention(self, q: Queue, now: float) -> None:
        horizon = now - q.settings.retention_s
        for _ in range(RETENTION_BATCH):
            msg = q.oldest()
            if msg is None or msg.published_at > horizon:
                break
            self._remove(q, msg, Removed(msg.id, now, "retention", q.name))
            q.counters.dropped += 1
