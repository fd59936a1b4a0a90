"""Queue administration and introspection, as operations of the broker: settings, purge, delete,
peek, redrive, bindings, EXPLAIN and statistics. Pure, like the rest of the core.

`Admin` is a part of the `Broker` (which builds on it), kept apart only to keep each module
short: it changes the broker's state through the same moves as every other operation.
"""

from __future__ import annotations

from typing import Any

from mq.core.events import Bound, Declared, Purged, Removed
from mq.core.model import Message, QueueSettings, State
from mq.core.queue import Queue
from mq.core.state import BrokerState
from mq.errors import Code, MQError

SETTINGS = tuple(QueueSettings.__dataclass_fields__)


class Admin(BrokerState):
    # --- settings and queues -----------------------------------------------------------------

    def declare(self, queue: str, **changes: Any) -> QueueSettings:
        """Create `queue` or change the settings given (None leaves a setting as it is)."""
        q = self._queue(queue)
        values = {name: getattr(q.settings, name) for name in SETTINGS}
        values.update({k: v for k, v in changes.items() if v is not None})
        if values["dead_letter"] == queue:
            raise MQError(Code.BAD_REQUEST, "a queue cannot be its own dead-letter queue")
        q.settings = QueueSettings(**values)
        self._due.schedule(queue, q.next_wall_due())  # a shorter retention_s may be due sooner
        self._pending.append(Declared(queue, q.settings))
        return q.settings

    def purge(self, queue: str, reason: str = "purge") -> int:
        """Remove every message of `queue`, leased ones included; returns how many."""
        q = self._queues.get(queue)
        if q is None:
            return 0
        now = self.clock()
        doomed = list(q.live())
        for msg in doomed:
            self._remove(q, msg, Removed(msg.id, now, reason, queue))
        return len(doomed)

    def delete(self, queue: str) -> int:
        """Purge `queue`, then forget it, its settings and its bindings; returns how many
        messages went with it."""
        q = self._queues.get(queue)
        if q is None:
            raise MQError(Code.NOT_FOUND, f"no queue {queue!r}")
        if q.group is not None and q.group.members:
            raise MQError(Code.BAD_REQUEST, f"queue {queue} has {len(q.group.members)} consumers "
                          "in its group; they must leave first")
        removed = self.purge(queue, "queue deleted")
        del self._queues[queue]
        for topic in self._topics.forget_queue(queue):
            self._pending.append(Bound(topic, queue, False))
        self._pending.append(Purged(queue))
        return removed

    def forget(self, queues: list[str]) -> int:
        """Drop `queues` and all of theirs from memory, recording nothing: their slot moved to
        another broker, which loads them from the log (clustered mode). Returns how many
        messages went. The caller first ends what waits on them (GETs, subscriptions)."""
        dropped = 0
        for name in queues:
            q = self._queues.pop(name, None)
            if q is None:
                continue
            for msg in list(q.live()):
                q.remove(msg)  # a lease's holder and key bookkeeping go with it
                dropped += 1
            for holder in [h for h, names in self._member_of.items() if name in names]:
                self._member_of[holder].discard(name)
                if not self._member_of[holder]:
                    del self._member_of[holder]
            self._topics.forget_queue(name)
            self._woken.discard(name)  # the deadline heaps skip a queue that is gone
        return dropped

    def redrive(self, dead_queue: str, count: int, to_queue: str | None = None) -> int:
        """Move up to `count` ready messages of a dead-letter queue back to where they came from
        (or to `to_queue`); their delivery count towards max_deliveries starts again."""
        q = self._queues.get(dead_queue)
        if q is None:
            return 0
        now = self.clock()
        moved = 0
        for msg in q.ready_in_order(count):
            target = to_queue or (msg.dead.origin if msg.dead is not None else None)
            if target is None or target == dead_queue:
                continue
            self._move(msg, target, now, f"redriven from {dead_queue}", redrive=True)
            moved += 1
        return moved

    def bind(self, topic: str, queue: str) -> bool:
        """Bind `queue` (created if new) to `topic`; False if it was bound already."""
        if self._topics.bind(topic, queue):
            self._queue(queue)
            self._pending.append(Bound(topic, queue, True))
            return True
        return False

    def unbind(self, topic: str, queue: str) -> bool:
        """False if `queue` was not bound to `topic`."""
        if self._topics.unbind(topic, queue):
            self._pending.append(Bound(topic, queue, False))
            return True
        return False

    # --- introspection -----------------------------------------------------------------------

    def peek(self, queue: str, count: int) -> list[dict[str, Any]]:
        """The next ready messages in delivery order, without leasing them (PEEK's map)."""
        q = self._queues.get(queue)
        return [] if q is None else [_peeked(m) for m in q.ready_in_order(count)]

    def explain(self, msg_id: int) -> dict[str, Any]:
        """Why is this message (not) being delivered? A state and a sentence for people."""
        msg = self._messages.get(msg_id) or self._find_plain(msg_id)
        if msg is None:
            return {"msg_id": msg_id, "state": "gone",
                    "why": f"message {msg_id} is not in any queue: it was acked, removed by "
                           "retention, TTL or purge, or never existed; HISTORY shows its life"}
        now = self.clock()
        out: dict[str, Any] = {"msg_id": msg_id, "queue": msg.queue, "state": msg.state.value,
                               "deliveries": msg.deliveries}
        if msg.state is State.DELAYED:
            out["why"] = f"delayed: it becomes ready in {msg.ready_at - now:.3f} s"
            out["ready_at"] = msg.ready_at
        elif msg.state is State.LEASED:
            left_s = msg.deadline - self.monotonic()  # the lease runs on the monotonic clock
            holder = self._queues[msg.queue].holder_of[msg_id]
            out["why"] = (f"leased by {holder} (delivery {msg.deliveries}) until "
                          f"{left_s:.3f} s from now")
            out.update(holder=holder, lease_deadline=now + left_s)  # shown in Unix s
        elif msg.dead is not None:
            out["why"] = (f"dead-lettered from {msg.dead.origin}: {msg.dead.reason}; REDRIVE "
                          f"{msg.queue} moves it back")
        else:
            out["why"] = _why_ready(self._queues[msg.queue], msg)
        if msg.expires_at is not None:
            out["expires_in_s"] = round(msg.expires_at - now, 3)
        if msg.last_error is not None:
            out["last_error"] = msg.last_error
        if msg.headers is not None:
            out["headers"] = msg.headers
        return out

    def stats(self, queue: str | None = None) -> dict[str, dict[str, Any]]:
        """Queue name -> its statistics (protocol.md 6): one queue, or all; {} if unknown."""
        now = self.clock()
        names = sorted(self._queues) if queue is None else [queue] if queue in self._queues else []
        return {name: self._queues[name].stats(now) for name in names}

    def figures(self) -> dict[str, dict[str, float]]:
        """Queue name -> its sizes, counters and oldest ready age, for metrics: each queue
        costs the same whatever it holds (no walk over its messages)."""
        now = self.clock()
        return {name: q.figures(now) for name, q in self._queues.items()}

    def group_stats(self, queue: str, keys: bool = True) -> dict[str, Any] | None:
        """The group on `queue`: each member's prefetch, leases held, ring share and (with
        `keys`, which walks the queue's messages) the keys it owns."""
        q = self._queues.get(queue)
        if q is None or q.group is None or not q.group.members:
            return None
        g = q.group
        shares = g.ring.shares()
        members = {
            name: {"holder": m.holder, "prefetch": m.prefetch,
                   "leases": len(q.held_by.get(m.holder, ())),
                   "ring_share": round(shares.get(name, 0.0), 4)}
            for name, m in sorted(g.members.items())
        }
        if keys:
            owned = g.keys_owned({m.key for m in q.live() if m.key is not None})
            for name, member in members.items():
                member["keys"] = owned[name]
        return {"group": g.name, "members": members}

    def dead_letter_queues(self) -> list[str]:
        """The queues that exist and are the dead-letter queue of one (themselves included)."""
        targets = {q.settings.dead_letter_for(name) for name, q in self._queues.items()}
        return sorted(name for name in targets if name in self._queues)

    def leases_of(self, holder: str) -> int:
        """Leases `holder` holds now, in all queues (visits only the queues it holds in)."""
        return sum(len(self._queues[name].held_by.get(holder, ()))
                   for name in self._holds.get(holder, ()))


def _peeked(msg: Message) -> dict[str, Any]:
    """A message as PEEK shows it: its fields, its headers if it has any and, in a dead-letter
    queue, why it is there."""
    out: dict[str, Any] = {
        "msg_id": msg.id, "queue": msg.queue, "deliveries": msg.deliveries, "body": msg.body,
        "key": msg.key, "priority": msg.priority, "published_at": msg.published_at,
        "last_error": msg.last_error,
    }
    if msg.dead is not None:
        out.update(dead_from=msg.dead.origin, dead_reason=msg.dead.reason, dead_at=msg.dead.at)
    if msg.headers is not None:
        out["headers"] = msg.headers
    return out


def _why_ready(q: Queue, msg: Message) -> str:
    ahead = sum(1 for m in q.ready_in_order(1000) if m.rank < msg.rank)
    group = q.group
    if group is not None and group.members and msg.key is not None:
        owner = group.owner(msg.key)
        holders = q.inflight.get(msg.key, {})
        if holders and (owner is None or set(holders) != {group.members[owner].holder}):
            return (f"ready, waiting behind key {msg.key}: another message of that key is in "
                    f"flight on {', '.join(sorted(holders))}")
        member = group.members.get(owner) if owner is not None else None
        if member is not None and q.credit(member.holder) == 0:
            return (f"ready, for key {msg.key} owned by {owner}, who holds its full prefetch "
                    f"({member.prefetch}) of unacked messages")
        return f"ready for {owner} (owner of key {msg.key}); {ahead} messages ahead of it"
    return f"ready: {ahead} messages ahead of it; the next GET takes it after those"
