"""A consumer group on a queue: members, their credit, and which member owns which key.

Keyed messages go only to the live member that owns the key on the hash ring, and only while
no other holder has a message of that key in flight (so a key is never worked on by two
members at once, even while the ring rebalances). Unkeyed messages go to any member with credit.

The group keeps its own lazy heaps of ready message ranks (priority, then id): one for unkeyed
messages and one per key, plus, for each member, the keys it owns that have ready messages. A
heap entry whose message is no longer ready is dropped when it surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from mq.core.model import Message, State, id_of


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
    def __init__(self, name: str, ring: KeyRing) -> None:
        self.name = name
        self.ring = ring
        self.members: dict[str, Member] = {}
        self._by_holder: dict[str, Member] = {}
        self._unkeyed: list[int] = []
        self._by_key: dict[str, list[int]] = {}
        self._owner: dict[str, str | None] = {}  # cache of ring.owner, cleared on membership change
        self._ready_keys: dict[str | None, set[str]] = {}  # owner -> its keys with ready messages

    def member_for(self, holder: str) -> Member | None:
        return self._by_holder.get(holder)

    def owner(self, key: str) -> str | None:
        try:
            return self._owner[key]
        except KeyError:
            owner = self._owner[key] = self.ring.owner(key)
            return owner

    def push(self, msg: Message) -> None:
        """Index a message that just became ready."""
        if msg.key is None:
            heapq.heappush(self._unkeyed, msg.rank)
            return
        heap = self._by_key.get(msg.key)
        if heap is None:
            heap = self._by_key[msg.key] = []
        heapq.heappush(heap, msg.rank)
        self._ready_keys.setdefault(self.owner(msg.key), set()).add(msg.key)

    def join(self, member: Member) -> None:
        old = self.members.get(member.name)
        if old is not None:
            del self._by_holder[old.holder]
        self.members[member.name] = member
        self._by_holder[member.holder] = member
        if old is None:
            self.ring.add(member.name)
            self._reindex()

    def leave(self, name: str) -> None:
        member = self.members.pop(name, None)
        if member is not None:
            del self._by_holder[member.holder]
            self.ring.remove(name)
            self._reindex()

    def _reindex(self) -> None:
        self._owner.clear()
        self._ready_keys = {}
        for key in self._by_key:
            self._ready_keys.setdefault(self.owner(key), set()).add(key)

    def pick(self, member: Member | None, messages: dict[int, Message],
             blocked: Callable[[str], bool]) -> Message | None:
        """The best-ranked ready message that `member` may take (None: unkeyed only).

        `blocked(key)` says whether another holder has that key in flight."""
        best = _top(self._unkeyed, messages)
        if member is None:
            return best
        keys = self._ready_keys.get(member.name)
        if not keys:
            return best
        for key in list(keys):
            heap = self._by_key[key]
            top = _top(heap, messages)
            if top is None:
                keys.discard(key)
                del self._by_key[key]
                continue
            if (best is None or top.rank < best.rank) and not blocked(key):
                best = top
        return best

    def take(self, msg: Message) -> None:
        """Remove `msg` (returned by `pick`) from the heap it is at the top of."""
        heap = self._unkeyed if msg.key is None else self._by_key[msg.key]
        heapq.heappop(heap)

    def keys_owned(self, ready_keys: Iterable[str]) -> dict[str, int]:
        counts = dict.fromkeys(self.members, 0)
        for key in ready_keys:
            owner = self.owner(key)
            if owner is not None:
                counts[owner] += 1
        return counts


def _top(heap: list[int], messages: dict[int, Message]) -> Message | None:
    while heap:
        msg = messages.get(id_of(heap[0]))
        if msg is not None and msg.state is State.READY:
            return msg
        heapq.heappop(heap)
    return None
