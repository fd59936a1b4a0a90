"""A broker's life in the cluster: its membership key, the controller election, the slot
assignment when it is the controller, and the slot map it reads, all through etcd.

Theory of operation. One loop per broker, every `poll_s`:
  1. keep its etcd lease alive (TTL `ttl_s`); if etcd says the lease expired (the broker was
     paused or cut off for longer than the TTL), `on_lapse` drops every slot it held (the
     controller has given them away meanwhile, and the fence keeps it from committing for
     them) and it registers again under a new lease, a new member that gets slots again by
     the normal assignment;
  2. read every key of the cluster (one range read of about 1,030 small keys) into a
     `ClusterView`, and hand it to `on_view`, which loads and drops slots;
  3. claim the controller key if nobody holds it; the controller then writes the moves that
     `assign.plan` gives, in transactions guarded by its own term, so a deposed controller
     cannot write. Slots of a dead broker move at once; other moves (joins, drains) wait
     until the membership has been stable for `SETTLE_TTLS` lease TTLs (stable.py).
A broker that cannot reach its database gives up its membership (`step_out`: the lease is
revoked, so its slots move now) and keeps reading the map, registering again at `rejoin`.
A full read each round rather than a watch: nothing can be missed, a compacted revision or a
reconnect needs no special case, and the cost is small at this size. `on_view` is plain (it
spawns what must wait), so a slow slot load never delays the keep-alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mq.cluster import assign
from mq.cluster.etcd import Etcd, EtcdUnavailable
from mq.cluster.keys import ClusterView, Keys, broker_value
from mq.cluster.stable import StableMembership

log = logging.getLogger("mq.cluster")

MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
SETTLE_TTLS = 2  # membership stable this many lease TTLs before slots move to spread load


class Member:
    def __init__(self, etcd: Etcd, cluster: str, node: str, addr: str,
                 on_view: Callable[[ClusterView], None], ttl_s: int = 3, poll_s: float = 0.5,
                 max_moves: int = 32, on_lapse: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.etcd = etcd
        self.keys = Keys(cluster)
        self.cluster = cluster
        self.node = node
        self.addr = addr
        self.on_view = on_view
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.max_moves = max_moves
        self.lease: int | None = None
        self.view: ClusterView | None = None
        self.on_lapse = on_lapse
        self.joined = asyncio.Event()
        self.in_cluster = True  # False between step_out and rejoin
        self._stable = StableMembership(SETTLE_TTLS * ttl_s, clock)
        self._turn = asyncio.Lock()  # a round, or a step out: never both at once
        self._refreshed = 0.0  # monotonic s of the last keep-alive

    async def run(self) -> None:
        """Take part until cancelled; etcd being away is logged and waited out."""
        while True:
            try:
                await self._round()
            except EtcdUnavailable as e:
                log.warning("cluster %s: %s; trying again", self.cluster, e)
            await asyncio.sleep(self.poll_s)

    async def _round(self) -> None:
        async with self._turn:
            if not self.in_cluster:  # out: follow the map, so requests get the right MOVED
                view = self.keys.view(await self.etcd.read(self.keys.prefix))
                self.view = view
                self.on_view(view)
                return
            await self._member_round()

    async def _member_round(self) -> None:
        await self._stay_registered()
        view = self.keys.view(await self.etcd.read(self.keys.prefix))
        if view.controller is None:
            if await self.etcd.claim(self.keys.controller, self.node.encode(), self._lease()):
                log.info("cluster %s: node %s is the controller", self.cluster, self.node)
            view = self.keys.view(await self.etcd.read(self.keys.prefix))
        if view.controller == self.node:
            view = await self._assign(view)
        self.view = view
        if not self.joined.is_set() and self.node in view.live:
            self.joined.set()
            log.info("cluster %s node %s joined", self.cluster, self.node)
        self.on_view(view)

    def _lease(self) -> int:
        assert self.lease is not None
        return self.lease

    async def _stay_registered(self) -> None:
        now = time.monotonic()
        if self.lease is not None and now - self._refreshed < self.ttl_s / 3:
            return
        if self.lease is not None and await self.etcd.keep_alive(self.lease):
            self._refreshed = now
            return
        if self.lease is not None:
            log.warning("cluster %s: the lease of node %s expired; it drops its slots and "
                        "joins again", self.cluster, self.node)
            self.lease = None
            self.on_lapse()
        self.lease = await self.etcd.grant(self.ttl_s)
        self._refreshed = now
        await self.etcd.delete(self.keys.leaving(self.node))  # a restart ends a drain
        await self.etcd.put(self.keys.broker(self.node), broker_value(self.addr), self.lease)

    async def _assign(self, view: ClusterView) -> ClusterView:
        current = {s: o.node for s, o in view.map.owners.items()}
        # While the membership settles only a dead broker's slots move (max_moves 0).
        settled = self._stable.stable(view.live, view.leaving)
        moves = assign.plan(current, view.live, view.leaving, self.max_moves if settled else 0)
        if not moves:
            return view
        puts = [(self.keys.slot(s), node.encode()) for s, node in sorted(moves.items())]
        for at in range(0, len(puts), MAX_TXN_OPS):
            if not await self.etcd.put_if(self.keys.controller, view.controller_revision,
                                          puts[at:at + MAX_TXN_OPS]):
                log.warning("cluster %s: node %s is no longer the controller", self.cluster,
                            self.node)
                break
        log.info("cluster %s: %d slots assigned (%d live brokers, %d leaving)", self.cluster,
                 len(moves), len(view.live), len(view.leaving))
        return self.keys.view(await self.etcd.read(self.keys.prefix))

    async def step_out(self) -> None:
        """Give up the membership but keep following the map (the database is away): the
        lease is revoked, so the controller gives this broker's slots away now."""
        self.in_cluster = False  # from now on `on_view` sees it out, even in a round under way
        async with self._turn:
            await self.leave()

    def rejoin(self) -> None:
        """Register again, under a new lease, at the next round."""
        if not self.in_cluster:
            self.in_cluster = True
            log.info("cluster %s node %s joins again", self.cluster, self.node)

    async def leave(self) -> None:
        """Give up the lease at an orderly stop: the controller reassigns at once."""
        if self.lease is not None:
            try:
                await self.etcd.revoke(self.lease)
            except EtcdUnavailable as e:
                log.warning("cluster %s: could not revoke the lease (%s); it expires in %ds",
                            self.cluster, e, self.ttl_s)
            self.lease = None
