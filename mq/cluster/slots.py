"""Slots: which of the cluster's 1,024 slots a queue lives in, and message ids that carry it.

A queue's slot is `murmur3(placement key) % 1024` (unsigned 32-bit murmur3, seed 0, of the
key's UTF-8). The placement key is the text inside the name's first non-empty `{...}` (a hash
tag, as in Redis Cluster), else the name itself with a trailing `.dlq` removed. So:
- `orders` and its default dead-letter queue `orders.dlq` always share a slot: dead-lettering
  moves a message inside one slot, and its id (which names the slot) stays right;
- any other pair of queues shares a slot only if tags say so: `{video}.144p` and
  `{video}.captions`. An explicit `dead_letter=`, a `bind`, a `fanout` or a `redrive to=` that
  would cross two slots is refused with CROSSSLOT (`same_slot`).

Ids. A message id is `counter << 10 | slot`: the low 10 bits are its slot, so a receipt
(`<msg_id>.<delivery>`), `explain` and `history` are routed by the id alone. The counter is the
broker's and only grows (a broker that loads a slot raises it past every id that slot holds),
so ids stay in publish order inside a queue. The counter stays below 2^53, so an id is below
2^63, the protocol's bound (protocol.md: ids are opaque ints, no longer dense in a cluster).
Pure: no I/O.
"""

from __future__ import annotations

import mmh3

SLOTS = 1024
SLOT_BITS = 10
SLOT_MASK = SLOTS - 1
MAX_COUNTER = 2**53 - 1  # so every id is below 2^63 (mq.limits.MAX_MSG_ID)
DLQ_SUFFIX = ".dlq"  # mq.core.model's default dead-letter suffix (asserted in the tests)


def placement_key(name: str) -> str:
    """The part of a queue or topic name that decides its slot."""
    start = name.find("{")
    while start != -1:
        end = name.find("}", start + 1)
        if end == -1:
            break
        if end > start + 1:
            return name[start + 1:end]
        start = name.find("{", end + 1)  # `{}` is no tag: look for the next one
    if name.endswith(DLQ_SUFFIX) and len(name) > len(DLQ_SUFFIX):
        return name[:-len(DLQ_SUFFIX)]
    return name


def slot_of(name: str) -> int:
    """The slot (0..1023) of a queue or topic."""
    return int(mmh3.hash(placement_key(name), 0, signed=False)) % SLOTS


def slot_of_id(msg_id: int) -> int:
    """The slot a message id was made in."""
    return msg_id & SLOT_MASK


def same_slot(*names: str) -> bool:
    """Whether all these queues live in one slot (a cross-slot operation is CROSSSLOT)."""
    return len({slot_of(n) for n in names}) <= 1


def make_id(counter: int, slot: int) -> int:
    if not 0 <= slot < SLOTS:
        raise ValueError(f"slot must be 0..{SLOTS - 1}, got {slot}")
    if not 1 <= counter <= MAX_COUNTER:
        raise ValueError(f"id counter must be 1..{MAX_COUNTER}, got {counter}")
    return counter << SLOT_BITS | slot


def counter_of(msg_id: int) -> int:
    return msg_id >> SLOT_BITS


class SlotIds:
    """The id maker a clustered broker gives its core: `ids(queue)` is a new id in the queue's
    slot. `raise_past(msg_id)` after loading a slot keeps new ids above every id it holds."""

    def __init__(self, counter: int = 1) -> None:
        self.counter = counter

    def __call__(self, queue: str) -> int:
        msg_id = make_id(self.counter, slot_of(queue))
        self.counter += 1
        return msg_id

    def raise_past(self, msg_id: int) -> None:
        self.counter = max(self.counter, counter_of(msg_id) + 1)
