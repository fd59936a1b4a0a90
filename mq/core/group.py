"""A consumer group on a queue: members, their credit, and which member owns which key.

Keyed messages go only to the live member that owns the key on the hash ring, and only while
no other holder has a message of that key in flight (so a key is never worked on by two
members at once, even while the ring rebalances). Unkeyed messages go to any member with credit.

Theory of operation. The group keeps its own lazy heaps of ready message ranks (priority, then
id): one for unkeyed messages and one per key. To find the best keyed message a member may take
without looking at every key it owns, each owner also has a heap of its keys' heads: (rank of
the key's best ready message, key). So a lease costs O(log keys), however many keys there are:
- `_head[key]` is the rank the key's entry in its owner's heap was pushed with; an entry whose
  rank differs is left behind by a newer one and dropped when it surfaces;
- an entry may be older than its key's heap (its message was leased, or removed by retention):
  `pick` then finds the key's true best ready message and pushes the key again with its rank;
- a key whose messages another holder has in flight cannot go to its owner now: `pick` parks
  it (no entry) and the queue tells `key_freed` when a holder lets go of that key, which gives
  it an entry again. So blocked keys cost one look per event that could unblock them, not one
  per lease;
- a membership change moves keys between owners: the heads are rebuilt then, once.
A heap entry whose message is no longer ready is dropped when it surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from mq.core.model import Message, State, id_of


class Home(Protocol):
    """What the group needs of its queue (mq.core.queue.Queue is one)."""

    name: str
    messages: dict[int, Message]  # the broker's table of every live message

    def live(self) -> Iterator[Message]: ...


class KeyRing(Protocol):
    """What the group needs of a consistent hash ring (mq.ring.HashRing is one)."""

    def add(self, member: str) -> None: ...
    def remove(self, member: str) -> None: ...
    def owner(self, key: str) -> str | None: ...
    def shares(self) -> dict[str, float]: ...


RingFactory = Callable[[], KeyRing]


@dataclass(slots=True)
class Member:
    name: str  # the consumer name: its place on the ring, stable across reconnects
    holder: str  # who holds its leases (the session)
    prefetch: int  # most unacked messages it may hold from this queue at once
    joined_at: float


class Group:
    def __init__(self, name: str, ring: KeyRing, home: Home) -> None:
        self.name = name
        self.ring = ring
        self.members: dict[str, Member] = {}
        self._home = home
        self._messages = home.messages
        self._by_holder: dict[str, Member] = {}
        self._unkeyed: list[int] = []
        self._by_key: dict[str, list[int]] = {}  # key -> heap of its ready ranks (lazy)
        self._owner: dict[str, str | None] = {}  # ring.owner of the keys in _by_key, cached
        self._heads: dict[str | None, list[tuple[int, str]]] = {}  # owner -> heap of (rank, key)
        self._head: dict[str, int] = {}  # key -> the rank of its live entry in _heads
        self._parked: set[str] = set()  # keys held in flight by another holder than the owner's

    def member_for(self, holder: str) -> Member | None:
        return self._by_holder.get(holder)

    def owner(self, key: str) -> str | None:
        """Who owns `key` (cached only for indexed keys, so asking does not grow the cache)."""
        return self._owner[key] if key in self._owner else self.ring.owner(key)

    # --- membership ---------------------------------------------------------------------------

    def join(self, member: Member) -> None:
        old = self.members.get(member.name)
        if old is not None:
            del self._by_holder[old.holder]
        first = not self.members
        self.members[member.name] = member
        self._by_holder[member.holder] = member
        if old is None:
            self.ring.add(member.name)
            if first:  # the group takes over the queue's delivery: index what is ready
                self._load()
            self._reindex()

    def leave(self, name: str) -> None:
        member = self.members.pop(name, None)
        if member is not None:
            del self._by_holder[member.holder]
            self.ring.remove(name)
            if not self.members:  # the queue delivers by itself again: forget the index
                self._unkeyed, self._by_key = [], {}
            self._reindex()

    def _load(self) -> None:
        self._unkeyed, self._by_key = [], {}
        for msg in self._home.live():
            if msg.state is State.READY:
                if msg.key is None:
                    self._unkeyed.append(msg.rank)
                else:
                    self._by_key.setdefault(msg.key, []).append(msg.rank)
        heapq.heapify(self._unkeyed)
        for heap in self._by_key.values():
            heapq.heapify(heap)

    def _reindex(self) -> None:
        """Keys may have changed owners: rebuild every owner's heap of heads."""
        self._owner.clear()
        self._heads, self._head, self._parked = {}, {}, set()
        for key, heap in self._by_key.items():
            self._head[key] = heap[0]
            self._heads.setdefault(self._owner_of(key), []).append((heap[0], key))
        for heads in self._heads.values():
            heapq.heapify(heads)

    def _owner_of(self, key: str) -> str | None:
        try:
            return self._owner[key]
        except KeyError:
            owner = self._owner[key] = self.ring.owner(key)
            return owner

    # --- indexing -----------------------------------------------------------------------------

    def push(self, msg: Message) -> None:
        """Index a message that just became ready (while the group has members)."""
        if not self.members:
            return
        if msg.key is None:
            heapq.heappush(self._unkeyed, msg.rank)
            return
        key, rank = msg.key, msg.rank
        heap = self._by_key.get(key)
        if heap is None:
            heap = self._by_key[key] = []
        heapq.heappush(heap, rank)
        if key not in self._parked and rank < self._head.get(key, _NO_HEAD):
            self._enter(key, rank)

    def key_freed(self, key: str) -> None:
        """A holder has no message of `key` in flight any more: its owner may be able to take
        it again."""
        if key in self._parked:
            self._parked.discard(key)
            heap = self._by_key.get(key)
            if heap:
                self._enter(key, heap[0])

    def _enter(self, key: str, rank: int) -> None:
        """Give `key` an entry in its owner's heap of heads, for its best ready `rank`."""
        self._head[key] = rank
        heads = self._heads.get(owner := self._owner_of(key))
        if heads is None:
            heads = self._heads[owner] = []
        heapq.heappush(heads, (rank, key))

    def _forget(self, key: str) -> None:
        """`key` has no ready message left."""
        del self._by_key[key], self._head[key]
        self._owner.pop(key, None)  # so the cache does not grow with every key ever seen

    # --- choosing -----------------------------------------------------------------------------

    def pick(self, member: Member | None, blocked: Callable[[str], bool]) -> Message | None:
        """The best-ranked ready message that `member` may take (None: unkeyed only).

        `blocked(key)` says whether another holder has that key in flight."""
        best = self._top(self._unkeyed)
        keyed = None if member is None else self._best_keyed(member.name, blocked)
        if keyed is not None and (best is None or keyed.rank < best.rank):
            return keyed
        return best

    def _best_keyed(self, owner: str, blocked: Callable[[str], bool]) -> Message | None:
        """The best ready message of the keys `owner` owns that are not blocked."""
        heads = self._heads.get(owner)
        while heads:
            rank, key = heads[0]
            if self._head.get(key) != rank:
                heapq.heappop(heads)  # left behind by a newer entry of its key
                continue
            top = self._top(self._by_key[key])
            if top is None:  # the key has no ready message left
                heapq.heappop(heads)
                self._forget(key)
            elif top.rank != rank:  # its best message went; the next one is worse
                heapq.heapreplace(heads, (top.rank, key))
                self._head[key] = top.rank
            elif blocked(key):
                heapq.heappop(heads)
                del self._head[key]
                self._parked.add(key)
            else:
                return top
        return None

    def take(self, msg: Message) -> None:
        """Remove `msg` (returned by `pick`) from the heap it is at the top of."""
        if msg.key is None:
            heapq.heappop(self._unkeyed)
            return
        heap = self._by_key[msg.key]
        heapq.heappop(heap)
        if heap:  # its next message heads the key now (checked when it surfaces)
            self._enter(msg.key, heap[0])
        else:
            self._forget(msg.key)

    def _top(self, heap: list[int]) -> Message | None:
        """The best ready message of this queue in `heap`, dropping stale entries on the way."""
        messages, queue = self._messages, self._home.name
        while heap:
            msg = messages.get(id_of(heap[0]))
            if msg is not None and msg.state is State.READY and msg.queue == queue:
                return msg
            heapq.heappop(heap)
        return None

    def keys_owned(self, ready_keys: Iterable[str]) -> dict[str, int]:
        counts = dict.fromkeys(self.members, 0)
        for key in ready_keys:
            owner = self.owner(key)
            if owner is not None:
                counts[owner] += 1
        return counts


_NO_HEAD = 1 << 62  # above every rank: a key without an entry


