"""Which requests this broker of a cluster may serve: those of the slots it has loaded.

Every command names what it is about in its SPEC's guard (the same fields access.py checks):
queue and topic names, receipts and msg_ids. Names give their slot by hash, ids by their low
bits (mq/cluster/slots.py), so the slot is known before the core is asked. A command about no
queue (PING, HELLO, QUEUES, STATS of all) is served by any broker, from what it holds.

  - one slot, served here: run it;
  - one slot, loading here, or not assigned yet: TRYAGAIN;
  - one slot, owned by another broker: MOVED with its address;
  - more than one slot: CROSSSLOT (use {hash tags} to put the queues in one slot).
"""

from __future__ import annotations

from collections.abc import Iterator

from mq.cluster.slotmap import SlotMap
from mq.cluster.slots import slot_of, slot_of_id
from mq.codec.commands import REGISTRY, Bind, Command
from mq.codec.values import Receipt
from mq.errors import Code, MQError, moved

# Fields that place a command beyond those its guard checks: a bound topic lives in its
# queue's slot, so that FANOUT to it is served by one broker.
ALSO_PLACED_BY: dict[type, tuple[str, ...]] = {Bind: ("topic",)}


class Router:
    def __init__(self, node: str) -> None:
        self.node = node
        self.map = SlotMap()
        self.serving: set[int] = set()  # loaded: requests for these run here
        self.loading: set[int] = set()  # being taken over: TRYAGAIN

    def refusal(self, command: Command) -> MQError | None:
        guard = REGISTRY.by_type[type(command)].spec.guard
        if guard is None or not guard.on:
            return None
        slots = set(_slots(command, guard.on + ALSO_PLACED_BY.get(type(command), ())))
        if not slots:
            return None
        if len(slots) > 1:
            return MQError(Code.CROSSSLOT, f"this request names queues of slots "
                           f"{sorted(slots)}; a request may name one slot only: give related "
                           "queues one {hash tag}, as in {video}.144p and {video}.captions")
        (slot,) = slots
        return None if slot in self.serving else self.elsewhere(slot)

    def elsewhere(self, slot: int) -> MQError:
        """The answer for a slot this broker does not serve now."""
        owner = self.map.owner(slot)
        if slot in self.loading or owner is None or owner.node == self.node:
            return MQError(Code.TRYAGAIN, f"slot {slot} is moving to its broker and loads now; "
                           "retry in a moment")
        addr = self.map.addr_of(owner.node)
        if addr is None:
            return MQError(Code.TRYAGAIN, f"slot {slot}'s broker {owner.node} is leaving the "
                           "cluster; retry in a moment")
        return moved(slot, addr, self.map.epoch, owner.node)


def _slots(command: Command, on: tuple[str, ...]) -> Iterator[int]:
    for field in on:
        value = getattr(command, field)
        if value is None:
            continue
        if isinstance(value, str):
            yield slot_of(value)
            continue
        items = (value,) if isinstance(value, (Receipt, int)) else value  # a Receipt is a tuple
        for r in items:
            yield slot_of_id(r.msg_id if isinstance(r, Receipt) else r)
