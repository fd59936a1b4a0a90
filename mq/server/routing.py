"""Which requests this broker of a cluster may serve: those of the slots it has loaded.

Every command names what it is about in its SPEC's guard (the same fields access.py checks):
queue and topic names, receipts and msg_ids. Names give their slot by hash, ids by their low
bits (mq/cluster/slots.py), so the slot is known before the core is asked. A command about no
queue (PING, HELLO, QUEUES, STATS of all) is served by any broker, from what it holds.

  - every slot it names served here: run it;
  - else, for the first slot that is not: TRYAGAIN when it is loading here or not assigned
    yet, MOVED with the owner's address when another broker owns it;
  - a command that ties two queues together (BIND, DECLARE dead_letter=, REDRIVE to=) naming
    two slots: CROSSSLOT (use {hash tags} to put the queues in one slot). A batch ACK over
    several slots is fine where they are all served.
"""

from __future__ import annotations

from collections.abc import Iterator

from mq.cluster.slotmap import SlotMap
from mq.cluster.slots import slot_of, slot_of_id
from mq.codec.commands import REGISTRY, Bind, Command, Declare, Redrive
from mq.codec.values import Receipt
from mq.errors import Code, MQError, moved

# Fields that place a command beyond those its guard checks: a bound topic lives in its
# queue's slot, so that FANOUT to it is served by one broker.
ALSO_PLACED_BY: dict[type, tuple[str, ...]] = {Bind: ("topic",)}
TIES_QUEUES = (Bind, Declare, Redrive)  # what they name must stay in one slot


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
        if len(slots) > 1 and isinstance(command, TIES_QUEUES):
            return MQError(Code.CROSSSLOT, f"this request ties queues of slots "
                           f"{sorted(slots)} together, which must share one: give them one "
                           "{hash tag}, as in {video}.144p and {video}.captions")
        for slot in sorted(slots):
            if slot not in self.serving:
                return self.elsewhere(slot)
        return None

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
