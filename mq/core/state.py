"""The broker's state, what others may read of it, and the few moves its operations are made of.

`BrokerState` holds the queues, every live message by id, the topic bindings, and what changed
since the caller last asked (`take_effects`). All of it is private: only the broker's own
operations (admin.py, broker.py, which build on this class) change it, and they record each
change as they make it.
"""

from __future__ import annotations

from collections.abc import Callable

from mq.core.backlog import BodyMemory
from mq.core.clock import Clock
from mq.core.deadlines import Deadlines
from mq.core.events import Change, Effects, Moved
from mq.core.group import RingFactory
from mq.core.model import DeadLetter, Message, QueueSettings, State
from mq.core.queue import Queue
from mq.core.topics import Topics

IdMaker = Callable[[str], int]  # queue -> a new message id, above every id it made before


class BrokerState:
    def __init__(self, clock: Clock, defaults: QueueSettings, next_id: int = 1,
                 ring_factory: RingFactory | None = None, poison_deaths: int = 3,
                 monotonic: Clock | None = None, max_body_memory_bytes: int | None = None,
                 ids: IdMaker | None = None, lease_ends: bool = False) -> None:
        """`clock` is Unix time: timestamps, delays, TTL, retention. `monotonic` runs lease
        deadlines, which a step of the wall clock must not move (default: `clock`, for a
        broker driven by one fake clock). `max_body_memory_bytes`: how many bytes of queued
        bodies are kept in memory at most; beyond, bodies stay in the log only (None: all are
        kept). `ids`: how a new message of a queue gets its id; by default 1, 2, 3... (a
        clustered broker's ids carry their slot: mq/cluster/slots.py). `lease_ends`: record
        when each lease ends (and each touch), so that another broker taking the queue over
        keeps the lease (clustered mode)."""
        self.clock = clock
        self.monotonic = clock if monotonic is None else monotonic
        self._defaults = defaults
        self._ring_factory = ring_factory
        self._poison_deaths = poison_deaths  # holders dying with a message before it is poison
        self._queues: dict[str, Queue] = {}
        self._holds: dict[str, set[str]] = {}  # holder -> queues it holds leases in (by Queue)
        self._member_of: dict[str, set[str]] = {}  # holder -> queues whose group it is in
        self._topics = Topics()
        self._messages: dict[int, Message] = {}  # every live message, of every queue (Queue)
        self._due = Deadlines()  # when each queue next needs a tick for delays and retention
        self._lease_due = Deadlines()  # ... and for leases ending, on the monotonic clock
        self._next_id = next_id
        self._ids = ids
        self._lease_ends = lease_ends
        self._pending: list[Change] = []
        self._body_memory = BodyMemory(max_body_memory_bytes)
        self._wanted: dict[str, list[int]] = {}  # queue -> ids whose bodies a lease waits for
        self._woken: set[str] = set()  # queues to serve since the caller last asked

    # --- for the caller ----------------------------------------------------------------------

    def take_effects(self) -> Effects:
        """The changes made and the queues woken since the last call, and forget them."""
        effects = Effects(self._pending, frozenset(self._woken))
        self._pending = []
        self._woken.clear()
        return effects

    def wake(self, queue: str) -> None:
        """A subscriber asks to be served from `queue` (which is created if new: a SUB names
        a queue to use it): the next effects list it as woken."""
        self._queue(queue)
        self._woken.add(queue)

    def ready_count(self, queue: str) -> int:
        """Messages of `queue` ready to be leased now; 0 for an unknown queue."""
        q = self._queues.get(queue)
        return 0 if q is None else q.ready

    def held_count(self, queue: str, holder: str) -> int:
        """Leases `holder` holds on messages of `queue`."""
        q = self._queues.get(queue)
        return 0 if q is None else len(q.held_by.get(holder, ()))

    def queue_names(self) -> list[str]:
        return sorted(self._queues)

    def bindings(self, topic: str | None = None) -> dict[str, list[str]]:
        """Topic -> its bound queues, sorted; one topic or all; a topic without any is left out."""
        return self._topics.bindings(topic)

    def key_owner(self, queue: str, key: str) -> str | None:
        """The member of `queue`'s consumer group that owns `key`; None without a group."""
        q = self._queues.get(queue)
        return None if q is None or q.group is None else q.group.owner(key)

    # --- the moves operations are made of ----------------------------------------------------

    def _queue(self, name: str) -> Queue:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = Queue(name, self._defaults, self._messages, self._holds,
                                           self._body_memory)
        return q

    def _find_plain(self, msg_id: int) -> Message | None:
        """A copy of `msg_id` if it waits in a queue's backlog of plain messages (queue.py),
        to describe it; None if it is in none. Costs a search of each queue's backlog."""
        for q in self._queues.values():
            msg = q.find_plain(msg_id)
            if msg is not None:
                return msg
        return None

    def _remove(self, q: Queue, msg: Message, change: Change) -> None:
        q.remove(msg)  # from the broker's table too
        self._pending.append(change)

    def _credit_freed(self, q: Queue) -> None:
        # A group member or a subscription may lease again, and a key it held may now go to
        # its owner: whoever waits on this queue should look again.
        self._woken.add(q.name)

    def _dead_letter_if_spent(self, q: Queue, msg: Message, now: float) -> bool:
        """Back from a lease: move `msg` to the dead-letter queue if it used up its tries."""
        limit = q.settings.max_deliveries
        if limit and msg.deliveries - msg.delivery_base >= limit:
            self._move(msg, q.settings.dead_letter_for(q.name), now,
                       f"delivered {msg.deliveries - msg.delivery_base} times "
                       f"(max_deliveries={limit})")
            return True
        return False

    def _back_from_lease(self, q: Queue, msg: Message, now: float) -> bool:
        """A lease ended without an ack: `msg` is ready again, unless it used up its tries and
        went to the dead-letter queue. True when it is ready again."""
        if self._dead_letter_if_spent(q, msg, now):
            return False
        q.make_ready(msg)
        self._woken.add(q.name)
        return True

    def _move(self, msg: Message, to_queue: str, now: float, reason: str,
              redrive: bool = False) -> None:
        """Move `msg` to `to_queue`, ready: into a dead-letter queue, or back (`redrive`)."""
        source_name = msg.queue
        source = self._queues[source_name]
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
        target = self._queue(to_queue)
        target.add(msg)
        self._due.schedule(to_queue, msg.published_at + target.settings.retention_s)
        self._woken.add(to_queue)
        self._pending.append(Moved(msg.id, now, to_queue, reason, msg.delivery_base, redrive,
                                   source_name))
