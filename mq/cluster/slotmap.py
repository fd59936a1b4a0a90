"""The slot map as a value: each slot's owner and epoch, and each broker's address. Pure.

The truth is in etcd (`/mq/<cluster>/slots/<n>` holds the owner's id; that key's mod_revision
is the slot's epoch). Every broker keeps this value from a watch and answers the `cluster` op
from it. `map_epoch` is the highest slot epoch: a client with an older map knows it is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mq.cluster.slots import SLOTS


@dataclass(frozen=True, slots=True)
class Broker:
    node: str
    addr: str  # host:port that clients connect to
    leaving: bool = False  # being drained: the ring gives it no slots

    def __post_init__(self) -> None:
        if not self.node or "/" in self.node:
            raise ValueError(f"a node id is a non-empty name without '/', got {self.node!r}")


@dataclass(frozen=True, slots=True)
class Owner:
    node: str
    epoch: int  # the etcd mod_revision of the slot's key


@dataclass(frozen=True, slots=True)
class SlotMap:
    owners: dict[int, Owner] = field(default_factory=dict)
    brokers: dict[str, Broker] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return max((o.epoch for o in self.owners.values()), default=0)

    def owner(self, slot: int) -> Owner | None:
        return self.owners.get(slot)

    def addr_of(self, node: str) -> str | None:
        b = self.brokers.get(node)
        return None if b is None else b.addr

    def slots_of(self, node: str) -> list[int]:
        return sorted(s for s, o in self.owners.items() if o.node == node)

    def ranges(self) -> list[tuple[int, int, str]]:
        """Runs of consecutive slots with one owner: (first, last, node)."""
        out: list[tuple[int, int, str]] = []
        for slot in range(SLOTS):
            o = self.owners.get(slot)
            if o is None:
                continue
            if out and out[-1][2] == o.node and out[-1][1] == slot - 1:
                out[-1] = (out[-1][0], slot, o.node)
            else:
                out.append((slot, slot, o.node))
        return out

    def describe(self) -> dict[str, Any]:
        """The `cluster` op's reply (protocol.md 9): map_epoch, slot ranges with the owner's
        address ([first, last, node, addr]), and the brokers."""
        return {
            "map_epoch": self.epoch,
            "slots": [[a, b, node, self.addr_of(node) or ""] for a, b, node in self.ranges()],
            "brokers": {n: {"addr": b.addr, "leaving": b.leaving, "slots": len(self.slots_of(n))}
                        for n, b in sorted(self.brokers.items())},
        }
