"""Where a cluster lives in etcd, and reading it back as a slot map. Pure.

Under `/mq/<cluster>/`:
  brokers/<node>  {"addr": "host:port"}, bound to the broker's etcd lease: gone when it dies
  leaving/<node>  being drained (`mq cluster drain`): the ring gives it no slots
  controller      the node that assigns slots, bound to its lease (one at a time)
  slots/<n>       the node that owns slot n; the key's mod_revision is the slot's epoch
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from mq.cluster.slotmap import Broker, Owner, SlotMap
from mq.cluster.slots import SLOTS


@dataclass(frozen=True, slots=True)
class Entry:
    """One etcd key as read."""

    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What one read of the cluster's keys says."""

    map: SlotMap
    live: frozenset[str]  # brokers with a membership key
    leaving: frozenset[str]
    controller: str | None
    controller_revision: int  # the controller key's create_revision (its term), 0 if none


class Keys:
    def __init__(self, cluster: str) -> None:
        if not cluster or "/" in cluster:
            raise ValueError(f"a cluster name is a non-empty name without '/', got {cluster!r}")
        self.prefix = f"/mq/{cluster}/"
        self.controller = self.prefix + "controller"

    def broker(self, node: str) -> str:
        return f"{self.prefix}brokers/{node}"

    def leaving(self, node: str) -> str:
        return f"{self.prefix}leaving/{node}"

    def slot(self, slot: int) -> str:
        return f"{self.prefix}slots/{slot}"

    def view(self, entries: Iterable[Entry]) -> ClusterView:
        brokers: dict[str, Broker] = {}
        leaving: set[str] = set()
        owners: dict[int, Owner] = {}
        controller: str | None = None
        term = 0
        for e in entries:
            rest = e.key[len(self.prefix):]
            kind, _, name = rest.partition("/")
            if kind == "brokers" and name:
                brokers[name] = Broker(name, str(json.loads(e.value)["addr"]))
            elif kind == "leaving" and name:
                leaving.add(name)
            elif kind == "slots" and name.isdigit() and int(name) < SLOTS:
                owners[int(name)] = Owner(e.value.decode(), e.mod_revision)
            elif rest == "controller":
                controller, term = e.value.decode(), e.create_revision
        shown = {n: Broker(n, b.addr, n in leaving) for n, b in brokers.items()}
        return ClusterView(SlotMap(owners, shown), frozenset(brokers), frozenset(leaving),
                           controller, term)


def broker_value(addr: str) -> bytes:
    return json.dumps({"addr": addr}).encode()
